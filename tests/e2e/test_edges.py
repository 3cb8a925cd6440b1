"""Edges a user can hit: odd requests, expiring tokens, name clashes, and the CLI finding the stack."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from tests.e2e.helpers import all_items, post, user, wait_for
from tests.support.stack import ROOT, Stack, running_stack


def _raw(stack: Stack, request: bytes) -> bytes:
    port = int(stack.env["FANOUT_PORT"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_every_error_is_json(stack: Stack) -> None:
    # The stack's own Host, so each request reaches the check it is about (a foreign Host is refused first).
    host = f"Host: 127.0.0.1:{stack.env['FANOUT_PORT']}\r\n".encode()
    for request in (
        b"TRACE /data HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET /data HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 70_000 + b"\r\nConnection: close\r\n\r\n",
        b"POST /data HTTP/1.1\r\n"
        + host
        + b"Content-Length: 5\r\nContent-Length: 43\r\nConnection: close\r\n\r\nhello",
        b"GET /index.html%00 HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n",
        b"GET /data HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ):
        raw = _raw(stack, request)
        if not raw.startswith(b"HTTP/"):
            # A request line without a version is HTTP/0.9: the answer is the body alone.
            assert json.loads(raw)["message"]
            continue
        head, _, body = raw.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        assert 400 <= status < 600 and status != 500, head
        assert json.loads(body)["message"], body


def test_trailing_slash_is_the_same_route(stack: Stack) -> None:
    sub = user()
    r = requests.post(
        f"{stack.api_url}/data/",
        json={"informationOne": "a", "informationTwo": "b"},
        headers=stack.auth(sub),
        timeout=5,
    )
    assert r.status_code == 202
    wait_for(lambda: all_items(stack, sub))
    assert requests.get(f"{stack.api_url}/data/", headers=stack.auth(sub), timeout=5).status_code == 200


def test_local_endpoints_refuse_wrong_methods_and_bodies(stack: Stack) -> None:
    r = requests.post(f"{stack.api_url}/healthz", timeout=5)
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    r = requests.post(f"{stack.api_url}/_local/token", json=[1], timeout=5)
    assert r.status_code == 400 and "JSON object" in r.json()["message"]
    r = requests.post(f"{stack.api_url}/_local/token", json={"sub": "web-user"}, timeout=5)
    assert r.status_code == 200 and r.json()["token"]


def test_a_token_expiring_while_cached_is_refused(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.token(user(), ttl=2)}"}
    assert requests.get(f"{stack.api_url}/data", headers=headers, timeout=5).status_code == 200
    time.sleep(2.5)
    r = requests.get(f"{stack.api_url}/data", headers=headers, timeout=5)
    assert r.status_code == 401 and r.json() == {"message": "Unauthorized"}


def test_subscribe_never_adopts_an_existing_queue(stack: Stack) -> None:
    for name in ("fanout-dev-persister", "fanout-dev-persister-dlq", "fanout-dev-archive"):
        r = stack.cli("subscribe", name, check=False)
        assert r.returncode != 0 and "which belongs to consumer" in r.stderr
    status = json.loads(stack.cli("status", "--json").stdout)
    assert "persister" in status["consumers"] and "archive" in status["consumers"]


def test_refused_filter_policy_leaves_nothing_behind(stack: Stack) -> None:
    r = stack.cli("subscribe", "halfmade", "--filter-policy", '{"a": "notalist"}', check=False)
    assert r.returncode != 0 and "filter-policy" in r.stderr
    assert "halfmade" not in json.loads(stack.cli("status", "--json").stdout)["consumers"]
    urls = stack.boto("sqs").list_queues(QueueNamePrefix="halfmade").get("QueueUrls", [])
    assert urls == []


def test_cli_finds_the_stack_from_fanout_port_alone(stack: Stack) -> None:
    env = {k: v for k, v in stack.env.items() if k not in ("FANOUT_AWS_PORT", "AWS_REGION")}
    r = subprocess.run(
        [str(ROOT / ".venv/bin/fanout"), "status", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["aws_endpoint"] == stack.aws_endpoint


def test_ctrl_c_keeps_what_was_written(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running_stack(state) as first:
        sub = user()
        event_id = post(first, sub).json()["id"]
        wait_for(lambda: all_items(first, sub))
        # A terminal's Ctrl+C reaches the whole foreground process group, moto included.
        os.killpg(first.proc.pid, signal.SIGINT)
        first.proc.wait(10)
    with running_stack(state) as second:
        assert [i["id"] for i in all_items(second, sub)] == [event_id]


def test_stack_stops_when_the_emulator_dies(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        moto = subprocess.run(
            ["pgrep", "-f", f"fanout.local.emulator_server 127.0.0.1 {stack.env['FANOUT_AWS_PORT']}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        assert moto
        os.kill(int(moto[0]), signal.SIGKILL)
        stack.proc.wait(10)
        assert stack.proc.returncode != 0
