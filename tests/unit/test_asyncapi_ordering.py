"""The AsyncAPI document says whether the topic channel is ordered: SNS/SQS bindings and the ordering key."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fanout import asyncapi, topology
from tests.support.asyncapi_spec import errors

WHERE = asyncapi.Where(region="eu-west-1", topic_arn="arn:aws:sns:eu-west-1:123456789012:fanout-fifo-data-events.fifo")
BUS_CONSUMER = {
    "name": "notify",
    "source": "bus",
    "eventPattern": {"source": ["fanout.persister"], "detail-type": ["fanout.data.persisted.v1"]},
}


def _doc(ordering: str) -> dict[str, Any]:
    config = copy.deepcopy(topology.read_stack_config("fifo"))
    config["ordering"] = ordering
    config["consumers"] = [*config["consumers"], BUS_CONSUMER]
    return asyncapi.document(topology.from_config("fifo", config), WHERE)


@pytest.mark.parametrize("ordering", ["standard", "fifo"])
def test_both_orderings_validate_against_the_official_schema(ordering: str) -> None:
    assert errors(_doc(ordering)) == []


def test_a_fifo_topic_channel_is_ordered_by_subject() -> None:
    doc = _doc("fifo")
    topic = doc["channels"]["topic"]
    assert topic["address"].endswith(".fifo")
    assert topic["bindings"]["sns"]["ordering"] == {"type": "FIFO", "contentBasedDeduplication": False}
    assert topic["x-ordering"]["type"] == "fifo"
    assert topic["x-ordering"]["messageGroupId"] == "$message.payload#/subject"
    assert topic["x-ordering"]["deduplicationId"] == "$message.payload#/id"


def test_topic_consumers_receive_from_fifo_queues_and_bus_consumers_do_not() -> None:
    doc = _doc("fifo")
    persister = doc["operations"]["persister"]["bindings"]
    for queue in persister["sqs"]["queues"]:
        assert queue["name"].endswith(".fifo")
        assert (queue["fifoQueue"], queue["deduplicationScope"], queue["fifoThroughputLimit"]) == (
            True,
            "messageGroup",
            "perMessageGroupId",
        )
    (sub,) = persister["sns"]["consumers"]
    assert sub["redrivePolicy"]["deadLetterQueue"]["name"] == "fanout-fifo-persister-sub-dlq.fifo"
    for queue in doc["operations"]["notify"]["bindings"]["sqs"]["queues"]:
        assert "fifoQueue" not in queue and not queue["name"].endswith(".fifo")


def test_a_standard_topic_says_standard_and_has_no_fifo_queues() -> None:
    doc = _doc("standard")
    assert doc["channels"]["topic"]["bindings"]["sns"]["ordering"] == {"type": "standard"}
    assert doc["channels"]["topic"]["x-ordering"]["type"] == "standard"
    queues = [q for op in doc["operations"].values() for q in op.get("bindings", {}).get("sqs", {}).get("queues", [])]
    assert queues and not any(q.get("fifoQueue") or q["name"].endswith(".fifo") for q in queues)


def test_a_wrong_fifo_binding_is_refused_by_the_official_schema() -> None:
    doc = _doc("fifo")
    doc["channels"]["topic"]["bindings"]["sns"]["ordering"]["type"] = "fifo"  # the binding spells it FIFO
    assert errors(doc)
