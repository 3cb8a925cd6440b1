"""Publishing on a FIFO topic (moto's mock_aws, a FIFO topic fanning out to a FIFO queue): every event
goes out with message group id = its subject and deduplication id = its id, from the API's single
publish, the generator's PublishBatch, a replay (its own deduplication ids, so it is not swallowed)
and a replay to one consumer's FIFO queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from unit_support import REGION, Aws, call_api

from fanout import replay
from fanout_kit.models import DataGenerated
from fanout_kit.testing import new_event
from handlers import generator
from handlers.core import publisher, settings


@dataclass
class Fifo:
    sqs: Any
    topic_arn: str
    queue_url: str


@pytest.fixture
def fifo(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fifo]:
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic_arn = sns.create_topic(
        Name="unit-data-events.fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "false"}
    )["TopicArn"]
    url = sqs.create_queue(
        QueueName="unit-persister.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    monkeypatch.setenv("TOPIC_ARN", topic_arn)
    settings.topic_arn.cache_clear()
    yield Fifo(sqs, topic_arn, url)
    settings.topic_arn.cache_clear()


def drain(sqs: Any, url: str) -> list[dict[str, str]]:
    """Every message's (group, deduplication id, body id), in the order the queue hands them out."""
    got = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return got
        for m in messages:
            got.append(
                {
                    "group": m["Attributes"]["MessageGroupId"],
                    "dedup": m["Attributes"]["MessageDeduplicationId"],
                    "id": json.loads(m["Body"])["id"],
                }
            )
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_a_single_publish_carries_subject_as_group_and_id_as_deduplication_id(fifo: Fifo) -> None:
    event = new_event(DataGenerated, subject="alice")
    publisher.publish(event)
    publisher.publish(event)  # a producer's retry: delivered once
    assert drain(fifo.sqs, fifo.queue_url) == [{"group": "alice", "dedup": event.id, "id": event.id}]


def test_post_data_publishes_with_the_users_group_and_the_events_id(fifo: Fifo, context: Any) -> None:
    answers = [
        call_api(context, "POST", "/data", body={"informationOne": str(n), "informationTwo": "x"}, user="erin")
        for n in range(3)
    ]
    assert [a.status for a in answers] == [202, 202, 202]
    ids = [a.body["id"] for a in answers]
    assert drain(fifo.sqs, fifo.queue_url) == [{"group": "erin", "dedup": i, "id": i} for i in ids]


def test_the_generator_publishes_each_subject_in_order(fifo: Fifo) -> None:
    ids = generator.generate(25, ["alice", "bob"], seed=3)
    got = drain(fifo.sqs, fifo.queue_url)
    assert sorted(g["id"] for g in got) == sorted(ids)
    assert all(g["dedup"] == g["id"] for g in got)
    events = {e["id"]: e["group"] for e in got}
    for subject in ("alice", "bob"):
        published = [i for i in ids if events[i] == subject]
        assert [g["id"] for g in got if g["group"] == subject] == published


def test_a_replay_is_delivered_though_the_original_went_out_a_moment_ago(fifo: Fifo) -> None:
    events = [new_event(DataGenerated, subject="carol").to_dict() for _ in range(3)]
    publisher.publish_batch(events)
    assert len(drain(fifo.sqs, fifo.queue_url)) == 3
    publish = publisher.for_replay()
    assert publish(events) == 3
    publish(events)  # the same run retried: deduplicated
    got = drain(fifo.sqs, fifo.queue_url)
    assert [g["id"] for g in got] == [e["id"] for e in events]
    assert {g["group"] for g in got} == {"carol"}
    assert all(g["dedup"].startswith(g["id"] + ".replay.") for g in got)
    # Another replay run is delivered again.
    assert publisher.for_replay()(events) == 3
    assert len(drain(fifo.sqs, fifo.queue_url)) == 3


def test_a_replay_to_one_fifo_queue_groups_by_subject(fifo: Fifo) -> None:
    events = [new_event(DataGenerated, subject=s).to_dict() for s in ("alice", "bob", "alice")]
    assert replay.to_queue(fifo.sqs, fifo.queue_url)(events) == 3
    got = drain(fifo.sqs, fifo.queue_url)
    assert sorted((g["group"], g["id"]) for g in got) == sorted((e["subject"], e["id"]) for e in events)
    assert [g["id"] for g in got if g["group"] == "alice"] == [events[0]["id"], events[2]["id"]]


def test_a_subject_sns_cannot_carry_as_a_group_id_maps_to_one_stable_group(fifo: Fifo) -> None:
    odd = "user with spaces and é " + "x" * 200
    first, second = new_event(DataGenerated, subject=odd), new_event(DataGenerated, subject=odd)
    publisher.publish(first)
    publisher.publish(second)
    got = drain(fifo.sqs, fifo.queue_url)
    assert [g["id"] for g in got] == [first.id, second.id]
    assert got[0]["group"] == got[1]["group"] == publisher.message_group_id(odd)
    assert got[0]["group"].startswith("sha256:") and len(got[0]["group"]) <= 128


def test_a_standard_topic_gets_no_fifo_fields(aws: Aws) -> None:
    event = new_event(DataGenerated, subject="dave")
    publisher.publish(event)
    message = aws.sqs.receive_message(QueueUrl=aws.topic_queue_url, AttributeNames=["All"])["Messages"][0]
    assert "MessageGroupId" not in message["Attributes"]
