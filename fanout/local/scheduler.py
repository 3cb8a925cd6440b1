"""Fires the generator on the stack's schedule, as EventBridge Scheduler does on AWS (moto never does).

rate(...) and cron(...) alike (fanout/schedule.py reads both), in UTC as the stack's schedule is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from fanout import schedule as schedules

log = logging.getLogger("fanout.local.scheduler")


def rate_seconds(expression: str) -> float:
    """Seconds between runs of a rate(...) expression."""
    seconds = schedules.rate_seconds(expression)
    if seconds is None:
        raise ValueError(f"not a rate(N unit) expression: {expression!r}")
    return seconds


class Scheduler(threading.Thread):
    def __init__(
        self,
        expression: str,
        fire: Callable[[], object],
        stop: threading.Event,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tick: float = 1.0,
    ) -> None:
        schedules.check(expression)  # refused here, before the thread starts, never in it
        super().__init__(name="scheduler", daemon=True)
        self.expression = expression
        self.fire = fire
        self.stop = stop
        self.clock = clock
        self.tick = tick  # the clock is read again at least this often (it may jump, or be a test's)
        self.runs = 0

    def run(self) -> None:
        due = schedules.next_run(self.expression, self.clock())
        while due is not None:
            while (left := (due - self.clock()).total_seconds()) > 0:
                if self.stop.wait(min(left, self.tick)):
                    return
            if self.stop.is_set():
                return
            try:
                self.fire()
                self.runs += 1
            except Exception:
                log.exception("scheduled generator run failed")
            # From the time it was due, so a slow run does not shift the schedule; runs missed meanwhile are
            # skipped, not caught up on.
            following = schedules.next_run(self.expression, due)
            now = self.clock()
            due = following if following is None or following > now else schedules.next_run(self.expression, now)
        log.warning("the schedule %s fires no more; the generator stops", self.expression)
