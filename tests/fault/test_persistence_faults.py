"""Faults on the persistence path: every accepted event ends up stored exactly once or in the DLQ.

Each test publishes a few hundred events, runs the real persister behind two Poller threads
against a real moto server, injects one kind of fault into the handlers' own boto3 clients,
and checks the invariant once the queue is empty (tests/fault/harness.py:check_exactly_once).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from handlers.core import clients
from tests.fault.harness import REPORT, Killed, World, check_exactly_once

EVENTS = 100


class _Raw:
    """The raw stream botocore reads an AWSResponse body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _throttle(url: str) -> AWSResponse:
    body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"injected"}'
    headers = {"x-amzn-RequestId": "injected", "Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(url, 400, headers, _Raw(body))


def _run(world: World, events: int = EVENTS, pollers: int = 2) -> tuple[list[str], dict[str, Any]]:
    accepted = world.publish(events)
    for _ in range(pollers):
        world.start_poller()
    outcome = world.settle(accepted)
    return accepted, outcome


def _note(name: str, accepted: list[str], outcome: dict[str, Any], **faults: int) -> None:
    REPORT.append(
        f"{name}: {len(accepted)} accepted, {len(set(outcome['stored']))} stored, {len(outcome['dlq'])} in DLQ, "
        + ", ".join(f"{k} {v}" for k, v in faults.items())
    )


def test_dynamodb_throttling(world: World) -> None:
    """HTTP-level ProvisionedThroughputExceeded: botocore retries, then the store retries, then SQS does."""
    rng = random.Random(1)
    injected = Counter[str]()
    ddb = clients.client("dynamodb")

    def maybe_throttle(request: Any, **_: Any) -> AWSResponse | None:
        if rng.random() < 0.5:
            injected["throttled"] += 1
            return _throttle(request.url)
        return None

    ddb.meta.events.register("before-send.dynamodb.BatchWriteItem", maybe_throttle)
    accepted, outcome = _run(world)
    check_exactly_once(accepted, outcome)
    assert injected["throttled"] > 3
    _note("throttling", accepted, outcome, **injected)


def test_unprocessed_items(world: World) -> None:
    """BatchWriteItem stores only part of a batch and hands back the rest as UnprocessedItems."""
    rng = random.Random(2)
    injected = Counter[str]()
    ddb = clients.client("dynamodb")
    real = ddb.batch_write_item

    def partial(RequestItems: dict[str, list[Any]], **kw: Any) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        if len(requests) < 2 or rng.random() < 0.4:
            return real(RequestItems=RequestItems, **kw)
        cut = rng.randrange(1, len(requests))
        real(RequestItems={table: requests[:cut]}, **kw)
        injected["unprocessed"] += len(requests) - cut
        return {"UnprocessedItems": {table: requests[cut:]}}

    ddb.batch_write_item = partial
    accepted, outcome = _run(world)
    check_exactly_once(accepted, outcome)
    assert injected["unprocessed"] > 5
    # UnprocessedItems are retried within the invocation: none of them should need the DLQ.
    assert not outcome["dlq"]
    _note("UnprocessedItems", accepted, outcome, **injected)


def test_eventbridge_partial_failure(world: World) -> None:
    """PutEvents answers FailedEntryCount > 0: the failed entries are retried, never lost or left unannounced."""
    rng = random.Random(3)
    injected = Counter[str]()
    eb = clients.client("events")
    real = eb.put_events

    def partial(Entries: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        fail = [rng.random() < 0.3 for _ in Entries]
        ok = [e for e, f in zip(Entries, fail, strict=True) if not f]
        if ok:
            real(Entries=ok, **kw)
        injected["failed_entries"] += sum(fail)
        return {
            "FailedEntryCount": sum(fail),
            "Entries": [
                {"ErrorCode": "InternalFailure", "ErrorMessage": "injected"} if f else {"EventId": "ok"} for f in fail
            ],
        }

    eb.put_events = partial
    accepted, outcome = _run(world)
    check_exactly_once(accepted, outcome)
    assert injected["failed_entries"] > 5
    _note("PutEvents partial failure", accepted, outcome, **injected)


@pytest.mark.parametrize("where", ["after-store", "before-store"])
def test_handler_crash_mid_batch(world: World, where: str) -> None:
    """The function dies mid-batch (after the write, before PutEvents; or before the write): SQS redelivers."""
    rng = random.Random(4)
    injected = Counter[str]()
    service, operation = ("events", "PutEvents") if where == "after-store" else ("dynamodb", "BatchWriteItem")
    client = clients.client(service)
    event_service = "eventbridge" if service == "events" else service

    def crash(**_: Any) -> None:
        if rng.random() < 0.3:
            injected["crashes"] += 1
            raise RuntimeError(f"injected crash before {operation}")

    client.meta.events.register(f"before-send.{event_service}.{operation}", crash)
    accepted, outcome = _run(world)
    check_exactly_once(accepted, outcome)
    assert injected["crashes"] > 2
    _note(f"crash {where}", accepted, outcome, **injected)


def test_poller_killed_and_restarted(world: World) -> None:
    """Pollers die abruptly mid-batch (messages in flight, some stored but not deleted) and are restarted."""
    rng = random.Random(5)
    injected = Counter[str]()
    lock = threading.Lock()
    dead = threading.Event()

    def dying(event: dict[str, Any], context: Any) -> Any:
        with lock:
            roll = rng.random()
        if roll < 0.08:
            injected["killed_before_handler"] += 1
            dead.set()
            raise Killed
        result = world.handler(event, context)
        if roll > 0.92:
            injected["killed_before_delete"] += 1
            dead.set()
            raise Killed
        return result

    previous_hook = threading.excepthook

    def quiet(args: threading.ExceptHookArgs) -> None:
        if not isinstance(args.exc_value, Killed):
            previous_hook(args)

    threading.excepthook = quiet
    try:
        accepted = world.publish(EVENTS)
        for _ in range(2):
            world.start_poller(dying)
        # A supervisor restarts dead pollers, as Lambda's event source mapping does.
        restarts = 0
        for _ in range(300):
            alive = [p for p, _ in world.pollers if p.is_alive()]
            for _ in range(2 - len(alive)):
                world.start_poller(dying)
                restarts += 1
            if set(accepted) <= set(world.stored()) and world.queue_empty():
                break
            dead.wait(0.2)
            dead.clear()
        outcome = world.settle(accepted)
    finally:
        threading.excepthook = previous_hook
    check_exactly_once(accepted, outcome)
    assert restarts >= 2
    _note("poller killed", accepted, outcome, restarts=restarts, **injected)
