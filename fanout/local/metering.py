"""The AWS-call recorder inside a function's process (FANOUT_WORKER_HOOK=fanout.local.metering).

Each local function runs in its own process (fanout/local/worker.py). This installs botocore hooks
there and keeps each call's service, operation, parameters, parsed answer and HTTP attempts; the
worker sends them back with each invocation's answer. The runtime prices them for the console's
cost panel (fanout/cost.py), and `make bench` counts them (bench.calls.CallCounter.replay) as if
they had happened in its own process.
"""

from __future__ import annotations

import threading
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


def _after_call(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    record = context.get("bench_child")
    if record is None:
        return
    record["parsed"] = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
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
    return out
