"""Test helpers for consumers: typed events in, the Lambda SQS event a queue would deliver out.

    from fanout_kit.testing import failures, new_event, sqs_event

    event = new_event(DataGenerated, subject="alice")
    assert failures(handler(sqs_event(event), context)) == set()

Part of the kit so that a consumer's unit test is a few lines; it imports nothing but the kit. It is
in the wheel, for consumers' tests, and left out of the Lambda artifact.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

from fanout_kit.ids import new_id
from fanout_kit.models import CloudEvent, Data, DataGenerated, DataPersisted, Item, utc_now_iso

E = TypeVar("E", bound=CloudEvent)
REGION = "us-east-1"
ACCOUNT = "123456789012"


def new_event(model: type[E], *, subject: str = "alice", data: Any = None, **kwargs: Any) -> E:
    """A valid event of `model`'s type (built and validated as a producer builds it), with sample data by default.

    Keyword arguments are those of `model.new` (`source`, `id`, `time`, `correlation_id`).
    """
    # A persisted event carries its item's id, as the persister announces it.
    given_id, legacy_id = kwargs.pop("id", None), kwargs.pop("event_id", None)
    event_id = given_id or legacy_id or new_id()
    time_ = kwargs.pop("time", None) or utc_now_iso()
    if data is None:
        data = _sample(model, event_id, time_)
    kwargs.setdefault("source", model.SOURCE if model is DataPersisted else "fanout.test")
    return model.new(subject=subject, data=data, id=event_id, time=time_, **kwargs)


def _sample(model: type[CloudEvent], event_id: str, time_: str) -> Data | Item:
    if model is DataPersisted:
        return Item(id=event_id, information_one="one", information_two="two", created_at=time_)
    return Data(information_one="one", information_two="two")


def eventbridge_envelope(event: CloudEvent | dict[str, Any]) -> dict[str, Any]:
    """The event as an EventBridge rule delivers it to an SQS target: the CloudEvent in `detail`."""
    raw = event.to_dict() if isinstance(event, CloudEvent) else event
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": raw["type"],
        "source": raw["source"],
        "account": ACCOUNT,
        "time": raw["time"][:19] + "Z",
        "region": REGION,
        "resources": [],
        "detail": raw,
    }


def sqs_record(
    body: str, *, queue: str = "consumer", receive_count: int = 1, group: str | None = None
) -> dict[str, Any]:
    """One SQS record; with `group`, as a FIFO queue delivers it (message group id, sequence number)."""
    now = str(int(time.time() * 1000))
    record: dict[str, Any] = {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "local-" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now,
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": now,
        },
        "messageAttributes": {},
        "md5OfBody": "0",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
        "awsRegion": REGION,
    }
    if group is not None:
        sequence = str(next(_SEQUENCE))
        record["attributes"] |= {
            "MessageGroupId": group,
            "MessageDeduplicationId": sequence,
            "SequenceNumber": sequence,
        }
        record["eventSourceARN"] += ".fifo"
    return record


_SEQUENCE = itertools.count(18_000_000_000_000_000_000)


def sqs_event(
    *items: CloudEvent | dict[str, Any] | str, bus: bool = False, queue: str = "consumer", fifo: bool = False
) -> dict[str, Any]:
    """A Lambda SQS event with one record per item: typed events, CloudEvent dicts, or raw bodies (str).

    With bus=True each event arrives as a bus consumer's queue holds it (EventBridge envelope).
    With fifo=True the records come as a FIFO queue of a `fanout:ordering: fifo` stack delivers them,
    grouped by the event's subject (a raw body: by the group "raw").
    """
    records = []
    for item in items:
        group = "raw" if fifo else None
        if isinstance(item, str):
            body = item
        else:
            raw = item.to_dict() if isinstance(item, CloudEvent) else item
            body = json.dumps(eventbridge_envelope(raw) if bus else raw)
            group = str(raw.get("subject", "raw")) if fifo else None
        records.append(sqs_record(body, queue=queue, group=group))
    return {"Records": records}


@dataclass(frozen=True)
class LambdaContext:
    """The fields of Lambda's context object that Powertools and the kit read."""

    function_name: str = "consumer"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:consumer"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/consumer"
    log_stream_name: str = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def lambda_context(function_name: str = "consumer") -> LambdaContext:
    """A context to pass to a handler in a test, as Lambda would."""
    return LambdaContext(function_name=function_name)


def failures(answer: dict[str, Any]) -> set[str]:
    """The message ids a handler reported as batch item failures."""
    return {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}


__all__ = [
    "DataGenerated",
    "DataPersisted",
    "eventbridge_envelope",
    "failures",
    "lambda_context",
    "new_event",
    "sqs_event",
    "sqs_record",
]
