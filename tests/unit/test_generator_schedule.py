"""The local scheduler fires the generator on the stack's schedule, or on FANOUT_GENERATOR_SCHEDULE's."""

from __future__ import annotations

import time
from typing import Any

import pytest
from unit_support import Aws

from fanout import localenv, topology
from fanout.local.runtime import Runtime
from fanout.local.scheduler import rate_seconds


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 second)", 1), ("rate(2 seconds)", 2), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600)],
)
def test_rate_expressions(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


def test_the_schedule_override_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANOUT_GENERATOR_SCHEDULE", "rate(2 seconds)")
    assert localenv.load().generator_schedule == "rate(2 seconds)"
    for bad in ("every 2 seconds", "rate(0 seconds)", "cron(0 * * * ? *)"):
        monkeypatch.setenv("FANOUT_GENERATOR_SCHEDULE", bad)
        with pytest.raises(localenv.LocalConfigError, match="FANOUT_GENERATOR_SCHEDULE"):
            localenv.load()
    monkeypatch.delenv("FANOUT_GENERATOR_SCHEDULE")
    assert localenv.load().generator_schedule is None


def _runtime(monkeypatch: pytest.MonkeyPatch, **env: str) -> Runtime:
    monkeypatch.delenv("FANOUT_GENERATOR", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return Runtime(localenv.load(), topology.load("dev"))


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
