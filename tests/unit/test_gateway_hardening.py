"""The local gateway in-process: idle sockets are closed, the authorizer cache is keyed
on the token (not the raw header), dotfiles are never served, logged request lines are escaped. The
HTTP framing and Host/Origin rules are tested black-box in tests/security/test_local_http.py."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fanout.local.gateway import Gateway

ALLOW = {
    "principalId": "alice",
    "policyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ["arn:aws:execute-api:*"]}],
    },
    "context": {"sub": "alice", "roles": "data.read", "exp": 0},
}


class Calls:
    def __init__(self) -> None:
        self.authorizer: list[str] = []

    def authorize(self, event: dict[str, Any], _: Any) -> dict[str, Any]:
        self.authorizer.append(event["authorizationToken"])
        return ALLOW

    @staticmethod
    def api(event: dict[str, Any], _: Any) -> dict[str, Any]:
        # Like the api handler: /data answers, any other path is a 404.
        status = 200 if event["path"] == "/data" else 404
        return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps({})}


@pytest.fixture
def web(tmp_path: Path) -> Path:
    root = tmp_path / "web"
    (root / ".git").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>app</title>")
    (root / ".env").write_text("SECRET=leaked")
    (root / ".git" / "config").write_text("[remote] url = leaked")
    (root / "js").mkdir()
    (root / "js" / ".hidden.js").write_text("leaked")
    return root


@pytest.fixture
def gateway(web: Path) -> Iterator[tuple[Gateway, Calls]]:
    calls = Calls()
    gw = Gateway(
        port=0,
        region="us-east-1",
        authorizer=calls.authorize,
        api=calls.api,
        cache_ttl=300,
        jwt_secret="s" * 48,
        web_dir=web,
        idle_timeout=0.5,
    )
    gw.start()
    yield gw, calls
    gw.stop()


def _port(gw: Gateway) -> int:
    return int(gw.server.server_address[1])


def _request(gw: Gateway, raw: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", _port(gw)), timeout=5) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _get(gw: Gateway, path: str, headers: str = "") -> tuple[int, bytes]:
    host = f"127.0.0.1:{_port(gw)}"
    return _request(gw, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n".encode())


def test_idle_connection_is_closed(gateway: tuple[Gateway, Calls]) -> None:
    gw, _ = gateway
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", _port(gw)), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")  # half a request, then nothing
        assert s.recv(1024) == b""  # the server closed it
    assert time.monotonic() - started < 5


def test_stalled_body_is_closed_quietly(gateway: tuple[Gateway, Calls], caplog: pytest.LogCaptureFixture) -> None:
    gw, _ = gateway
    caplog.set_level(logging.DEBUG, logger="fanout.local.gateway")
    host = f"127.0.0.1:{_port(gw)}".encode()
    with socket.create_connection(("127.0.0.1", _port(gw)), timeout=10) as s:
        s.sendall(b"POST /data HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 100\r\n\r\n0123456789")
        assert s.recv(1024) == b""  # closed, without an answer to a request that never arrived whole
    time.sleep(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_padded_headers_share_one_cache_entry(gateway: tuple[Gateway, Calls]) -> None:
    gw, calls = gateway
    for padding in ("", " " * 1000, " " * 5000, "\t"):
        status, _ = _get(gw, "/data", f"Authorization: Bearer{' ' + padding}tok.en.value\r\n")
        assert status == 200
    assert len(calls.authorizer) == 1, calls.authorizer
    assert len(gw._cache) == 1


def test_dotfiles_are_never_served(gateway: tuple[Gateway, Calls]) -> None:
    gw, _ = gateway
    assert _get(gw, "/index.html")[0] == 200
    for path in ("/.env", "/.git/config", "/js/.hidden.js", "/%2eenv", "/js/../.env", "/.git/"):
        status, body = _get(gw, path)
        assert b"leaked" not in body, path
        assert status != 200, (path, status)


def test_logged_request_lines_are_escaped(gateway: tuple[Gateway, Calls], caplog: pytest.LogCaptureFixture) -> None:
    gw, _ = gateway
    caplog.set_level(logging.DEBUG, logger="fanout.local.gateway")
    _get(gw, "/x\x1b]0;owned\x07\x1b[2J")
    time.sleep(0.2)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "owned" in text, text
    assert "\x1b" not in text and "\x07" not in text, ascii(text)
    assert "\\x1b]0;owned\\x07" in text
