"""The local scheduler fires the generator on the stack's schedule, or on FANOUT_GENERATOR_SCHEDULE's."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from unit_support import Aws

from fanout import localenv, schedule, topology
from fanout.local.runtime import Runtime
from fanout.local.scheduler import Scheduler, rate_seconds
from tests.support.checkout import STACK_CONFIGS


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 second)", 1), ("rate(2 seconds)", 2), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600)],
)
def test_rate_expressions(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


def test_the_schedule_override_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANOUT_GENERATOR_SCHEDULE", "rate(2 seconds)")
    assert localenv.load().generator_schedule == "rate(2 seconds)"
    monkeypatch.setenv("FANOUT_GENERATOR_SCHEDULE", "cron(0/5 * * * ? *)")  # AWS's cron runs locally too
    assert localenv.load().generator_schedule == "cron(0/5 * * * ? *)"
    for bad in ("every 2 seconds", "rate(0 seconds)", "cron(0 * * * *)", "cron(0 * * * * *)"):
        monkeypatch.setenv("FANOUT_GENERATOR_SCHEDULE", bad)
        with pytest.raises(localenv.LocalConfigError, match="FANOUT_GENERATOR_SCHEDULE"):
            localenv.load()
    monkeypatch.delenv("FANOUT_GENERATOR_SCHEDULE")
    assert localenv.load().generator_schedule is None


def _runtime(monkeypatch: pytest.MonkeyPatch, **env: str) -> Runtime:
    monkeypatch.delenv("FANOUT_GENERATOR", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return Runtime(localenv.load(), topology.load("dev", STACK_CONFIGS))


def test_the_scheduler_fires_the_generator_on_the_override(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = _runtime(monkeypatch, FANOUT_GENERATOR_SCHEDULE="rate(1 second)")
    runtime._start_scheduler()
    try:
        assert runtime.schedule == "rate(1 second)"
        deadline = time.monotonic() + 5
        published: list[Any] = []
        while len(published) < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
            published += aws.published()
    finally:
        runtime.stop_event.set()
        for t in runtime.threads:
            t.join(3)
    # Two runs of 5 events (the handler's defaults, as in the dev stack), with no `fanout generate` involved.
    assert len(published) >= 10
    assert {e["subject"] for e in published} == {"demo-user"}
    assert {e["source"] for e in published} == {"fanout.generator"}


def test_the_scheduler_stays_off_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = _runtime(monkeypatch, FANOUT_GENERATOR="off", FANOUT_GENERATOR_SCHEDULE="rate(1 second)")
    runtime._start_scheduler()
    assert runtime.threads == [] and runtime.schedule is None


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(0/15 * * * ? *)", "2026-03-04T10:07:00", "2026-03-04T10:15:00"),
        ("cron(0 9 ? * MON-FRI *)", "2026-03-06T09:00:00", "2026-03-09T09:00:00"),  # Friday -> Monday
        ("cron(30 8 L * ? *)", "2026-02-01T00:00:00", "2026-02-28T08:30:00"),  # the month's last day
        ("cron(0 12 ? * 6#1 *)", "2026-03-01T00:00:00", "2026-03-06T12:00:00"),  # AWS: 6 is Friday
        ("rate(5 minutes)", "2026-03-04T10:07:00", "2026-03-04T10:12:00"),
    ],
)
def test_every_schedule_aws_accepts_has_its_next_run(expression: str, after: str, expected: str) -> None:
    when = datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert schedule.next_run(expression, when) == datetime.fromisoformat(expected).replace(tzinfo=UTC)


def test_a_cron_schedule_in_the_past_never_fires_again() -> None:
    assert schedule.next_run("cron(0 0 1 1 ? 2020)", datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_the_scheduler_fires_a_cron_schedule_when_it_is_due() -> None:
    """A cron(...) every minute, on a clock that runs 60 times faster: three runs in about three seconds."""
    start = datetime(2026, 3, 4, 10, 0, 30, tzinfo=UTC)
    began = time.monotonic()
    fired: list[datetime] = []

    def clock() -> datetime:
        return start + timedelta(seconds=(time.monotonic() - began) * 60)

    stop = threading.Event()
    scheduler = Scheduler("cron(* * * * ? *)", lambda: fired.append(clock()), stop, clock=clock, tick=0.01)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while len(fired) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        scheduler.join(3)
    assert [f.replace(second=0, microsecond=0).minute for f in fired[:3]] == [1, 2, 3]
    assert all(f.second < 10 for f in fired[:3])  # at the top of each minute, give or take the fake clock


def test_a_schedule_make_run_cannot_run_is_refused_with_the_config(tmp_path: Path) -> None:
    """Refused by the stack config's check (before anything starts), in one line naming the key."""

    def config(expression: str) -> None:  # a stack config of our own: never the user's
        text = f"config:\n  fanout:prefix: fanout-dev\n  fanout:generator:\n    schedule: {expression}\n"
        (tmp_path / "Pulumi.dev.yaml").write_text(text)

    for bad in ("cron(0 18 ? * MON-FRI)", "cron(61 * * * ? *)", "at(2026-01-01T00:00:00)"):
        config(bad)
        with pytest.raises(topology.TopologyError) as refused:
            topology.load("dev", root=tmp_path)
        assert "fanout:generator.schedule" in str(refused.value) and "\n" not in str(refused.value)
    config("cron(0 9 ? * MON-FRI *)")
    assert topology.load("dev", root=tmp_path).generator.schedule == "cron(0 9 ? * MON-FRI *)"
