"""The AsyncAPI 3.0 document of a stack, generated from `schemas/` and the topology (never by hand).

One module, imported by the local gateway (`GET /asyncapi.json`) and by the Pulumi program (which
publishes the same document next to the web app, stack output `asyncapi_url`):

- channels `topic` (the SNS topic) and `bus` (the EventBridge bus), each listing the event types
  produced on it;
- `components.messages`: one message per event type, keyed by the type, with the CloudEvents
  context attributes as headers and the type's JSON Schema (refs inlined) as payload;
- one `send` operation per producer (named `<producer>.<verb>`: the dot keeps them apart from
  consumer names, which cannot contain one) and one `receive` operation per consumer, named by the
  consumer, with the types its filter policy or event pattern lets through, SNS and SQS bindings,
  and in `x-fanout` exactly what the topology says (filter policy or event pattern, handler, ...).

AsyncAPI has no EventBridge binding: the bus channel and its operations say what they need in
`x-eventbridge` extensions instead.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fanout import PROJECT_ROOT
from fanout.schemas_check import load_dir, resolve
from fanout.topology import GENERATED_TYPE, PERSISTED_TYPE, Consumer, Topology

VERSION = "3.0.0"
SCHEMAS = PROJECT_ROOT / "schemas"
SCHEMA_FORMAT = "application/schema+json;version=draft-07"
CONTENT_TYPE = "application/cloudevents+json"  # CloudEvents structured mode: the body is the whole event
EVENT_FILE = re.compile(r"^(fanout\.[a-z0-9.]+\.v[0-9]+)\.json$")
BUS_SOURCE = "fanout.persister"  # the EventBridge `source` of what the persister puts on the bus
CHANNELS = ("topic", "bus")
# The envelope's attributes: every one but `data` is a CloudEvents context attribute.
PAYLOAD_ONLY = ("data",)
SNS_ATTRIBUTES = ("type", "subject")  # mirrored as SNS message attributes, for filter policies
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600


@dataclass(frozen=True)
class Producer:
    """Code of this repository that puts events on a channel."""

    operation: str  # the operation's key, "<producer>.<verb>"
    channel: str  # "topic" or "bus"
    types: tuple[str, ...]
    summary: str


PRODUCERS = (
    Producer("api.publish", "topic", (GENERATED_TYPE,), "POST /data publishes the user's data (handlers/api.py)."),
    Producer(
        "generator.publish",
        "topic",
        (GENERATED_TYPE,),
        "The scheduled generator (and `fanout generate`) publishes synthetic data (handlers/generator.py).",
    ),
    Producer(
        "persister.announce",
        "bus",
        (PERSISTED_TYPE,),
        f"After storing an item the persister puts it on the bus: source {BUS_SOURCE}, detail-type the event "
        "type, detail the CloudEvent (handlers/persister.py).",
    ),
)


@dataclass(frozen=True)
class Where:
    """Where the stack runs; unknown parts are left out of the document rather than invented."""

    region: str | None = None
    topic_arn: str | None = None
    event_bus_arn: str | None = None
    local_endpoint: str | None = None  # the emulated AWS endpoint, for the local stack's document


def event_types(schemas_dir: Path = SCHEMAS) -> dict[str, dict[str, Any]]:
    """Each event type's schema, refs inlined, by type (the schema file is named after its type)."""
    schemas = load_dir(schemas_dir)
    found = {}
    for name in sorted(schemas):
        if m := EVENT_FILE.match(name):
            found[m.group(1)] = _tidy(resolve(schemas, name))
    return found


def _tidy(schema: Any, top: bool = True) -> Any:
    """Drop `$schema`/`$id` of inlined sub-schemas (they were files; now they are parts of one schema)."""
    if isinstance(schema, list):
        return [_tidy(s, False) for s in schema]
    if not isinstance(schema, dict):
        return schema
    return {k: _tidy(v, False) for k, v in schema.items() if top or k not in ("$schema", "$id")}


def _envelope_properties(schema: dict[str, Any]) -> dict[str, Any]:
    """The envelope's properties, the type's own narrowing (allOf) applied over the shared CloudEvent's."""
    merged: dict[str, Any] = {}
    parts = schema.get("allOf", [schema])
    for part in parts:
        for prop, sub in part.get("properties", {}).items():
            merged[prop] = {**merged.get(prop, {}), **sub}
    return merged


def _required(schema: dict[str, Any]) -> list[str]:
    return sorted({r for part in schema.get("allOf", [schema]) for r in part.get("required", [])})


def _headers(event_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    props = {k: v for k, v in _envelope_properties(schema).items() if k not in PAYLOAD_ONLY}
    for attr in SNS_ATTRIBUTES:
        if attr in props:
            props[attr] = {**props[attr], "description": "also an SNS message attribute (String), for filter policies"}
    return {
        "type": "object",
        "description": "CloudEvents 1.0 context attributes. In structured mode they travel in the body (the "
        "payload); `type` and `subject` are also SNS message attributes.",
        "properties": props,
        "required": [r for r in _required(schema) if r in props],
    }


def _message(event_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": event_type,
        "title": schema.get("title", event_type),
        "contentType": CONTENT_TYPE,
        "headers": _headers(event_type, schema),
        "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": schema},
    }
    if schema.get("description"):
        message["summary"] = schema["description"]
    examples = schema.get("examples") or []
    if examples:
        message["examples"] = [
            {
                "name": f"example{i + 1}" if len(examples) > 1 else "example",
                "headers": {k: v for k, v in example.items() if k not in PAYLOAD_ONLY},
                "payload": example,
            }
            for i, example in enumerate(examples)
        ]
    return message


def _bus_message(event_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    """What a bus consumer's queue receives: an EventBridge event whose `detail` is the CloudEvent."""
    payload = {
        "type": "object",
        "description": "EventBridge event; `detail` is the CloudEvent as published",
        "properties": {
            "source": {"const": BUS_SOURCE},
            "detail-type": {"const": event_type},
            "detail": copy.deepcopy(schema),
        },
        "required": ["source", "detail-type", "detail"],
    }
    return {
        "name": event_type,
        "title": f"{schema.get('title', event_type)} (on the bus)",
        "summary": "The CloudEvent in the `detail` of an EventBridge event.",
        "contentType": "application/json",
        "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": payload},
        "x-cloudevent": {"$ref": f"#/components/messages/{event_type}"},
    }


# ---------------------------------------------------------------- matching filters to types


def _value_matches(condition: Any, value: str) -> bool:
    """One SNS filter / EventBridge pattern condition against a string value.

    Operators this does not know count as matching: the document may then list a type a consumer
    never gets, but never hides one it does.
    """
    if isinstance(condition, str):
        return condition == value
    if not isinstance(condition, dict) or len(condition) != 1:
        return not isinstance(condition, int | float | bool) and condition is not None
    ((op, arg),) = condition.items()
    if op == "prefix":
        return isinstance(arg, str) and value.startswith(arg)
    if op == "suffix":
        return isinstance(arg, str) and value.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(arg, str) and arg.lower() == value.lower()
    if op == "wildcard":
        return isinstance(arg, str) and fnmatch.fnmatchcase(value, arg)
    if op == "exists":
        return arg is True
    if op == "anything-but":
        if isinstance(arg, str):
            return value != arg
        if isinstance(arg, list):
            return value not in arg
        if isinstance(arg, dict):
            return not _value_matches(arg, value)
        return True
    return True


def _matches(conditions: Any, value: str) -> bool:
    return any(_value_matches(c, value) for c in (conditions if isinstance(conditions, list) else [conditions]))


def topic_types(consumer: Consumer, types: list[str]) -> list[str]:
    """The types a topic consumer's filter policy lets through (on `type`, attributes or body alike)."""
    policy = consumer.filter_policy or {}
    if "type" not in policy:
        return list(types)
    return [t for t in types if _matches(policy["type"], t)]


def bus_types(consumer: Consumer, types: list[str]) -> list[str]:
    """The types a bus consumer's event pattern lets through (source, detail-type, detail.type)."""
    pattern = consumer.event_pattern or {}
    if "source" in pattern and not _matches(pattern["source"], BUS_SOURCE):
        return []
    found = [t for t in types if "detail-type" not in pattern or _matches(pattern["detail-type"], t)]
    detail = pattern.get("detail")
    if isinstance(detail, dict) and "type" in detail:
        found = [t for t in found if _matches(detail["type"], t)]
    return found


# ---------------------------------------------------------------- bindings


def _representable_filter(policy: dict[str, Any]) -> bool:
    """The SNS binding 0.1.0 types filter values as a string, an object, or a list of strings only."""
    return all(
        isinstance(v, str | dict) or (isinstance(v, list) and all(isinstance(i, str) for i in v))
        for k, v in policy.items()
    )


def _fifo_queue(topo: Topology, consumer: Consumer) -> dict[str, Any]:
    """A topic consumer's queues on a FIFO stack: FIFO, deduplication and throughput per message group."""
    if not topo.is_fifo_consumer(consumer):
        return {}
    return {"fifoQueue": True, "deduplicationScope": "messageGroup", "fifoThroughputLimit": "perMessageGroupId"}


def _queues(topo: Topology, consumer: Consumer) -> list[dict[str, Any]]:
    queue, dlq = topo.queue_name(consumer), topo.dlq_name(consumer)
    fifo = _fifo_queue(topo, consumer)
    return [
        {
            "name": queue,
            **fifo,
            "visibilityTimeout": consumer.visibility_timeout_seconds,
            "receiveMessageWaitTime": 20,
            "messageRetentionPeriod": QUEUE_RETENTION_SECONDS,
            "redrivePolicy": {"deadLetterQueue": {"name": dlq}, "maxReceiveCount": consumer.max_receive_count},
        },
        {"name": dlq, **fifo, "messageRetentionPeriod": DLQ_RETENTION_SECONDS},
    ]


def _sns_consumer(topo: Topology, consumer: Consumer) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "protocol": "sqs",
        "endpoint": {"name": topo.queue_name(consumer)},
        "rawMessageDelivery": True,
        # What SNS cannot deliver at all goes to the subscription's own DLQ.
        "redrivePolicy": {"deadLetterQueue": {"name": topo.subscription_dlq_name(consumer)}},
        "displayName": consumer.name,
    }
    if consumer.filter_policy:
        key = "filterPolicy" if _representable_filter(consumer.filter_policy) else "x-filterPolicy"
        entry[key] = consumer.filter_policy
        entry["filterPolicyScope"] = consumer.filter_policy_scope
    return entry


def _selection(consumer: Consumer) -> dict[str, Any]:
    """What the topology says about a consumer, as is."""
    found: dict[str, Any] = {"source": consumer.source, "handler": consumer.handler, "idempotent": consumer.idempotent}
    if consumer.source == "bus":
        found["eventPattern"] = consumer.event_pattern
    else:
        found["filterPolicy"] = consumer.filter_policy
        found["filterPolicyScope"] = consumer.filter_policy_scope
    found |= {
        "batchSize": consumer.batch_size,
        "batchingWindowSeconds": consumer.batching_window_seconds,
        "maxReceiveCount": consumer.max_receive_count,
        "maxConcurrency": consumer.max_concurrency,
    }
    return found


def _sns_ordering(topo: Topology) -> dict[str, Any]:
    if not topo.fifo:
        return {"type": "standard"}
    # Deduplication ids are the event ids the producers set, never a hash of the content.
    return {"type": "FIFO", "contentBasedDeduplication": False}


def _ordering(topo: Topology) -> dict[str, Any]:
    """The ordering of the topic channel and its key, as AsyncAPI runtime expressions on the payload."""
    if not topo.fifo:
        return {"type": "standard", "description": "No order: consumers may see events in any order."}
    return {
        "type": "fifo",
        "key": "$message.payload#/subject",
        # A subject SNS cannot carry as a group id (over 128 characters, spaces, non-ASCII) travels as its SHA-256.
        "messageGroupId": "$message.payload#/subject",
        "deduplicationId": "$message.payload#/id",
        "description": "Per subject, in publish order, to every topic consumer; a failed event holds back the "
        "later events of its subject only. The same id published again within five minutes is delivered once. "
        "The bus is not ordered.",
    }


# ---------------------------------------------------------------- the document


def _ref(*parts: str) -> dict[str, str]:
    # JSON Pointer escaping: event types have dots but never '/' or '~'.
    return {"$ref": "#/" + "/".join(parts)}


def document(topo: Topology, where: Where | None = None, *, schemas_dir: Path = SCHEMAS) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of `topo`, as a JSON-ready dict."""
    where = where or Where()
    schemas = event_types(schemas_dir)
    on: dict[str, list[str]] = {name: [] for name in CHANNELS}
    for producer in PRODUCERS:
        for t in producer.types:
            if t in schemas and t not in on[producer.channel]:
                on[producer.channel].append(t)

    servers: dict[str, Any] = {}
    if where.local_endpoint:
        host = where.local_endpoint.removeprefix("http://").removeprefix("https://")
        servers["local"] = {"host": host, "protocol": "http", "description": "the emulated AWS endpoint of `make run`"}
    elif where.region:
        servers["sns"] = {"host": f"sns.{where.region}.amazonaws.com", "protocol": "sns"}
        servers["eventbridge"] = {"host": f"events.{where.region}.amazonaws.com", "protocol": "eventbridge"}

    topic: dict[str, Any] = {
        "address": topo.topic_name,
        "title": "SNS topic",
        "description": "Every event, a CloudEvents 1.0 structured-mode JSON body with message attributes "
        "`type` and `subject`. Subscriptions use raw delivery; filter policies match the attributes or the body.",
        "messages": {t: _ref("components", "messages", t) for t in on["topic"]},
        "bindings": {"sns": {"name": topo.topic_name, "ordering": _sns_ordering(topo), "bindingVersion": "0.1.0"}},
        "x-ordering": _ordering(topo),
    }
    if topo.fifo:
        topic["description"] += (
            " An SNS FIFO topic: each subject's events reach every consumer in the order they were published "
            "(message group id = `subject`, deduplication id = `id`)."
        )
    bus: dict[str, Any] = {
        "address": topo.event_bus_name,
        "title": "EventBridge bus",
        "description": f"What happened after the topic: events with source `{BUS_SOURCE}`, detail-type the event "
        "type and detail the CloudEvent. Subscribe with a rule (an event pattern) targeting your queue.",
        "messages": {t: _bus_message(t, schemas[t]) for t in on["bus"]},
        "x-eventbridge": {"busName": topo.event_bus_name, "source": BUS_SOURCE},
    }
    if where.topic_arn:
        topic["x-arn"] = where.topic_arn
    if where.event_bus_arn:
        bus["x-eventbridge"]["busArn"] = where.event_bus_arn
    if servers:
        topic["servers"] = [_ref("servers", "local" if "local" in servers else "sns")]
        bus["servers"] = [_ref("servers", "local" if "local" in servers else "eventbridge")]

    topic_consumers = [c for c in topo.consumers if c.source != "bus"]
    operations: dict[str, Any] = {}
    for producer in PRODUCERS:
        sent = [t for t in producer.types if t in on[producer.channel]]
        if not sent:
            continue
        op: dict[str, Any] = {
            "action": "send",
            "channel": _ref("channels", producer.channel),
            "summary": producer.summary,
            "messages": [_ref("channels", producer.channel, "messages", t) for t in sent],
        }
        if producer.channel == "topic" and topic_consumers:
            op["bindings"] = {
                "sns": {
                    "topic": {"name": topo.topic_name, **({"arn": where.topic_arn} if where.topic_arn else {})},
                    "consumers": [_sns_consumer(topo, c) for c in topic_consumers],
                    "bindingVersion": "0.1.0",
                }
            }
        operations[producer.operation] = op

    for consumer in topo.consumers:
        channel = "bus" if consumer.source == "bus" else "topic"
        received = bus_types(consumer, on["bus"]) if channel == "bus" else topic_types(consumer, on["topic"])
        summary = f"Consumer {consumer.name}: queue {topo.queue_name(consumer)} (DLQ {topo.dlq_name(consumer)})"
        summary += f", handler {consumer.handler}." if consumer.handler else ", no handler (read the queue yourself)."
        bindings: dict[str, Any] = {"sqs": {"queues": _queues(topo, consumer), "bindingVersion": "0.2.0"}}
        op = {
            "action": "receive",
            "channel": _ref("channels", channel),
            "title": consumer.name,
            "summary": summary,
            "messages": [_ref("channels", channel, "messages", t) for t in received],
            "bindings": bindings,
            "x-fanout": _selection(consumer),
        }
        if channel == "topic":
            bindings["sns"] = {"consumers": [_sns_consumer(topo, consumer)], "bindingVersion": "0.1.0"}
        else:
            op["x-eventbridge"] = {
                "rule": topo.queue_name(consumer),  # the rule is named as its queue, on AWS and locally
                "eventPattern": consumer.event_pattern,
            }
        operations[consumer.name] = op

    doc: dict[str, Any] = {
        "asyncapi": VERSION,
        "info": {
            "title": f"fanout events ({topo.stack})",
            "version": "1.0.0",
            "description": "The events of a fanout stack: what is published on its SNS topic and EventBridge bus, "
            "who produces them and who consumes them. Generated from schemas/ and the stack's topology.",
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": {"topic": topic, "bus": bus},
        "operations": operations,
        "components": {"messages": {t: _message(t, s) for t, s in schemas.items()}},
    }
    if servers:
        doc["servers"] = servers
    if where.region:
        doc["info"]["x-region"] = where.region
    return doc
