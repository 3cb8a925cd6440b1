"""A short soak: 400 events through the api handler and the persister at a steady rate; memory stays flat.

The long soak (3,000 events) and its figures are `make bench`'s (`python -m bench --only soak`);
both run tests/fault/soak.py. The growth allowed is per event, so the short form still fails on a leak.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fanout.local.emulator import Emulator
from tests.fault import soak
from tests.fault.harness import REPORT, World, make_world

SOAK_EVENTS = 400


@pytest.fixture
def soak_world(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # No faults here: a visibility timeout longer than any batch keeps redeliveries out of the picture.
    w = make_world(emulator, tmp_path, visibility_timeout=30, monkeypatch=monkeypatch, tap=False)
    try:
        yield w
    finally:
        w.stop_pollers()


def test_soak_memory_flat(soak_world: World) -> None:
    result = soak.run(soak_world, SOAK_EVENTS)
    REPORT.append(result.line())
    assert result.dead_lettered == 0
    assert result.growth_kib < result.max_growth_kib, (
        f"RSS grew {result.growth_kib / 1024:.1f} MiB over {SOAK_EVENTS} events "
        f"(allowed {result.max_growth_kib / 1024:.1f} MiB)"
    )
