"""Fires the generator on the stack's schedule, as EventBridge Scheduler does on AWS (moto never does)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

log = logging.getLogger("fanout.local.scheduler")
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    """Seconds between runs of a rate(...) expression; cron(...) is not emulated locally."""
    m = re.fullmatch(r"rate\((\d+) (second|minute|hour|day)s?\)", expression.strip())
    if not m:
        raise ValueError(f"the local scheduler runs rate(N unit) schedules only, got {expression!r}")
    return int(m.group(1)) * UNITS[m.group(2)]


class Scheduler(threading.Thread):
    def __init__(self, interval: float, fire: Callable[[], object], stop: threading.Event) -> None:
        super().__init__(name="scheduler", daemon=True)
        self.interval = interval
        self.fire = fire
        self.stop = stop
        self.runs = 0

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.fire()
                self.runs += 1
            except Exception:
                log.exception("scheduled generator run failed")
