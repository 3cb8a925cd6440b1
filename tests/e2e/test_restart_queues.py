"""Messages waiting in queues and DLQs when `make run` stops are there again, once each, after it starts again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fanout_kit import ids
from tests.e2e.helpers import dlq, post, user, wait_for
from tests.support.stack import Stack, running_stack


def _status(stack: Stack) -> dict[str, Any]:
    return json.loads(stack.cli("status", "--json").stdout)


def _peek_all(stack: Stack, url: str) -> list[dict[str, Any]]:
    """Every message of a queue, each received once (a receive: its count goes up by one), then visible again."""
    sqs, got = stack.boto("sqs"), {}
    while True:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=30,
            AttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            for m in got.values():
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
            return list(got.values())
        got |= {m["MessageId"]: m for m in batch}


def test_queue_and_dlq_messages_survive_restarts_once_each(tmp_path: Path) -> None:
    sub = user()
    extra = {"FANOUT_VISIBILITY_TIMEOUT": "1"}
    with running_stack(tmp_path, **extra) as stack:
        stack.cli("subscribe", "keep", "--filter-policy", json.dumps({"subject": [sub]}))  # no handler: messages wait
        first, second = post(stack, sub).json()["id"], post(stack, sub).json()["id"]
        keep = _status(stack)["consumers"]["keep"]["queue_url"]
        sqs = stack.boto("sqs")
        # Received once each (count 1) and visible again: a receive count to carry over.
        wait_for(
            lambda: (
                stack.boto("sqs").get_queue_attributes(QueueUrl=keep, AttributeNames=["All"])["Attributes"][
                    "ApproximateNumberOfMessages"
                ]
                == "2"
            ),
            timeout=10,
        )
        assert len(_peek_all(stack, keep)) == 2
        # One poison message for the persister: three failed attempts, then its DLQ.
        poison = ids.new_id()
        sqs.send_message(
            QueueUrl=_status(stack)["consumers"]["persister"]["queue_url"],
            MessageBody=json.dumps({"id": poison, "type": "fanout.data.generated.v1"}),
        )
        wait_for(lambda: dlq(stack, "persister"), timeout=20, interval=0.5)

    for restart in range(2):  # twice: a second restart must not bring anything back a second time
        with running_stack(tmp_path, **extra) as stack:
            waiting = _peek_all(stack, _status(stack)["consumers"]["keep"]["queue_url"])
            assert sorted(json.loads(m["Body"])["id"] for m in waiting) == sorted([first, second])
            for m in waiting:
                assert m["MessageAttributes"]["subject"]["StringValue"] == sub
                assert m["MessageAttributes"]["type"]["StringValue"] == "fanout.data.generated.v1"
            # Counts carried over: one receive before the first stop, plus one per look here (each is a receive).
            assert [int(m["Attributes"]["ApproximateReceiveCount"]) for m in waiting] == [2 + restart] * 2
            shown = json.loads(stack.cli("dlq", "show", "persister", "--json").stdout)
            assert [m["body"]["id"] for m in shown] == [poison]
            assert shown[0]["receiveCount"] == 3 and "InvalidEvent" in (shown[0]["error"] or "")
            trace = json.loads(stack.cli("trace", poison, "--json").stdout)
            assert trace["consumers"]["persister"] == {"state": "dlq", "attempts": 3}
