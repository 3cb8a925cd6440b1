"""The consumer keys of contract §6: source, eventPattern, idempotent, and errors that name the file and consumer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fanout import topology
from fanout.topology import TopologyError
from tests.support.checkout import STACK_CONFIGS

BASE = {"name": "audit", "handler": "handlers.audit:handler"}
PATTERN = {"source": ["fanout.persister"], "detail-type": ["fanout.data.persisted.v1"]}


def _one(**keys: Any) -> topology.Consumer:
    return topology.from_config("dev", {"consumers": [dict(BASE, **keys)]}).consumer("audit")


def test_defaults_are_a_topic_consumer_without_idempotency() -> None:
    c = _one()
    assert (c.source, c.event_pattern, c.idempotent) == ("topic", None, False)


def test_bus_consumer_keeps_its_pattern() -> None:
    c = _one(source="bus", eventPattern=PATTERN, idempotent=True)
    assert (c.source, c.event_pattern, c.idempotent) == ("bus", PATTERN, True)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"source": "bus"}, r"consumer 'audit': fanout:consumers\[0\]\.eventPattern is required with source: bus"),
        ({"eventPattern": PATTERN}, r"fanout:consumers\[0\]\.eventPattern applies to source: bus only"),
        ({"source": "sns"}, r"fanout:consumers\[0\]\.source must be one of topic, bus, got 'sns'"),
        ({"source": "bus", "eventPattern": {}}, r"eventPattern must be a non-empty mapping"),
        (
            {"source": "bus", "eventPattern": {"source": "fanout.persister"}},
            r"eventPattern\.source must be a non-empty",
        ),
        ({"source": "bus", "eventPattern": {"detail": {"subject": []}}}, r"eventPattern\.detail\.subject must be"),
        ({"source": "bus", "eventPattern": PATTERN, "filterPolicy": {"type": ["x"]}}, r"filterPolicy applies to topic"),
        ({"idempotent": "yes"}, r"consumer 'audit': fanout:consumers\[0\]\.idempotent must be true or false"),
        ({"batchSize": 11}, r"consumer 'audit': fanout:consumers\[0\]\.batchSize must be an integer"),
    ],
)
def test_refusals_name_the_consumer_and_key(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(TopologyError, match=message):
        _one(**keys)


def test_errors_from_a_stack_file_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  fanout:consumers:\n    - name: audit\n      handler: handlers.audit:handler\n      source: bus\n"
    )
    with pytest.raises(TopologyError) as err:
        topology.load("dev", tmp_path)
    assert str(err.value).startswith("Pulumi.dev.yaml: consumer 'audit': fanout:consumers[0].eventPattern")


def test_the_shipped_stacks_load() -> None:
    # The tests' copies of the shipped stack configs (the checkout's own are its user's to edit).
    for stack in ("dev", "prd"):
        assert all(c.source == "topic" for c in topology.load(stack, STACK_CONFIGS).consumers)
