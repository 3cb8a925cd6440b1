"""Soak: 3,000 events through the api handler and the persister at a steady rate; memory stays flat.

The whole data path that runs in our process (api handler -> SNS; pollers -> persister ->
DynamoDB + EventBridge) runs here, so this process's RSS is the stack's. It is read from
/proc/self/status after a warm-up (imports, clients, caches) and again after the soak.
"""

from __future__ import annotations

import gc
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fanout.local.emulator import Emulator
from fanout.local.lambda_context import LocalContext
from tests.fault.harness import REPORT, World, check_exactly_once, make_world, rss_kib

SOAK_EVENTS = 3000
RATE_PER_S = 40  # what moto sustains here with the persister draining alongside (2 cores)
WARMUP_EVENTS = 200
MAX_GROWTH_KIB = 24 * 1024  # flat: well under 10 KiB per event would still be a leak of 30 MB


def _post_event(user: str, n: int) -> dict[str, Any]:
    body = {"informationOne": f"soak {n} ✓ {'é' * (n % 40)}", "informationTwo": str(n)}
    return {
        "resource": "/data",
        "path": "/data",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/data",
            "httpMethod": "POST",
            "path": "/local/data",
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "accountId": "123456789012",
            "apiId": "local",
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": {"sub": user, "roles": "data.read,data.write", "principalId": user},
        },
        "body": json.dumps(body, ensure_ascii=False),
        "isBase64Encoded": False,
    }


def _post_at_rate(count: int, rate: float, threads: int = 4) -> list[str]:
    from handlers import api

    accepted: list[str] = []
    lock = threading.Lock()
    start = time.monotonic()
    slots = iter(range(count))

    def client(k: int) -> None:
        user = f"soak-{k}"
        while True:
            with lock:
                n = next(slots, None)
            if n is None:
                return
            # Steady: request n goes out no earlier than n / rate seconds after the start.
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            answer = api.handler(_post_event(user, n), LocalContext(function_name="api", region="us-east-1"))
            assert answer["statusCode"] == 202, answer
            with lock:
                accepted.append(json.loads(answer["body"])["id"])

    workers = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return accepted


@pytest.fixture
def soak_world(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # No faults here: a visibility timeout longer than any batch keeps redeliveries out of the picture.
    w = make_world(emulator, tmp_path, visibility_timeout=30, monkeypatch=monkeypatch, tap=False)
    try:
        yield w
    finally:
        w.stop_pollers()


def test_soak_memory_flat(soak_world: World) -> None:
    world = soak_world
    for _ in range(2):
        world.start_poller()
    warm = _post_at_rate(WARMUP_EVENTS, RATE_PER_S)
    deadline = time.monotonic() + 60
    while not (set(warm) <= set(world.stored()) and world.queue_empty()) and time.monotonic() < deadline:
        time.sleep(0.5)
    gc.collect()
    before = rss_kib()
    started = time.monotonic()
    accepted = _post_at_rate(SOAK_EVENTS, RATE_PER_S)
    posting = time.monotonic() - started
    outcome = world.settle(warm + accepted, timeout=120)
    check_exactly_once(warm + accepted, outcome)
    assert not outcome["dlq"]
    gc.collect()
    after = rss_kib()
    REPORT.append(
        f"soak: {SOAK_EVENTS} events at {SOAK_EVENTS / posting:.0f}/s (target {RATE_PER_S}/s); "
        f"RSS {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after ({(after - before) / 1024:+.1f} MiB)"
    )
    assert after - before < MAX_GROWTH_KIB, f"RSS grew {(after - before) / 1024:.1f} MiB over {SOAK_EVENTS} events"
