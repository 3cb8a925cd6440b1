"""The AsyncAPI document follows the topology while `make run` runs: a consumer added to the stack file
appears as its receive operation, and goes when it is removed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.asyncapi_spec import errors
from tests.support.checkout import repo_copy
from tests.support.stack import Stack, running_stack

ENTRY = """    - name: audit-live
      filterPolicy:
        type: [fanout.data.generated.v1]
        subject: [alice]
"""


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return repo_copy(tmp_path_factory.mktemp("checkout"))


@pytest.fixture(scope="module")
def live(copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("state"), cwd=copy) as s:
        yield s


def _operations(stack: Stack) -> dict:
    doc = requests.get(f"{stack.api_url}/asyncapi.json", timeout=10).json()
    assert errors(doc) == []
    return doc["operations"]


def _wait(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"not true within {timeout} s")


def test_a_consumer_added_to_the_stack_file_appears_in_the_document_and_goes_when_removed(
    live: Stack, copy: Path
) -> None:
    assert "audit-live" not in _operations(live)
    config = copy / "Pulumi.dev.yaml"
    original = config.read_text()
    at = original.index("  fanout:generator:")
    try:
        config.write_text(original[:at] + ENTRY + original[at:])
        op = _wait(lambda: _operations(live).get("audit-live"))
        assert op["action"] == "receive"
        assert op["x-fanout"]["filterPolicy"] == {"type": ["fanout.data.generated.v1"], "subject": ["alice"]}
        assert op["messages"] == [{"$ref": "#/channels/topic/messages/fanout.data.generated.v1"}]
        config.write_text(original)
        _wait(lambda: "audit-live" not in _operations(live))
    finally:
        config.write_text(original)
