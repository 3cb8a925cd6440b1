"""The AWS-call recorder inside a function's process (FANOUT_WORKER_HOOK=fanout.local.metering).

Each local function runs in its own process (fanout/local/worker.py). This installs botocore hooks
there and keeps each call's service, operation, parameters, parsed answer and HTTP attempts; the
worker sends them back with each invocation's answer. The runtime prices them for the console's
cost panel (fanout/cost.py), and `make bench` counts them (bench.calls.CallCounter.replay) as if
they had happened in its own process.

Each call's round trip to the local emulator is timed too: an invocation's answer ends with one
record of service `local` (cost.EMULATOR_SERVICE) giving the time its calls spent waiting on the
emulator, which the cost model replaces with an AWS round trip when it prices Lambda duration.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import botocore.session

_lock = threading.Lock()
_records: list[dict[str, Any]] = []
_local = threading.local()


def _before_call(model: Any, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
    if context is not None:
        context["bench_child"] = {
            "service": model.service_model.endpoint_prefix,
            "operation": model.name,
            "params": params,
            "attempts": 0,
        }
        _local.current = context["bench_child"]


def _before_send(**_: Any) -> None:
    current = getattr(_local, "current", None)
    if current is not None:
        current["attempts"] += 1
        current.setdefault("_sent", time.monotonic())


def _after_call(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    record = context.get("bench_child")
    if record is None:
        return
    record["parsed"] = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
    if "_sent" in record:
        record["_waited"] = (record.pop("_sent"), time.monotonic())
    with _lock:
        _records.append(record)


def install() -> None:
    orig = botocore.session.Session.__init__

    def init(session: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        orig(session, *args, **kwargs)
        session.register("before-parameter-build", _before_call)
        session.register("before-send", _before_send)
        session.register("after-call", _after_call)

    botocore.session.Session.__init__ = init  # type: ignore[method-assign]


def drain() -> list[dict[str, Any]]:
    with _lock:
        out = list(_records)
        _records.clear()
    spans = [r.pop("_waited") for r in out if "_waited" in r]
    if out:
        out.append(
            {
                "service": "local",
                "operation": "Invocation",
                "params": {
                    "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
                    "memory_mb": int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 0),
                    "emulator_ms": _covered(spans) * 1000,
                    "calls": [r["service"] for r in out],
                },
            }
        )
    return out


def _covered(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the spans (calls made in parallel overlap: counted once)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(spans):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total
