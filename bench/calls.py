"""Counting AWS calls where they happen: botocore event hooks on every session this process makes.

The handlers build their own boto3 sessions (handlers/core/clients.py) and the pollers
another, so a hook on boto3's default session would miss them. Instead every botocore
Session gets the hooks as it is created; clients copy their session's event emitter, so
each client the stack builds reports each API call (what is billed) and
`before-send` (one per HTTP attempt, to show retries); the API parameters are read at
`before-parameter-build` (`before-call` only sees the serialized request). Billed units (items, entries,
64 KB chunks) are computed from the same request parameters.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session

from bench.prices import CHUNK_BYTES

_local = threading.local()
LOCAL_ONLY_THREADS = frozenset({"snapshotter"})


def _chunks(size: int) -> int:
    return max(1, math.ceil(size / CHUNK_BYTES))


def _attr_size(value: dict[str, Any]) -> int:
    (kind, raw), *_ = value.items()
    if kind in ("S", "N", "B"):
        return len(str(raw).encode("utf-8"))
    if kind in ("M",):
        return sum(len(k.encode()) + _attr_size(v) for k, v in raw.items())
    if kind in ("L",):
        return sum(_attr_size(v) for v in raw)
    return len(json.dumps(raw).encode())


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values, in bytes."""
    return sum(len(name.encode("utf-8")) + _attr_size(value) for name, value in item.items())


def write_units(item: dict[str, Any]) -> int:
    return max(1, math.ceil(item_size(item) / 1024))


def _name(arn_or_url: str) -> str:
    return arn_or_url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


class CallCounter:
    """Calls and HTTP attempts per (service, operation), billed units per (service, unit, resource)."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.units: Counter[tuple[str, str, str]] = Counter()
        self.after: list[Callable[[str, dict[str, Any], dict[str, Any]], None]] = []
        self._lock = threading.Lock()
        self.enabled = False
        self._orig_init: Any = None

    # --- install on every botocore Session -------------------------------------------------
    def install(self) -> None:
        counter = self
        orig = botocore.session.Session.__init__
        self._orig_init = orig

        def init(session: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
            orig(session, *args, **kwargs)
            # before-parameter-build sees the API parameters; before-call only sees the serialized request.
            session.register("before-parameter-build", counter._before_call)
            session.register("after-call", counter._after_call)
            session.register("before-send", counter._before_send)

        botocore.session.Session.__init__ = init  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._orig_init is not None:
            botocore.session.Session.__init__ = self._orig_init  # type: ignore[method-assign]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.attempts.clear()
            self.units.clear()

    def add(self, key: tuple[str, str, str], amount: float) -> None:
        with self._lock:
            self.units[key] += amount  # type: ignore[assignment]

    # --- hooks -----------------------------------------------------------------------------
    def _counting(self) -> bool:
        # The local runtime's snapshotter copies state to disk: local housekeeping, no AWS counterpart.
        return (
            self.enabled
            and not getattr(_local, "muted", False)
            and threading.current_thread().name not in LOCAL_ONLY_THREADS
        )

    def _before_call(self, model: Any, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        if context is None:
            return
        service = model.service_model.endpoint_prefix
        operation = model.name
        counting = self._counting()
        context["bench_op"] = (service, operation, params, counting)
        if not counting:
            return
        try:
            units = request_units(service, operation, params)
        except Exception:  # a hook must never break the call it observes
            units = {}
        with self._lock:
            self.calls[(service, operation)] += 1
            for key, n in units.items():
                self.units[key] += n

    def _after_call(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        op = context.get("bench_op")
        if op is None:
            return
        service, operation, params, counting = op
        try:
            if counting:
                units = response_units(service, operation, params, parsed)
                with self._lock:
                    for key, n in units.items():
                        self.units[key] += n
            for hook in self.after:
                hook(f"{service}.{operation}", params, parsed)
        except Exception:  # a hook must never break the call it observes
            logging.getLogger("bench").exception("bench hook failed on %s.%s", service, operation)

    def _before_send(self, event_name: str = "", **_: Any) -> None:
        # before-send.<service>.<Operation>: one per HTTP attempt, retries included.
        if not self._counting():
            return
        _, _, rest = event_name.partition(".")
        service, _, operation = rest.partition(".")
        with self._lock:
            self.attempts[(service, operation)] += 1

    def replay(self, records: list[dict[str, Any]]) -> None:
        """Count calls made in a function's own process (bench.calls_child) as if made here."""
        for r in records:
            service, operation, params = r["service"], r["operation"], r.get("params") or {}
            parsed = r.get("parsed") or {}
            if self.enabled:
                try:
                    units = Counter(request_units(service, operation, params))
                    units.update(response_units(service, operation, params, parsed))
                except Exception:  # a hook must never break the run it observes
                    units = Counter()
                with self._lock:
                    self.calls[(service, operation)] += 1
                    self.attempts[(service, operation)] += int(r.get("attempts") or 1)
                    for key, n in units.items():
                        self.units[key] += n
            for hook in self.after:
                try:
                    hook(f"{service}.{operation}", params, parsed)
                except Exception:
                    logging.getLogger("bench").exception("bench hook failed on %s.%s", service, operation)

    # --- reading ----------------------------------------------------------------------------
    def by_service(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for (service, operation), n in sorted(self.calls.items()):
            out[service][operation] = n
        return dict(out)

    def total_attempts(self) -> int:
        return sum(self.attempts.values())


def request_units(service: str, operation: str, params: dict[str, Any]) -> dict[tuple[str, str, str], int]:
    """Billed units a request costs, by (service, unit, resource); corrected in response_units."""
    if service == "sns" and operation == "Publish":
        return {("sns", "publish", _name(params.get("TopicArn", ""))): _chunks(len(params.get("Message", "").encode()))}
    if service == "sns" and operation == "PublishBatch":
        entries = params.get("PublishBatchRequestEntries", [])
        total = sum(len(e.get("Message", "").encode()) for e in entries)
        return {("sns", "publish", _name(params.get("TopicArn", ""))): _chunks(total)}
    if service == "sqs":
        # Only sends carry payload worth chunking; every other SQS action is one request.
        bodies = [params.get("MessageBody", "")] + [e.get("MessageBody", "") for e in params.get("Entries", [])]
        size = sum(len(str(b).encode()) for b in bodies)
        return {("sqs", "request", _name(params.get("QueueUrl", ""))): _chunks(size)}
    if service == "dynamodb" and operation == "BatchWriteItem":
        out: Counter[tuple[str, str, str]] = Counter()
        for table, reqs in params.get("RequestItems", {}).items():
            out[("dynamodb", "wru", table)] += sum(
                write_units(r["PutRequest"]["Item"]) for r in reqs if "PutRequest" in r
            )
        return dict(out)
    if service == "dynamodb" and operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return {("dynamodb", "wru", params.get("TableName", "")): write_units(params.get("Item") or {"k": {"S": ""}})}
    if service == "dynamodb" and operation in ("GetItem", "Query", "Scan", "BatchGetItem"):
        return {("dynamodb", "read_calls", params.get("TableName", "")): 1}
    if service == "events" and operation == "PutEvents":
        entries = params.get("Entries", [])
        bus = _name(entries[0].get("EventBusName", "default")) if entries else "default"
        return {("events", "entries", bus): sum(_chunks(len(json.dumps(e).encode())) for e in entries)}
    if service == "s3" and operation in ("PutObject", "CopyObject", "CompleteMultipartUpload", "ListObjectsV2"):
        return {("s3", "put", params.get("Bucket", "")): 1}
    if service == "s3" and operation == "GetObject":
        return {("s3", "get", params.get("Bucket", "")): 1}
    return {}


def response_units(
    service: str, operation: str, params: dict[str, Any], parsed: dict[str, Any]
) -> dict[tuple[str, str, str], int]:
    if service == "dynamodb" and operation == "BatchWriteItem":
        # Only processed items are billed; UnprocessedItems are sent (and counted) again.
        out: Counter[tuple[str, str, str]] = Counter()
        for table, reqs in (parsed.get("UnprocessedItems") or {}).items():
            out[("dynamodb", "wru", table)] -= sum(
                write_units(r["PutRequest"]["Item"]) for r in reqs if "PutRequest" in r
            )
        return dict(out)
    if service == "sqs" and operation == "ReceiveMessage":
        # A first receive means SNS delivered it: SQS bills that delivery as one request (SNS bills nothing).
        first = sum(
            1 for m in parsed.get("Messages", []) if m.get("Attributes", {}).get("ApproximateReceiveCount", "1") == "1"
        )
        return {("sqs", "delivery", _name(params.get("QueueUrl", ""))): first} if first else {}
    if service == "events" and operation == "PutEvents":
        failed = parsed.get("FailedEntryCount", 0)
        if failed:
            entries = params.get("Entries", [])
            bus = _name(entries[0].get("EventBusName", "default")) if entries else "default"
            return {("events", "entries", bus): -failed}
    return {}


@contextmanager
def muted() -> Iterator[None]:
    """Calls this thread makes inside the block are the bench's own probes, not the system's."""
    _local.muted = True
    try:
        yield
    finally:
        _local.muted = False
