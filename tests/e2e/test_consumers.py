"""Fan-out to new subscribers, poison messages to the DLQ and back, duplicate deliveries."""

from __future__ import annotations

import json
import time
import uuid

import requests

from fanout_kit import ids
from tests.e2e.helpers import all_items, dlq, drain, post, user, wait_for
from tests.support.stack import Stack


def _event(sub: str, event_id: str | None = None, one: str = "direct") -> dict:
    return {
        "specversion": "1.0",
        "id": event_id or ids.new_id(),
        "source": "e2e",
        "type": "fanout.data.generated.v1",
        "time": "2026-01-01T00:00:00.000Z",
        "subject": sub,
        "datacontenttype": "application/json",
        "dataschema": "https://schemas.fanout.dev/fanout.data.generated.v1.json",
        "data": {"informationOne": one, "informationTwo": "x"},
    }


def _publish(stack: Stack, body: str, event_type: str = "fanout.data.generated.v1", subject: str = "s") -> None:
    status = json.loads(stack.cli("status", "--json").stdout)
    stack.boto("sns").publish(
        TopicArn=status["topic_arn"],
        Message=body,
        MessageAttributes={
            "type": {"DataType": "String", "StringValue": event_type},
            "subject": {"DataType": "String", "StringValue": subject},
        },
    )


def test_subscribe_with_attribute_filter(stack: Stack) -> None:
    alice, bob = user(), user()
    name = "only-" + uuid.uuid4().hex[:6]
    out = stack.cli("subscribe", name, "--filter-policy", json.dumps({"subject": [alice]})).stdout
    url = out.strip().splitlines()[-1]
    status = json.loads(stack.cli("status", "--json").stdout)
    assert status["consumers"][name]["queue_url"] == url
    assert status["consumers"][name]["dlq_url"].endswith(f"{name}-dlq")
    a = post(stack, alice).json()["id"]
    post(stack, bob)
    got = drain(stack.boto("sqs"), url, expected=1, timeout=5)
    time.sleep(0.5)
    got += drain(stack.boto("sqs"), url, expected=1, timeout=1)
    assert len(got) == 1
    event = json.loads(got[0]["Body"])  # raw delivery: the body is the CloudEvent itself
    assert event["id"] == a and event["subject"] == alice and event["specversion"] == "1.0"
    assert got[0]["MessageAttributes"]["type"]["StringValue"] == "fanout.data.generated.v1"


def test_subscribe_with_body_filter(stack: Stack) -> None:
    name = "body-" + uuid.uuid4().hex[:6]
    policy = {"data": {"informationOne": [{"prefix": "alert"}]}}
    out = stack.cli("subscribe", name, "--filter-policy", json.dumps(policy), "--filter-scope", "MessageBody")
    url = out.stdout.strip().splitlines()[-1]
    sub = user()
    wanted = post(stack, sub, {"informationOne": "alert: door open", "informationTwo": "x"}).json()["id"]
    post(stack, sub, {"informationOne": "all quiet", "informationTwo": "x"})
    got = drain(stack.boto("sqs"), url, expected=2, timeout=4)
    assert [json.loads(m["Body"])["id"] for m in got] == [wanted]


def test_subscribe_errors_are_one_line(stack: Stack) -> None:
    for args, text in [
        (["subscribe", "bad name!"], "NAME"),
        (["subscribe", "x", "--filter-policy", "{nope"], "filter-policy"),
        (["subscribe", "persister"], "consumer name 'persister' is taken: declared in Pulumi.dev.yaml"),
        (["dlq", "show", "missing"], "no consumer"),
    ]:
        r = stack.cli(*args, check=False)
        assert r.returncode != 0
        assert text in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_poison_message_goes_to_dlq_without_blocking_valid_ones_and_redrives(stack: Stack) -> None:
    sub = user()
    status = json.loads(stack.cli("status", "--json").stdout)
    # Not JSON at all: straight onto the queue, since moto's SNS answers 500 to a non-JSON message once any
    # subscription filters on the body (AWS would just not match it).
    stack.boto("sqs").send_message(
        QueueUrl=status["consumers"]["persister"]["queue_url"], MessageBody="this is not an event"
    )
    _publish(stack, json.dumps({**_event(sub), "data": {"informationOne": "no second field"}}), subject=sub)
    good = post(stack, sub).json()["id"]
    wait_for(lambda: [i["id"] for i in all_items(stack, sub)] == [good], timeout=5)

    wait_for(lambda: len(dlq(stack, "persister")) >= 2, timeout=30, interval=0.5)
    shown = json.loads(stack.cli("dlq", "show", "persister", "--json").stdout)
    bodies = [m["body"] for m in shown]
    assert "this is not an event" in bodies
    assert all(m["receiveCount"] >= 1 for m in shown)
    # Showing does not consume: the messages are still there.
    assert len(json.loads(stack.cli("dlq", "show", "persister", "--json").stdout)) == len(shown)

    # A message fixed upstream and redriven is persisted: put a valid event on the DLQ and redrive.
    sqs = stack.boto("sqs")
    fixed = _event(sub, one="fixed")
    sqs.send_message(QueueUrl=status["consumers"]["persister"]["dlq_url"], MessageBody=json.dumps(fixed))
    out = stack.cli("dlq", "redrive", "persister").stdout
    assert out.strip().startswith("3 ")
    wait_for(lambda: fixed["id"] in [i["id"] for i in all_items(stack, sub)], timeout=10)
    # The poison ones fail again and return to the DLQ; nothing is lost.
    wait_for(lambda: len(dlq(stack, "persister")) == 2, timeout=30, interval=0.5)
    assert stack.cli("dlq", "redrive", "persister").stdout.startswith("2 ")
    wait_for(lambda: len(dlq(stack, "persister")) == 2, timeout=30, interval=0.5)
    sqs.purge_queue(QueueUrl=status["consumers"]["persister"]["dlq_url"])


def test_duplicate_deliveries_leave_one_item(stack: Stack) -> None:
    sub = user()
    event = _event(sub, one="dup")
    for _ in range(3):
        _publish(stack, json.dumps(event), subject=sub)
    status = json.loads(stack.cli("status", "--json").stdout)
    stack.boto("sqs").send_message(
        QueueUrl=status["consumers"]["persister"]["queue_url"], MessageBody=json.dumps(event)
    )
    wait_for(lambda: all_items(stack, sub), timeout=5)
    time.sleep(1.5)
    items = all_items(stack, sub)
    assert [i["id"] for i in items] == [event["id"]]
    r = requests.get(f"{stack.api_url}/data/{event['id']}", headers=stack.auth(sub), timeout=5)
    assert r.json()["informationOne"] == "dup"


def test_generate_goes_through_the_topic(stack: Stack) -> None:
    sub = user()
    out = stack.cli("generate", "--count", "12", "--sub", sub).stdout
    assert "12" in out
    items = wait_for(lambda: len(got := all_items(stack, sub)) == 12 and got, timeout=10)
    assert all(i["informationOne"] and i["informationTwo"] for i in items)
