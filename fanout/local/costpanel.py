"""The console's cost panel: what this run's AWS calls would cost on AWS, per million events, by service.

Priced by the one cost model (fanout/cost.py) that `make bench` uses. Counted here: the calls the
functions make in their processes (fanout.local.metering rides them back with each answer), the
event source mappings' SQS calls (the pollers' receives and deletes, first receives billed as the
SNS delivery), each invocation's duration at the function's memory, and one API Gateway request
per api invocation. The runtime's own housekeeping (trace taps, snapshots, the console) is not AWS
work and is not counted. Empty receives (pollers waiting on idle queues) are idle cost, shown apart
and never in the per-event lines: on an idle stack the per-event figures stay empty, not inflated.
Lambda duration is the measured time less the time calls waited on the local emulator, plus an
assumed AWS round trip per call (fanout/cost.py says which).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, defaultdict
from typing import Any

from fanout import cost

_COPY = re.compile(r"-\d+$")  # "persister-1" (a poller's environment) -> "persister"


class Meter:
    def __init__(self, memory_mb: dict[str, int] | None = None) -> None:
        self.memory_mb = {**cost.MEMORY_MB, **(memory_mb or {})}
        self.consumers = len(memory_mb or {})  # the runtime passes its consumers' memory sizes
        self.units: Counter[tuple[str, str, str]] = Counter()
        self.requests: Counter[str] = Counter()
        self.gb_s: defaultdict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what is counted

    def calls(self, records: list[dict[str, Any]]) -> None:
        units = cost.units_of(records)
        with self._lock:
            self.units.update(units)

    def invocation(self, function_name: str, ms: float) -> None:
        fn = _COPY.sub("", function_name)
        with self._lock:
            self.requests[fn] += 1
            self.gb_s[fn] += math.ceil(ms) / 1000 * self.memory_mb.get(fn, 256) / 1024

    def attach_pollers(self, sqs: Any) -> None:
        """Count the SQS calls the pollers make on this client (only from poller threads)."""

        def before(model: Any, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
            if context is not None and hasattr(threading.current_thread(), "poll_once"):
                context["fanout_meter"] = (model.name, params)

        def after(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            op = context.get("fanout_meter")
            if op is not None:
                self.calls([{"service": "sqs", "operation": op[0], "params": op[1], "parsed": parsed}])

        sqs.meta.events.register("before-parameter-build.sqs", before)
        sqs.meta.events.register("after-call.sqs", after)

    # ------------------------------------------------------------------ the panel

    def panel(self, events: int) -> dict[str, Any]:
        with self._lock:
            units = dict(self.units)
            requests = dict(self.requests)
            gb_s = dict(self.gb_s)
        lines = cost.dollars(units, lambda_requests=requests, lambda_gb_s=gb_s, api_requests=requests.get("api", 0))
        per_million = {k: (v / events * 1_000_000 if events else 0.0) for k, v in lines.items()}
        return {
            "events": events,
            "dollarsPerMillionEvents": per_million,
            "totalPerMillionEvents": sum(per_million.values()),
            # Not per event: what the consumers' pollers cost on AWS with no traffic, and the local count.
            "idle": {
                "dollarsPerMonth": cost.idle_dollars_per_month(self.consumers),
                "consumers": self.consumers,
                "emptyReceivesCounted": cost.unit(units, "sqs", "idle_receive"),
            },
            "invocations": requests,
            "pricesAsOf": cost.AS_OF,
            "region": cost.REGION,
            "sources": cost.SOURCES,
        }
