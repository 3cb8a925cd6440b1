"""The event backbone beyond the persister: the scheduled generator, the S3 archive, replay, durable local state."""

from __future__ import annotations

import json
import signal
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from fanout import replay
from handlers.core import archive
from tests.e2e.helpers import all_items, post, user, wait_for
from tests.support.stack import Stack, running_stack, stop

GENERATED = "fanout.data.generated.v1"


def status(stack: Stack) -> dict[str, Any]:
    return json.loads(stack.cli("status", "--json").stdout)


def archived(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Every archive object of the stack: key -> its events."""
    s3, bucket = stack.boto("s3"), "fanout-dev-archive"
    keys = [
        o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in p.get("Contents", [])
    ]
    return {k: archive.from_ndjson(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys}


def queue_is_empty(stack: Stack, queue_url: str) -> bool:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = stack.boto("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return all(attrs[n] == "0" for n in names)


def archived_ids(stack: Stack) -> set[str]:
    return {e["id"] for events in archived(stack).values() for e in events}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_scheduled_generation_reaches_persister_and_archive(tmp_path: Path) -> None:
    env = {"FANOUT_GENERATOR": "on", "FANOUT_GENERATOR_SCHEDULE": "rate(1 second)"}
    with running_stack(tmp_path, **env) as stack:
        # Nothing calls `fanout generate`: the stack's own schedule fires (dev: 5 events a run for demo-user).
        items = wait_for(lambda: len(got := all_items(stack, "demo-user")) >= 10 and got, timeout=20, interval=0.5)
        ids = {i["id"] for i in items}
        wait_for(lambda: ids <= archived_ids(stack), timeout=15, interval=0.5)
        objects = archived(stack)
        for key, events in objects.items():
            day = key.split("/")[1]
            assert key.startswith("events/dt=") and key.endswith(".ndjson")
            assert all(day == f"dt={e['time'][:10]}" for e in events)
            assert all(e["type"] == GENERATED and e["source"] == "fanout.generator" for e in events)
        # One object per consumer batch, named by its events' date and ids: a batch retried as it was
        # rewrites the same object.
        assert all(key == archive.object_key(events) for key, events in objects.items())


def test_replay_restores_deleted_items_without_duplicates(stack: Stack) -> None:
    sub = user()
    since = datetime.now(UTC)
    stack.cli("generate", "--count", "30", "--sub", sub, "--seed", "7")
    items = wait_for(lambda: len(got := all_items(stack, sub)) == 30 and got, timeout=20)
    ids = {i["id"] for i in items}
    wait_for(lambda: ids <= archived_ids(stack), timeout=15, interval=0.5)
    until = datetime.now(UTC) + timedelta(milliseconds=1)

    ddb, table = stack.boto("dynamodb"), status(stack)["table_name"]
    lost = sorted(ids)[::3]
    for event_id in lost:
        ddb.delete_item(TableName=table, Key={"pk": {"S": f"USER#{sub}"}, "sk": {"S": f"DATA#{event_id}"}})
    assert len(all_items(stack, sub)) == 30 - len(lost)

    for _ in range(4):  # as often as the user did, who then found the archive holding most events 4 times
        out = stack.cli("replay", "--since", iso(since), "--until", iso(until), "--type", GENERATED).stdout
        assert out.startswith("replayed 30 events"), out
    wait_for(lambda: len(all_items(stack, sub)) == 30, timeout=15)
    # Every replayed copy processed by the archive consumer: its queue is empty, nothing in flight.
    archive_queue = status(stack)["consumers"]["archive"]["queue_url"]
    wait_for(lambda: queue_is_empty(stack, archive_queue), timeout=30, interval=0.5)
    # Same ids, so the items are the originals and nothing is doubled: not in the table, not in what
    # replay reads from the archive (the replayed copies are archived in new batch objects).
    items = all_items(stack, sub)
    assert sorted(i["id"] for i in items) == sorted(ids)
    s3 = stack.boto("s3")
    read = replay.archived(s3, "fanout-dev-archive", since, until, GENERATED)
    copies = Counter(e["id"] for e in read if e["id"] in ids)
    assert copies == dict.fromkeys(ids, 1)
    # A window that holds nothing replays nothing; a reversed one is a one-line error.
    empty = stack.cli("replay", "--since", "2001-01-01", "--until", "2001-01-02").stdout
    assert empty.startswith("replayed 0 events")
    bad = stack.cli("replay", "--since", iso(until), "--until", iso(since), check=False)
    assert bad.returncode != 0 and "--until" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_restart_keeps_items_archive_and_subscribed_consumers(tmp_path: Path) -> None:
    name = "kept-" + uuid.uuid4().hex[:6]
    policy = {"subject": ["someone"]}
    sub = user()
    with running_stack(tmp_path) as first:
        first.cli("subscribe", name, "--filter-policy", json.dumps(policy))
        posted = {post(first, sub).json()["id"] for _ in range(3)}
        first.cli("generate", "--count", "12", "--sub", sub)
        items = wait_for(lambda: len(got := all_items(first, sub)) == 15 and got, timeout=20)
        wait_for(lambda: {i["id"] for i in items} <= archived_ids(first), timeout=15, interval=0.5)
        objects = archived(first)
        assert stop(first) in (0, -signal.SIGTERM)
    assert posted <= {i["id"] for i in items}
    assert (tmp_path / "tables" / "fanout-dev-data.jsonl").is_file()

    with running_stack(tmp_path) as second:
        assert all_items(second, sub) == items
        r = requests.get(f"{second.api_url}/data/{items[0]['id']}", headers=second.auth(sub), timeout=5)
        assert r.status_code == 200 and r.json() == items[0]
        assert archived(second) == objects
        consumers = status(second)["consumers"]
        assert {"persister", "archive", name} <= set(consumers)
        sns = second.boto("sns")
        subs = sns.list_subscriptions_by_topic(TopicArn=status(second)["topic_arn"])["Subscriptions"]
        kept = [s for s in subs if s["Endpoint"].endswith(f":{name}")]
        attrs = sns.get_subscription_attributes(SubscriptionArn=kept[0]["SubscriptionArn"])["Attributes"]
        assert json.loads(attrs["FilterPolicy"]) == policy and attrs["RawMessageDelivery"] == "true"
        # The restored consumer works: an event for its subject reaches its queue.
        post(second, "someone")
        got = second.boto("sqs").receive_message(QueueUrl=consumers[name]["queue_url"], WaitTimeSeconds=5)
        assert json.loads(got["Messages"][0]["Body"])["subject"] == "someone"
        # The state dir is in use: reset refuses rather than pull it from under the running stack.
        busy = second.cli("reset", check=False)
        assert busy.returncode != 0 and "stop" in busy.stderr
        stop(second)
    # The banner (read once the stack stopped) says what came back.
    assert "restored 15 items" in "".join(second.output)

    reset = second.cli("reset")
    assert "removed" in reset.stdout
    assert not (tmp_path / "tables").exists()
    with running_stack(tmp_path) as third:
        assert all_items(third, sub) == []
        assert name not in status(third)["consumers"]
