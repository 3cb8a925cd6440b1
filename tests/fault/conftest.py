"""Fault tests: one moto server for the session; each test builds its own world on it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fanout.local.emulator import Emulator
from fanout.localenv import new_credentials
from tests.fault.harness import REPORT, World, make_world


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    em = Emulator(_free_port(), tmp_path_factory.mktemp("emulator"), *new_credentials())
    em.start()
    try:
        yield em
    finally:
        em.stop()


@pytest.fixture
def world(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    w = make_world(emulator, tmp_path, visibility_timeout=1, monkeypatch=monkeypatch)
    try:
        yield w
    finally:
        w.stop_pollers()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.write_sep("-", "fault and soak figures")
        for line in REPORT:
            terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    # The persister publishes no metric for a batch that stored nothing; expected under faults.
    config.addinivalue_line("filterwarnings", "ignore:No application metrics to publish:UserWarning")
