"""The AsyncAPI 3.0 document: valid against the official schema, and a mirror of the topology and schemas/."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from jsonschema import Draft7Validator
from unit_support import SCHEMA_DIR

from fanout import asyncapi, topology
from tests.support.asyncapi_spec import errors
from tests.support.checkout import STACK_CONFIGS

STACKS = ("dev", "prd")
WHERE = asyncapi.Where(
    region="eu-west-1",
    topic_arn="arn:aws:sns:eu-west-1:123456789012:fanout-dev-data-events",
    event_bus_arn="arn:aws:events:eu-west-1:123456789012:event-bus/fanout-dev-bus",
)


def _with_consumers(stack: str, *extra: dict[str, Any]) -> topology.Topology:
    config = copy.deepcopy(topology.read_stack_config(stack, STACK_CONFIGS))
    config["consumers"] = [*config.get("consumers", []), *extra]
    return topology.from_config(stack, config)


def _event_types() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in SCHEMA_DIR.glob("fanout.*.json"))


def _resolve(doc: dict[str, Any], ref: dict[str, str]) -> Any:
    """Follows a local $ref, and the refs it lands on, to the object itself."""
    node: Any = ref
    while isinstance(node, dict) and "$ref" in node:
        pointer, node = node["$ref"], doc
        for part in pointer.removeprefix("#/").split("/"):
            node = node[part]
    return node


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(
    "where", [asyncapi.Where(), WHERE, asyncapi.Where(region="eu-west-1", local_endpoint="http://127.0.0.1:4566")]
)
def test_the_document_of_each_stack_validates_against_the_official_schema(stack: str, where: asyncapi.Where) -> None:
    doc = asyncapi.document(topology.load(stack, STACK_CONFIGS), where)
    assert doc["asyncapi"] == "3.0.0"
    assert errors(doc) == []


def test_the_official_schema_is_really_applied() -> None:
    # The check can fail: a wrong action, an unknown SNS protocol, a payload schema that is not a schema.
    doc = asyncapi.document(topology.load("dev", STACK_CONFIGS), WHERE)
    for change in (
        lambda d: d["operations"]["persister"].update(action="consume"),
        lambda d: d["operations"]["persister"]["bindings"]["sns"]["consumers"][0].update(protocol="pigeon"),
        lambda d: d["components"]["messages"]["fanout.data.generated.v1"]["payload"]["schema"].update(type=5),
    ):
        bad = copy.deepcopy(doc)
        change(bad)
        assert errors(bad), "the official schema accepted a broken document"


def test_one_message_per_event_type_keyed_by_type_with_its_schema_and_cloudevents_headers() -> None:
    doc = asyncapi.document(topology.load("dev", STACK_CONFIGS))
    messages = doc["components"]["messages"]
    assert sorted(messages) == _event_types() == ["fanout.data.generated.v1", "fanout.data.persisted.v1"]
    for event_type, message in messages.items():
        schema = message["payload"]["schema"]
        assert message["payload"]["schemaFormat"] == "application/schema+json;version=draft-07"
        assert schema["$id"] == f"https://schemas.fanout.dev/{event_type}.json"
        assert "$ref" not in json.dumps(schema), "refs are inlined: the document stands alone"
        headers = message["headers"]["properties"]
        assert set(headers) == {
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "subject",
            "datacontenttype",
            "dataschema",
            "correlationid",
        }
        assert headers["type"]["const"] == event_type
        assert set(message["headers"]["required"]) == {
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "subject",
            "datacontenttype",
            "dataschema",
        }
        # Every example is a valid event of its type, by the very payload schema the document carries.
        assert message["examples"]
        for example in message["examples"]:
            assert not list(Draft7Validator(schema).iter_errors(example["payload"]))
            assert example["payload"]["type"] == event_type
            assert "data" not in example["headers"]


def test_producers_send_and_every_consumer_receives_by_name() -> None:
    topo = topology.load("dev", STACK_CONFIGS)
    doc = asyncapi.document(topo)
    ops = doc["operations"]
    receive = {name for name, op in ops.items() if op["action"] == "receive"}
    assert receive == {c.name for c in topo.consumers}
    send = {name: op for name, op in ops.items() if op["action"] == "send"}
    assert set(send) == {"api.publish", "generator.publish", "persister.announce"}
    assert send["api.publish"]["channel"] == {"$ref": "#/channels/topic"}
    assert send["persister.announce"]["channel"] == {"$ref": "#/channels/bus"}
    assert doc["channels"]["topic"]["address"] == topo.topic_name
    assert doc["channels"]["bus"]["address"] == topo.event_bus_name
    # Every reference in the document points at something in it.
    for op in ops.values():
        assert _resolve(doc, op["channel"])
        for ref in op["messages"]:
            assert _resolve(doc, ref)["name"] in _event_types()


def test_a_consumer_added_to_the_topology_appears_as_its_receive_operation() -> None:
    before = asyncapi.document(topology.load("dev", STACK_CONFIGS))
    assert "audit" not in before["operations"]
    topo = _with_consumers(
        "dev",
        {
            "name": "audit",
            "filterPolicy": {"subject": ["alice"], "type": ["fanout.data.generated.v1"]},
            "maxReceiveCount": 7,
        },
    )
    doc = asyncapi.document(topo, WHERE)
    assert errors(doc) == []
    op = doc["operations"]["audit"]
    assert op["action"] == "receive"
    assert op["channel"] == {"$ref": "#/channels/topic"}
    assert op["messages"] == [{"$ref": "#/channels/topic/messages/fanout.data.generated.v1"}]
    (sns,) = op["bindings"]["sns"]["consumers"]
    assert sns["protocol"] == "sqs"
    assert sns["rawMessageDelivery"] is True
    assert sns["filterPolicy"] == {"subject": ["alice"], "type": ["fanout.data.generated.v1"]}
    assert sns["filterPolicyScope"] == "MessageAttributes"
    assert sns["endpoint"] == {"name": "fanout-dev-audit"}
    queue, dlq = op["bindings"]["sqs"]["queues"]
    assert queue["name"] == "fanout-dev-audit"
    assert queue["redrivePolicy"] == {"deadLetterQueue": {"name": "fanout-dev-audit-dlq"}, "maxReceiveCount": 7}
    assert dlq["name"] == "fanout-dev-audit-dlq"
    assert op["x-fanout"]["filterPolicy"] == {"subject": ["alice"], "type": ["fanout.data.generated.v1"]}
    # The producers' SNS binding lists it among the topic's consumers.
    names = [c["displayName"] for c in doc["operations"]["api.publish"]["bindings"]["sns"]["consumers"]]
    assert "audit" in names


def test_a_bus_consumer_receives_from_the_bus_with_its_event_pattern() -> None:
    pattern = {"source": ["fanout.persister"], "detail-type": ["fanout.data.persisted.v1"]}
    topo = _with_consumers("dev", {"name": "notify", "source": "bus", "eventPattern": pattern})
    doc = asyncapi.document(topo, WHERE)
    assert errors(doc) == []
    op = doc["operations"]["notify"]
    assert op["channel"] == {"$ref": "#/channels/bus"}
    assert op["x-eventbridge"]["eventPattern"] == pattern
    assert op["x-eventbridge"]["rule"] == "fanout-dev-notify"
    assert op["x-fanout"]["eventPattern"] == pattern
    assert "sns" not in op["bindings"]
    (ref,) = op["messages"]
    on_bus = _resolve(doc, ref)
    # On the bus the CloudEvent arrives as an EventBridge event's detail.
    detail = on_bus["payload"]["schema"]["properties"]["detail"]
    assert detail == doc["components"]["messages"]["fanout.data.persisted.v1"]["payload"]["schema"]
    assert doc["channels"]["bus"]["x-eventbridge"]["busArn"] == WHERE.event_bus_arn


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({"filterPolicy": {"type": ["fanout.data.generated.v1"]}}, ["fanout.data.generated.v1"]),
        ({"filterPolicy": {"type": [{"prefix": "fanout."}]}}, ["fanout.data.generated.v1"]),
        ({"filterPolicy": {"type": [{"anything-but": "fanout.data.generated.v1"}]}}, []),
        ({"filterPolicy": {"type": ["fanout.data.persisted.v1"]}}, []),  # never on the topic
        (
            {"filterPolicy": {"informationOne": [{"prefix": "x"}]}, "filterPolicyScope": "MessageBody"},
            ["fanout.data.generated.v1"],
        ),
        ({}, ["fanout.data.generated.v1"]),
        ({"source": "bus", "eventPattern": {"source": ["fanout.persister"]}}, ["fanout.data.persisted.v1"]),
        ({"source": "bus", "eventPattern": {"source": ["someone.else"]}}, []),
        (
            {"source": "bus", "eventPattern": {"detail": {"type": [{"prefix": "fanout.data.p"}]}}},
            ["fanout.data.persisted.v1"],
        ),
        ({"source": "bus", "eventPattern": {"detail-type": ["fanout.data.generated.v1"]}}, []),
    ],
)
def test_the_messages_of_a_receive_operation_are_what_its_selection_lets_through(selection, expected) -> None:
    doc = asyncapi.document(_with_consumers("dev", {"name": "probe", **selection}))
    assert errors(doc) == []
    types = [ref["$ref"].rsplit("/", 1)[1] for ref in doc["operations"]["probe"]["messages"]]
    assert types == expected


def test_an_operator_filter_the_sns_binding_cannot_type_is_kept_as_an_extension() -> None:
    # The archive's {"prefix": ...} inside a list: the SNS binding 0.1.0 schema allows only strings there.
    doc = asyncapi.document(topology.load("dev", STACK_CONFIGS))
    (sns,) = doc["operations"]["archive"]["bindings"]["sns"]["consumers"]
    assert "filterPolicy" not in sns
    assert sns["x-filterPolicy"] == {"type": [{"prefix": "fanout."}]}
    assert doc["operations"]["archive"]["x-fanout"]["filterPolicy"] == {"type": [{"prefix": "fanout."}]}


def test_arns_and_region_appear_only_when_known() -> None:
    bare = asyncapi.document(topology.load("dev", STACK_CONFIGS))
    assert "servers" not in bare and "x-arn" not in bare["channels"]["topic"]
    placed = asyncapi.document(topology.load("dev", STACK_CONFIGS), WHERE)
    assert placed["channels"]["topic"]["x-arn"] == WHERE.topic_arn
    assert placed["servers"]["sns"]["host"] == "sns.eu-west-1.amazonaws.com"
