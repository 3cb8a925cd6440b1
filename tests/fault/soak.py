"""The soak: events through the api handler and the persister at a steady rate, RSS read before and after.

The whole data path that runs in this process (api handler -> SNS; pollers -> persister ->
DynamoDB + EventBridge) runs here, so this process's RSS is the stack's. It is read from
/proc/self/status after a warm-up (imports, clients, caches) and again after the soak.
`make test` runs a short soak (tests/fault/test_soak.py); `make bench` runs the long one.
"""

from __future__ import annotations

import gc
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fanout.local.lambda_context import LocalContext
from tests.fault.harness import World, check_exactly_once, rss_kib

RATE_PER_S = 40  # what moto sustains here with the persister draining alongside (2 cores)
WARMUP_EVENTS = 200
# Flat memory: what the long soak has always allowed (24 MiB over 3,000 events), per event, so a short
# soak is held to the same slope. A leak of 10 KiB per event exceeds it at any length.
MAX_GROWTH_KIB_PER_EVENT = 24 * 1024 / 3000


@dataclass(frozen=True)
class SoakResult:
    events: int
    warmup: int
    rate_per_s: float  # achieved posting rate
    target_rate_per_s: float
    rss_before_kib: int
    rss_after_kib: int
    stored: int
    dead_lettered: int

    @property
    def growth_kib(self) -> int:
        return self.rss_after_kib - self.rss_before_kib

    @property
    def growth_kib_per_1000(self) -> float:
        return self.growth_kib * 1000 / self.events

    @property
    def max_growth_kib(self) -> float:
        return MAX_GROWTH_KIB_PER_EVENT * self.events

    def line(self) -> str:
        return (
            f"soak: {self.events} events at {self.rate_per_s:.0f}/s (target {self.target_rate_per_s:.0f}/s); "
            f"RSS {self.rss_before_kib / 1024:.1f} MiB before, {self.rss_after_kib / 1024:.1f} MiB after "
            f"({self.growth_kib / 1024:+.1f} MiB, {self.growth_kib_per_1000 / 1024:+.2f} MiB per 1,000 events); "
            f"{self.stored} stored exactly once (warm-up included), {self.dead_lettered} dead-lettered"
        )


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


def run(world: World, events: int, rate: float = RATE_PER_S, warmup: int = WARMUP_EVENTS) -> SoakResult:
    """Warm up, soak, settle; raises AssertionError unless every accepted event is stored exactly once."""
    for _ in range(2):
        world.start_poller()
    warm = _post_at_rate(warmup, rate)
    deadline = time.monotonic() + 60
    while not (set(warm) <= set(world.stored()) and world.queue_empty()) and time.monotonic() < deadline:
        time.sleep(0.5)
    gc.collect()
    before = rss_kib()
    started = time.monotonic()
    accepted = _post_at_rate(events, rate)
    posting = time.monotonic() - started
    outcome = world.settle(warm + accepted, timeout=60 + events / rate)
    check_exactly_once(warm + accepted, outcome)
    gc.collect()
    after = rss_kib()
    return SoakResult(
        events=events,
        warmup=warmup,
        rate_per_s=events / posting,
        target_rate_per_s=rate,
        rss_before_kib=before,
        rss_after_kib=after,
        stored=len(outcome["stored"]),
        dead_lettered=sum(outcome["dlq"].values()),
    )
