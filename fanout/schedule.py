"""Schedule expressions as EventBridge Scheduler reads them: `rate(N unit)` and `cron(...)` (UTC).

The stack config's check, `make run`'s local scheduler and FANOUT_GENERATOR_SCHEDULE all read them
here, so a schedule `make run` cannot run is refused before anything starts. cron(...) is AWS's
six-field form (minutes hours day-of-month month day-of-week year, with ?, L, W and #), evaluated
by aws-croniter.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

RATE = re.compile(r"rate\(([1-9]\d*) (second|minute|hour|day)s?\)")
CRON = re.compile(r"cron\((.+)\)")
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    pass


def _cron(fields: str) -> object:
    from aws_croniter import AwsCroniter
    from aws_croniter.exceptions import AwsCroniterExpressionError

    try:
        return AwsCroniter(fields.strip())
    except AwsCroniterExpressionError as exc:
        raise ScheduleError(f"cron({fields}) is not a valid AWS cron expression: {exc}") from None


def check(expression: str) -> None:
    """Raise ScheduleError (one line) unless the expression is a rate(...) or an AWS cron(...)."""
    text = expression.strip()
    if RATE.fullmatch(text):
        return
    cron = CRON.fullmatch(text)
    if cron is None:
        raise ScheduleError(f"a schedule must be rate(N unit) or cron(...), got {expression!r}")
    _cron(cron.group(1))


def rate_seconds(expression: str) -> int | None:
    """Seconds between runs of a rate(...) expression; None for a cron(...)."""
    m = RATE.fullmatch(expression.strip())
    return int(m.group(1)) * UNITS[m.group(2)] if m else None


def next_run(expression: str, after: datetime) -> datetime | None:
    """When the schedule fires next, strictly after `after` (aware, UTC); None when it never will again."""
    check(expression)
    seconds = rate_seconds(expression)
    if seconds is not None:
        return after + timedelta(seconds=seconds)
    cron = CRON.fullmatch(expression.strip())
    assert cron is not None
    found = _cron(cron.group(1)).get_next(after)  # type: ignore[attr-defined]
    return found[0] if found and found[0] is not None else None
