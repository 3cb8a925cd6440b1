"""Many or slow connections do not wedge the local gateway: bounded connections, a deadline for the head.

A client that sends a request head a byte at a time used to hold a thread for as long as it kept
sending (the idle timeout applied per read), and every connection got a thread: thousands of them
stopped the API and a stop. The in-process tests use a small cap and short deadline; the last one
runs against `make run` with its defaults.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fanout.local import gateway as gateway_module
from fanout.local.gateway import Gateway
from tests.fuzz.live import log_path
from tests.support.stack import Stack


def _api(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": '{"ok": true}'}


@pytest.fixture
def small_gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setattr(gateway_module, "HEAD_SECONDS", 1.5)
    gw = Gateway(
        port=0,
        region="us-east-1",
        authorizer=lambda e, c: {},
        api=_api,
        cache_ttl=0,
        jwt_secret="x" * 40,
        web_dir=None,
        max_connections=8,
    )
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def _port(gw: Gateway) -> int:
    return gw.server.server_address[1]


def _trickle(port: int, stop: threading.Event, closed_after: list[float], every: float = 0.2) -> None:
    """A client that sends a request head a byte at a time and never finishes it; notes when it was closed."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.settimeout(every)
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
        for byte in head:
            if stop.is_set():
                return
            try:
                s.send(bytes([byte]))
                if s.recv(1024) == b"":
                    break  # closed by the server
            except TimeoutError:
                continue
            except OSError:
                break
    closed_after.append(time.monotonic() - start)


def _healthz(port: int) -> int:
    return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code


def test_a_slow_head_is_closed_at_the_deadline(small_gateway: Gateway) -> None:
    stop, closed = threading.Event(), []
    t = threading.Thread(target=_trickle, args=(_port(small_gateway), stop, closed))
    t.start()
    t.join(10)
    stop.set()
    assert closed, "a connection sending its head a byte every 0.2 s was never closed"
    assert 1.0 < closed[0] < 4.0, closed


def test_beyond_the_cap_a_connection_gets_503_then_the_slots_come_back(
    small_gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    port = _port(small_gateway)
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
    try:
        time.sleep(0.3)  # accepted, each in its thread waiting for a head
        with socket.create_connection(("127.0.0.1", port), timeout=5) as extra:
            answer = b""
            with contextlib.suppress(ConnectionError):
                while chunk := extra.recv(4096):
                    answer += chunk
        assert answer == b"" or answer.startswith(b"HTTP/1.1 503"), answer[:100]
        # The held connections are closed by the head deadline; then the gateway answers again.
        time.sleep(2.5)
        assert _healthz(port) == 200
    finally:
        for s in held:
            s.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_clients_that_go_away_leave_no_traceback(small_gateway: Gateway, capfd: pytest.CaptureFixture[str]) -> None:
    port = _port(small_gateway)
    for _ in range(40):  # over the cap, each closed at once with unread answers (RST to the server's writes)
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
        s.close()
    time.sleep(2)
    assert _healthz(port) == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err[-2000:]


def test_hundreds_of_slow_connections_do_not_stop_the_api(stack: Stack) -> None:
    """Against `make run`: 300 connections trickling their heads; /healthz keeps answering, all are closed."""
    port = int(stack.env["FANOUT_PORT"])
    stop, closed = threading.Event(), []
    clients = [threading.Thread(target=_trickle, args=(port, stop, closed, 0.5), daemon=True) for _ in range(300)]
    for t in clients:
        t.start()
    try:
        time.sleep(2)
        for _ in range(5):
            started = time.monotonic()
            assert _healthz(port) == 200
            assert time.monotonic() - started < 2
            time.sleep(0.5)
        deadline = time.monotonic() + gateway_module.HEAD_SECONDS + 15  # one deadline for all of them
        for t in clients:
            t.join(max(0.0, deadline - time.monotonic()))
    finally:
        stop.set()
    assert len(closed) == 300, f"{300 - len(closed)} slow connections were still open past the head deadline"
    assert max(closed) < gateway_module.HEAD_SECONDS + 10, max(closed)
    said = log_path(stack).read_text(errors="replace")
    assert "BrokenPipeError" not in said and "Exception occurred during processing" not in said
