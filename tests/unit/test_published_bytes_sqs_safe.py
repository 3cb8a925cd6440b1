"""What is published is something SQS accepts: SQS refuses a whole message holding a
character outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF, and moto does not
check it, so these tests look at the message bodies themselves."""

from __future__ import annotations

import json
import re
from typing import Any

from unit_support import Aws, call_api

from fanout_kit import DataGenerated, events
from handlers.core import publisher

SQS_REFUSES = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _raw_bodies(aws: Aws, url: str) -> list[str]:
    got = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [m["Body"] for m in got]


def test_api_publishes_noncharacters_escaped(aws: Aws, context: Any) -> None:
    one, two = "a\uffff\ufffe", "emoji \U0001f642 é \u2028 tab\tend"
    answer = call_api(context, "POST", "/data", body={"informationOne": one, "informationTwo": two})
    assert answer.status == 202, answer.body
    [body] = _raw_bodies(aws, aws.topic_queue_url)
    assert not SQS_REFUSES.search(body), ascii(body)
    # The same JSON value: subscribers decode exactly what the user sent.
    assert json.loads(body)["data"] == {"informationOne": one, "informationTwo": two}
    # Only what SQS refuses is escaped; other text stays UTF-8 (no 6-byte escape per character).
    assert "\U0001f642" in body and "é" in body


def test_batch_publish_escapes_too(aws: Aws) -> None:
    event = events.build(
        DataGenerated.TYPE,
        source="fanout.generator",
        subject="demo-user",
        data={"informationOne": "x\uffff", "informationTwo": "y"},
    )
    assert publisher.publish_batch([event]) == 1
    [body] = _raw_bodies(aws, aws.topic_queue_url)
    assert not SQS_REFUSES.search(body), ascii(body)
    assert json.loads(body)["data"]["informationOne"] == "x\uffff"


def test_replay_to_one_consumer_escapes_too(aws: Aws) -> None:
    from fanout import replay

    event = events.build(
        DataGenerated.TYPE,
        source="fanout.api",
        subject="alice",
        data={"informationOne": "z\uffff", "informationTwo": "y"},
    )
    assert replay.to_queue(aws.sqs, aws.topic_queue_url)([event]) == 1
    [body] = _raw_bodies(aws, aws.topic_queue_url)
    assert not SQS_REFUSES.search(body), ascii(body)
    assert json.loads(body)["data"]["informationOne"] == "z\uffff"


def test_unpaired_surrogate_is_refused_naming_the_body(aws: Aws, context: Any) -> None:
    raw = '{"informationOne": "a\\ud800", "informationTwo": "b"}'
    answer = call_api(context, "POST", "/data", body=raw)
    assert answer.status == 400 and "surrogate" in answer.message, answer.body
    assert _raw_bodies(aws, aws.topic_queue_url) == []
