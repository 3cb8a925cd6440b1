"""The local endpoints against other web pages and odd HTTP framing (contract §7): a web page open
in the same browser must not reach them.

Black-box against a started stack, with the requests a browser would send: a cross-site `fetch` or a
form posts `text/plain` (a CORS "simple" request, no preflight) and carries `Origin`; a DNS-rebinding
page sends its own name as `Host`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from tests.fuzz.live import auth, remember
from tests.support.stack import CLI, Stack

EVIL = "https://evil.example"
# Every kind of local route: the API, the web app, the local endpoints, the console, the documents.
PATHS = ("/data", "/", "/index.html", "/healthz", "/config.json", "/_local/stack", "/console", "/asyncapi.json")


def _port(stack: Stack) -> int:
    return int(stack.env["FANOUT_PORT"])


def _raw(port: int, request: bytes) -> bytes:
    """Everything the server sends until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _cors(headers: Any) -> list[str]:
    return [k for k in headers if k.lower().startswith("access-control-")]


# ------------------------------------------------------------------------------------- Host
def test_foreign_host_is_refused_on_every_route(stack: Stack) -> None:
    port = _port(stack)
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}", f"127.0.0.1:{port + 1}"):
        for path in PATHS:
            r = requests.get(f"{stack.api_url}{path}", headers={"Host": host}, timeout=10)
            assert r.status_code in (403, 421), (host, path, r.status_code)
            assert "Host" in r.json()["message"]
        r = requests.post(f"{stack.api_url}/_local/token", data='{"sub": "x"}', headers={"Host": host}, timeout=10)
        assert r.status_code in (403, 421) and "token" not in r.json(), host


def test_request_without_host_or_with_two_is_refused(stack: Stack) -> None:
    raw = _raw(_port(stack), b"GET /_local/stack HTTP/1.0\r\n\r\n")
    assert _status(raw) in (403, 421), raw[:200]
    own = f"127.0.0.1:{_port(stack)}".encode()
    two = b"GET /_local/stack HTTP/1.1\r\nHost: " + own + b"\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    assert _status(_raw(_port(stack), two)) in (403, 421)


def test_own_host_names_are_served(stack: Stack) -> None:
    port = _port(stack)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
        r = requests.get(f"{stack.api_url}/healthz", headers={"Host": host}, timeout=10)
        assert r.status_code == 200, (host, r.status_code)


# ----------------------------------------------------------------------------------- Origin
def test_cross_site_token_request_is_refused(stack: Stack) -> None:
    """What evil.example's page sends with fetch(..., {method: 'POST', mode: 'no-cors', body}) or a form."""
    for content_type in ("text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data"):
        for origin in (EVIL, "null", f"http://127.0.0.1:{_port(stack) + 1}"):
            r = requests.post(
                f"{stack.api_url}/_local/token",
                data='{"sub": "victim"}',
                headers={"Origin": origin, "Content-Type": content_type},
                timeout=10,
            )
            assert r.status_code == 403, (content_type, origin, r.status_code, r.text)
            assert "token" not in r.json() and "Origin" in r.json()["message"]
            assert not _cors(r.headers)


def test_every_local_post_refuses_a_foreign_origin(stack: Stack) -> None:
    """Console actions and any later /_local/ route are covered before routing, known or not."""
    for path in (
        "/_local/token",
        "/_local/consumers/persister/dlq/redrive",
        "/_local/consumers/persister/dlq/purge",
        "/_local/replay",
        "/_local/a-route-added-later",
        "/console",
    ):
        for method in ("POST", "PUT", "DELETE"):
            r = requests.request(
                method,
                f"{stack.api_url}{path}",
                data="{}",
                headers={"Origin": EVIL, "Content-Type": "text/plain"},
                timeout=10,
            )
            assert r.status_code == 403, (method, path, r.status_code)


def test_same_origin_page_still_signs_in(stack: Stack) -> None:
    port = _port(stack)
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        r = requests.post(
            f"{stack.api_url}/_local/token",
            json={"sub": f"web-{uuid.uuid4().hex[:6]}"},
            headers={"Origin": origin},
            timeout=10,
        )
        assert r.status_code == 200, (origin, r.text)
        remember(r.json()["token"])
    # No Origin at all (curl, the CLI): allowed as before.
    r = requests.post(f"{stack.api_url}/_local/token", json={"sub": "cli-user"}, timeout=10)
    assert r.status_code == 200
    remember(r.json()["token"])


def test_api_is_unchanged_by_origin(stack: Stack) -> None:
    """/data is guarded by its bearer token and answers as on AWS whatever the Origin."""
    headers = {**auth(stack, f"origin-{uuid.uuid4().hex[:6]}"), "Origin": EVIL}
    assert requests.get(f"{stack.api_url}/data", headers=headers, timeout=10).status_code == 200
    assert requests.get(f"{stack.api_url}/data", headers={"Origin": EVIL}, timeout=10).status_code == 401


# ---------------------------------------------------------------------------------- framing
def _host(stack: Stack) -> bytes:
    return f"Host: 127.0.0.1:{_port(stack)}\r\n".encode()


def test_transfer_encoding_is_refused_and_nothing_is_smuggled(stack: Stack) -> None:
    sub = f"smuggle-{uuid.uuid4().hex[:6]}"
    bearer = auth(stack, sub)["Authorization"].encode()
    smuggled = b"GET /data HTTP/1.1\r\n" + _host(stack) + b"Authorization: " + bearer + b"\r\n\r\n"
    chunked = f"{len(smuggled):x}\r\n".encode() + smuggled + b"\r\n0\r\n\r\n"
    for te in (
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        b"Transfer-Encoding: identity\r\n",
        b"Transfer-Encoding: \r\n",
    ):
        for length in (b"", f"Content-Length: {len(chunked)}\r\n".encode()):
            request = b"POST /data HTTP/1.1\r\n" + _host(stack) + te + length + b"\r\n" + chunked + smuggled
            raw = _raw(_port(stack), request)
            assert _status(raw) in (400, 411, 501), (te, length, raw[:200])
            # One answer, then the connection is closed: the bytes after it are never read as a request.
            assert raw.count(b"HTTP/1.1 ") == 1, (te, raw[:400])
            assert b'"items"' not in raw


def test_content_length_must_be_digits_only(stack: Stack) -> None:
    body = json.dumps({"informationOne": "a", "informationTwo": "b"}).encode()
    bearer = auth(stack, f"length-{uuid.uuid4().hex[:6]}")["Authorization"].encode()
    n = len(body)
    for value in (f"+{n}", f"{n // 10}_{n % 10}", f" {n}, {n}", "0x10", f"{n}.0", "-1", "", "٤٧", "1e2"):
        request = (
            b"POST /data HTTP/1.1\r\n"
            + _host(stack)
            + b"Authorization: "
            + bearer
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + value.encode()
            + b"\r\n\r\n"
            + body
        )
        raw = _raw(_port(stack), request)
        assert _status(raw) in (400, 411), (value, raw[:200])
        assert raw.count(b"HTTP/1.1 ") == 1


# ------------------------------------------------------------------------- the AWS emulator
def _scan_request(stack: Stack, **headers: str) -> requests.Response:
    """The DynamoDB Scan a page can POST (text/plain body, no preflight needed), signed with the run's keys:
    even holding them, a request that comes from a page (Origin, foreign Host) is refused."""
    table = json.loads(stack.cli("status", "--json").stdout)["table_name"]
    body = json.dumps({"TableName": table}).encode()
    host = headers.pop("Host", stack.aws_endpoint.removeprefix("http://"))
    signed = stack.signed(
        "POST",
        f"http://{host}/",
        "dynamodb",
        body,
        **{"Content-Type": "text/plain", "X-Amz-Target": "DynamoDB_20120810.Scan", "Host": host},
    )
    return requests.post(stack.aws_endpoint, data=body, headers={**signed, **headers}, timeout=10)


def test_emulator_refuses_web_pages(stack: Stack) -> None:
    for headers in ({"Origin": EVIL}, {"Origin": "null"}, {"Origin": stack.api_url}):
        r = _scan_request(stack, **headers)
        assert r.status_code == 403, (headers, r.status_code, r.text[:200])
        assert "Items" not in r.text and not _cors(r.headers), r.headers
    preflight = requests.options(
        stack.aws_endpoint,
        headers={
            "Origin": EVIL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-amz-target",
        },
        timeout=10,
    )
    assert preflight.status_code == 403 and not _cors(preflight.headers)
    port = stack.aws_endpoint.rsplit(":", 1)[1]
    rebinding = _scan_request(stack, Host=f"evil.example:{port}")
    assert rebinding.status_code == 403 and "Items" not in rebinding.text


def test_emulator_still_serves_sdks_and_the_cli(stack: Stack) -> None:
    ddb = stack.boto("dynamodb")
    table = json.loads(stack.cli("status", "--json").stdout)["table_name"]
    assert "Items" in ddb.scan(TableName=table, Limit=1)
    assert "QueueUrls" in stack.boto("sqs").list_queues()
    # The same signed request as above, without Origin: what an SDK sends, served.
    assert _scan_request(stack).status_code == 200
    # The other names of this machine's endpoint work too (what `aws --endpoint-url http://localhost:...` sends).
    port = stack.aws_endpoint.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"[::1]:{port}"):
        assert _scan_request(stack, Host=host).status_code == 200, host


# -------------------------------------------------------------------------- terminal escapes
def test_dlq_show_escapes_terminal_sequences(stack: Stack) -> None:
    name = f"sec-term-{uuid.uuid4().hex[:6]}"
    stack.cli("subscribe", name)
    status = json.loads(stack.cli("status", "--json").stdout)
    dlq = status["consumers"][name]["dlq_url"]
    nasty = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202e"
    event = {"specversion": "1.0", "id": "01JB8ZJ9R7Y1V6Q2K3M4N5P6Q7", "type": "fanout.t\x1b[5m", "subject": nasty}
    stack.boto("sqs").send_message(QueueUrl=dlq, MessageBody=json.dumps(event, ensure_ascii=False))
    shown = stack.cli("dlq", "show", name).stdout
    assert "owned" in shown, shown
    for ch in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert ch not in shown, ascii(shown)
    as_json = stack.cli("dlq", "show", name, "--json").stdout
    for ch in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert ch not in as_json, ascii(as_json)
    # Escaped, not altered: the JSON still holds exactly what the message held.
    [message] = json.loads(as_json)
    assert message["body"]["subject"] == nasty
    stack.cli("dlq", "purge", name, check=False)


def test_tail_json_escapes_terminal_sequences(stack: Stack, tmp_path: Path) -> None:
    """A message on the topic that is JSON but not an event (a list holding a raw C1 CSI) is printed escaped."""
    out = tmp_path / "tail.out"
    with out.open("w") as sink:
        tail = subprocess.Popen(
            [str(CLI), "tail", "--json", "--count", "1"],
            env=stack.env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while "tailing" not in out.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            topic = json.loads(stack.cli("status", "--json").stdout)["topic_arn"]
            stack.boto("sns").publish(TopicArn=topic, Message='["\x9b2J owned \u202e"]')
            assert tail.wait(30) == 0, out.read_text()
        finally:
            if tail.poll() is None:
                tail.kill()
                tail.wait(5)
    shown = out.read_text()
    assert "owned" in shown, shown
    assert "\x9b" not in shown and "\u202e" not in shown, ascii(shown)
