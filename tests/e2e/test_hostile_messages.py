"""Hostile messages put straight on the emulated endpoint break no tool: tail, trace, dlq show, the console, replay."""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.helpers import post, user, wait_for
from tests.e2e.test_seeing import Tail
from tests.support.stack import Stack, running_stack

DEEP = "[" * 120_000  # 120 KB of nesting: json's parser gives up with RecursionError


def _status(stack: Stack) -> dict[str, Any]:
    return json.loads(stack.cli("status", "--json").stdout)


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    # Not the shared stack: another test's subscription with a MessageBody filter scope makes moto parse every
    # body published on the topic, and moto answers 500 to a publish it cannot parse (AWS would not).
    with running_stack(tmp_path, FANOUT_VISIBILITY_TIMEOUT="1") as s:
        yield s


def test_hostile_bodies_on_the_topic_stop_no_tail_and_odd_ids_can_be_traced(own_stack: Stack) -> None:
    stack = own_stack
    sub = user()
    tails = [Tail(stack, "--json", "--subject", sub), Tail(stack, "--subject", sub)]
    odd_id = f"odd/{uuid.uuid4().hex[:8]}/../id/"
    try:
        for t in tails:
            t.ready()
        sns, topic = stack.boto("sns"), _status(stack)["topic_arn"]
        subject = {"subject": {"DataType": "String", "StringValue": sub}}
        sns.publish(TopicArn=topic, Message=DEEP, MessageAttributes=subject)
        sns.publish(TopicArn=topic, Message="not JSON at all", MessageAttributes=subject)
        odd = {"id": odd_id, "type": "fanout.data.generated.v1", "subject": sub, "time": "2026-01-01T00:00:00Z"}
        sns.publish(TopicArn=topic, Message=json.dumps(odd))
        event_id = post(stack, sub).json()["id"]
        deep, not_json = "body is JSON nested deeper than 100 levels (117.2 KiB)", "body is not JSON"

        def said(t: Tail, what: str) -> bool:
            return any(what in e for e in t.errors if "skipped message" in e)

        for t in tails:
            # stdout (events) and stderr (skips) are read by two threads: wait for both, not the first alone.
            wait_for(lambda t=t: any(event_id in line for line in t.lines), timeout=30)
            wait_for(lambda t=t: said(t, deep) and said(t, not_json), timeout=10)
            assert t.proc.poll() is None, t.errors  # still tailing
            assert not any("Traceback" in e for e in t.errors)
        assert json.loads(tails[0].lines[-1])["id"] == event_id
    finally:
        for t in tails:
            t.kill()
    # An id with '/', '..' and a trailing '/' is traced like any other.
    doc = json.loads(stack.cli("trace", odd_id, "--json").stdout)
    assert doc["id"] == odd_id and doc["type"] == "fanout.data.generated.v1"
    assert "trace tap skipped message" in stack.text() and "RecursionError" not in stack.text()


def test_a_hostile_body_in_a_dlq_is_shown_and_looking_changes_nothing(stack: Stack) -> None:
    sqs = stack.boto("sqs")
    dlq = _status(stack)["consumers"]["persister"]["dlq_url"]
    marker = uuid.uuid4().hex
    sqs.send_message(QueueUrl=dlq, MessageBody=DEEP)
    sqs.send_message(QueueUrl=dlq, MessageBody=f"not JSON {marker}")
    try:

        def shown() -> list[dict[str, Any]]:
            return json.loads(stack.cli("dlq", "show", "persister", "--json").stdout)

        first = wait_for(lambda: (lambda got: got if len(got) >= 2 else None)(shown()), timeout=10)
        mine = {m["body"]: m for m in first if m["body"] in (DEEP, f"not JSON {marker}")}
        assert mine[DEEP]["bodyProblem"] == "JSON nested deeper than 100 levels (117.2 KiB)"
        assert mine[f"not JSON {marker}"]["bodyProblem"].startswith("not JSON")
        text = stack.cli("dlq", "show", "persister").stdout
        assert f"not JSON {marker}" in text and "(body is JSON nested deeper than 100 levels (117.2 KiB))" in text
        for _ in range(3):
            # The console's view too; every look shows the same counts and leaves every message visible.
            answer = requests.get(f"{stack.api_url}/_local/consumers/persister/dlq", timeout=30)
            assert answer.status_code == 200
            again = {m["body"]: m["receiveCount"] for m in answer.json()["messages"]}
            assert again[DEEP] == mine[DEEP]["receiveCount"] == 0
            assert again[f"not JSON {marker}"] == 0
            attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
            assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"
    finally:
        stack.cli("dlq", "purge", "persister")


def test_replay_skips_a_non_json_archive_object_and_names_it(stack: Stack) -> None:
    s3 = stack.boto("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "archive" in b["Name"])
    since = (datetime.now(UTC) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event_id = post(stack, user()).json()["id"]
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    junk = f"events/dt={day}/junk-{uuid.uuid4().hex[:6]}.ndjson"
    s3.put_object(Bucket=bucket, Key=junk, Body=b"\xff\xfe not an event\n")
    try:

        def replayed() -> Any:
            done = stack.cli("replay", "--since", since)
            return done if "replayed 0 " not in done.stdout else None  # 0 until the archive has the event

        done = wait_for(replayed, timeout=30, interval=1)
        assert f"fanout: skipped s3://{bucket}/{junk} line 1: not UTF-8 text (byte 0xff at offset 0)" in done.stderr
        assert "skipped 1 archive lines that are not events" in done.stdout
        trace = json.loads(stack.cli("trace", event_id, "--json").stdout)
        assert trace["id"] == event_id
    finally:
        s3.delete_object(Bucket=bucket, Key=junk)


def test_trace_shows_running_while_a_slow_handler_runs(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "slow_mod.py").write_text(
        textwrap.dedent(
            """
            import time

            def handler(event, context):
                time.sleep(3)  # within the local visibility timeout, whatever it is
                return {"batchItemFailures": []}
            """
        )
    )
    name = "slow-" + uuid.uuid4().hex[:6]
    sub = user()
    stack.cli(
        "subscribe", name, "--filter-policy", json.dumps({"subject": [sub]}),
        "--handler", "slow_mod:handler", "--path", str(tmp_path),
    )  # fmt: skip
    try:
        event_id = post(stack, sub).json()["id"]

        def state() -> str:
            return json.loads(stack.cli("trace", event_id, "--json").stdout)["consumers"].get(name, {}).get("state")

        wait_for(lambda: state() == "running", timeout=20, interval=0.3)
        wait_for(lambda: state() == "processed", timeout=20, interval=0.5)
    finally:
        stack.cli("unsubscribe", name, check=False)


def test_dlq_receive_counts_hold_across_restarts_for_bodies_that_are_not_events(tmp_path: Path) -> None:
    """A body with no event id (it read 2, 4, then 7 across restarts): the count on arrival, every time."""
    extra = {"FANOUT_VISIBILITY_TIMEOUT": "1"}
    raw, by_hand = f"raw poison {uuid.uuid4().hex}", f"sent by hand {uuid.uuid4().hex}"

    def counts(stack: Stack) -> dict[str, int]:
        shown = json.loads(stack.cli("dlq", "show", "persister", "--json").stdout)
        return {m["body"]: m["receiveCount"] for m in shown if m["body"] in (raw, by_hand)}

    with running_stack(tmp_path, **extra) as stack:
        consumers = _status(stack)["consumers"]["persister"]
        sqs = stack.boto("sqs")
        sqs.send_message(QueueUrl=consumers["queue_url"], MessageBody=raw)  # fails three times, then its DLQ
        sqs.send_message(QueueUrl=consumers["dlq_url"], MessageBody=by_hand)
        first = wait_for(lambda: c if len(c := counts(stack)) == 2 else None, timeout=30, interval=0.5)
        assert first == {raw: 3, by_hand: 0}
        assert counts(stack) == first
    for _ in range(2):
        with running_stack(tmp_path, **extra) as stack:
            for _look in range(2):
                assert counts(stack) == first
