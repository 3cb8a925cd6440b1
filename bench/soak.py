"""The long soak: tests/fault/soak.py's run on a moto server of its own, with its figures for the table."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from bench.e2e import free_port


def measure(events: int) -> dict[str, Any]:
    from fanout.local.emulator import Emulator
    from fanout.localenv import new_credentials
    from tests.fault import soak
    from tests.fault.harness import make_world

    with tempfile.TemporaryDirectory(prefix="fanout-soak-") as tmp:
        state = Path(tmp) / "emulator"
        state.mkdir()
        em = Emulator(free_port(), state, *new_credentials())
        em.start()
        # The harness sets the handlers' environment as a test would; undone when the soak ends.
        with pytest.MonkeyPatch.context() as mp:
            world = make_world(em, Path(tmp), visibility_timeout=30, monkeypatch=mp, tap=False)
            try:
                result = soak.run(world, events)
            finally:
                world.stop_pollers()
                em.stop()
    return {
        "events": result.events,
        "warmup_events": result.warmup,
        "rate_per_s": result.rate_per_s,
        "target_rate_per_s": result.target_rate_per_s,
        "rss_before_mib": result.rss_before_kib / 1024,
        "rss_after_mib": result.rss_after_kib / 1024,
        "rss_growth_mib_per_1000_events": result.growth_kib_per_1000 / 1024,
        "allowed_growth_mib_per_1000_events": soak.MAX_GROWTH_KIB_PER_EVENT * 1000 / 1024,
        "stored": result.stored,
        "dead_lettered": result.dead_lettered,
        "exactly_once": True,  # soak.run raises otherwise
    }
