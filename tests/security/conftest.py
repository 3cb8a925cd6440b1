from __future__ import annotations

import pytest

from tests.fuzz.live import scan_logs_at_end, shared_stack
from tests.support.stack import Stack


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return shared_stack(request.config, tmp_path_factory.getbasetemp() / "live-stack")


def pytest_sessionfinish(session: pytest.Session) -> None:
    scan_logs_at_end(session)
