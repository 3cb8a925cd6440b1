from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # A 1 s visibility timeout makes retries and DLQ moves observable within seconds.
    with running_stack(tmp_path_factory.mktemp("state"), FANOUT_VISIBILITY_TIMEOUT="1") as s:
        yield s
