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

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session

from fanout.cost import EMULATOR_SERVICE, request_units, response_units

_local = threading.local()
# Local housekeeping with no AWS counterpart: the state snapshots and the trace ledger's taps
# (fanout/local/trace.py), which observe the topic and the bus for `fanout trace` and the console.
LOCAL_ONLY_THREADS = frozenset({"snapshotter", "trace-tap", "trace-bus-tap", "trace-tap-filters"})


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
        """Count calls made in a function's own process (fanout.local.metering) as if made here."""
        for r in records:
            service, operation, params = r["service"], r["operation"], r.get("params") or {}
            parsed = r.get("parsed") or {}
            if self.enabled and service == EMULATOR_SERVICE:
                # Not an AWS call: the invocation's time spent waiting on the emulator (fanout.local.metering).
                with self._lock:
                    for key, n in request_units(service, operation, params).items():
                        self.units[key] += n
                continue
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


@contextmanager
def muted() -> Iterator[None]:
    """Calls this thread makes inside the block are the bench's own probes, not the system's."""
    _local.muted = True
    try:
        yield
    finally:
        _local.muted = False
