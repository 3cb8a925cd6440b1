"""Seeing events: `fanout trace`, `fanout tail`, the DLQ tools that say why, unsubscribe, replay to one consumer."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from fanout_kit import ids
from tests.e2e.helpers import drain, post, user, wait_for
from tests.support.stack import CLI, Stack

CONTRACT_KEYS = {"id", "type", "subject", "published", "stored", "announced", "consumers"}


def trace(stack: Stack, event_id: str) -> dict[str, Any]:
    doc = json.loads(stack.cli("trace", event_id, "--json").stdout)
    assert set(doc) == CONTRACT_KEYS
    for c in doc["consumers"].values():
        assert set(c) == {"state", "attempts"}
        assert c["state"] in ("processed", "running", "retrying", "dlq", "filtered", "pending")
    return doc


def subscriptions(stack: Stack) -> list[str]:
    topic = json.loads(stack.cli("status", "--json").stdout)["topic_arn"]
    subs = stack.boto("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    return sorted(s["SubscriptionArn"] for s in subs)


def tail_queues(stack: Stack) -> list[str]:
    return [u for u in stack.boto("sqs").list_queues().get("QueueUrls", []) if "fanout-tail-" in u]


def poison(stack: Stack) -> str:
    """A message that fails validation, straight onto the persister's queue; returns the id it carries."""
    event_id = ids.new_id()
    status = json.loads(stack.cli("status", "--json").stdout)
    stack.boto("sqs").send_message(
        QueueUrl=status["consumers"]["persister"]["queue_url"],
        MessageBody=json.dumps({"id": event_id, "type": "fanout.data.generated.v1", "subject": "x"}),
    )
    return event_id


# ---------------------------------------------------------------------- trace


def test_trace_of_a_processed_event_shows_it_stored_and_announced(stack: Stack) -> None:
    sub = user()
    event_id = post(stack, sub).json()["id"]

    def done() -> dict[str, Any] | None:
        doc = trace(stack, event_id)
        ok = doc["stored"] and doc["announced"] and doc["consumers"]["persister"]["state"] == "processed"
        ok = ok and doc["published"] is not None  # the topic's tap may see it after the persister did
        return doc if ok else None

    doc = wait_for(done, timeout=10)
    assert doc["id"] == event_id and doc["type"] == "fanout.data.generated.v1" and doc["subject"] == sub
    assert doc["published"].endswith("Z")
    assert doc["consumers"]["persister"] == {"state": "processed", "attempts": 1}
    assert "archive" in doc["consumers"]
    human = stack.cli("trace", event_id).stdout
    assert event_id in human and "persister" in human and "processed" in human


def test_trace_says_filtered_and_pending_per_consumer(stack: Stack) -> None:
    sub = user()
    refused, waiting = "nobody-" + uuid.uuid4().hex[:6], "waiting-" + uuid.uuid4().hex[:6]
    stack.cli("subscribe", refused, "--filter-policy", json.dumps({"subject": ["someone-else"]}))
    stack.cli("subscribe", waiting, "--filter-policy", json.dumps({"subject": [sub]}))  # no handler: it waits
    try:
        time.sleep(2.5)  # the tap refreshes the consumers' filters every 2 s
        event_id = post(stack, sub).json()["id"]
        doc = wait_for(lambda: (d := trace(stack, event_id))["consumers"].get(waiting) and d, timeout=10)
        assert doc["consumers"][refused] == {"state": "filtered", "attempts": 0}
        assert doc["consumers"][waiting] == {"state": "pending", "attempts": 0}
    finally:
        stack.cli("unsubscribe", refused, "--force")  # its queue may still hold the test's events
        stack.cli("unsubscribe", waiting, "--force")  # its queue may still hold the test's events


def test_trace_follows_a_failing_message_through_retries_to_the_dlq(stack: Stack) -> None:
    event_id = poison(stack)
    retrying = wait_for(lambda: (d := trace(stack, event_id))["consumers"]["persister"]["state"] == "retrying" and d)
    assert 1 <= retrying["consumers"]["persister"]["attempts"] < 3
    assert retrying["published"] is None and retrying["stored"] is False  # never on the topic, never stored
    doc = wait_for(lambda: (d := trace(stack, event_id))["consumers"]["persister"]["state"] == "dlq" and d, timeout=20)
    assert doc["consumers"]["persister"]["attempts"] == 3
    assert "InvalidEvent" in stack.cli("trace", event_id).stdout  # the human form names the last error
    # make run's terminal: one readable line per attempt, the move to the DLQ said once, no raw JSON.
    mine = [line for line in "".join(stack.output).splitlines() if f"event={event_id}" in line]
    assert any("attempt 1 of 3 failed, will be retried: InvalidEvent" in line for line in mine), mine
    assert len([line for line in mine if "goes to persister's DLQ" in line]) == 1, mine
    assert not [line for line in mine if line.startswith("{")]


def test_trace_of_an_unknown_id_is_one_line_and_fails(stack: Stack) -> None:
    r = stack.cli("trace", ids.new_id(), check=False)
    assert r.returncode != 0 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "trace ledger" in r.stderr


# ---------------------------------------------------------------------- DLQ tools


def test_dlq_show_gives_the_error_and_a_receive_count_that_looking_does_not_change(stack: Stack) -> None:
    event_id = poison(stack)

    def shown() -> list[dict[str, Any]]:
        messages = json.loads(stack.cli("dlq", "show", "persister", "--json").stdout)
        return [m for m in messages if isinstance(m["body"], dict) and m["body"].get("id") == event_id]

    mine = wait_for(shown, timeout=25, interval=0.5)
    assert mine[0]["receiveCount"] == 3
    assert mine[0]["error"] and "InvalidEvent" in mine[0]["error"]
    for _ in range(3):  # looking again changes nothing shown
        again = shown()
        assert [(m["receiveCount"], m["error"]) for m in again] == [(3, mine[0]["error"])]

    out = stack.cli("dlq", "purge", "persister").stdout
    assert out.startswith("purged ") and int(out.split()[1]) >= 1
    assert json.loads(stack.cli("dlq", "show", "persister", "--json").stdout) == []
    assert stack.cli("dlq", "purge", "persister").stdout.startswith("purged 0 ")


def test_unsubscribe_removes_a_subscribed_consumer_and_refuses_a_declared_one(stack: Stack) -> None:
    name = "gone-" + uuid.uuid4().hex[:6]
    before = subscriptions(stack)
    stack.cli("subscribe", name)
    assert name in json.loads(stack.cli("status", "--json").stdout)["consumers"]
    out = stack.cli("unsubscribe", name).stdout
    assert name in out
    assert name not in json.loads(stack.cli("status", "--json").stdout)["consumers"]
    assert subscriptions(stack) == before
    urls = stack.boto("sqs").list_queues().get("QueueUrls", [])
    assert not [u for u in urls if u.rsplit("/", 1)[-1] in (name, f"{name}-dlq")]

    r = stack.cli("unsubscribe", "persister", check=False)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "Pulumi.dev.yaml" in r.stderr and "edit" in r.stderr
    r = stack.cli("unsubscribe", "never-was", check=False)
    assert r.returncode != 0 and "no subscribed consumer" in r.stderr


def test_replay_to_one_consumer_reaches_only_its_queue(stack: Stack) -> None:
    sub = user()
    one, other = "one-" + uuid.uuid4().hex[:6], "other-" + uuid.uuid4().hex[:6]
    policy = json.dumps({"subject": [sub]})
    url_one = stack.cli("subscribe", one, "--filter-policy", policy).stdout.strip().splitlines()[-1]
    url_other = stack.cli("subscribe", other, "--filter-policy", policy).stdout.strip().splitlines()[-1]
    try:
        since = (datetime.now(UTC) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        event_id = post(stack, sub).json()["id"]
        sqs = stack.boto("sqs")
        assert [json.loads(m["Body"])["id"] for m in drain(sqs, url_one, 1)] == [event_id]
        assert [json.loads(m["Body"])["id"] for m in drain(sqs, url_other, 1)] == [event_id]

        def replayed() -> bool:
            out = stack.cli("replay", "--since", since, "--consumer", one).stdout
            return "replayed 0 " not in out  # 0 until the archive consumer has written the event

        wait_for(replayed, timeout=30, interval=1)
        again = drain(sqs, url_one, 1)
        assert [json.loads(m["Body"])["id"] for m in again] == [event_id]
        assert again[0]["MessageAttributes"]["subject"]["StringValue"] == sub  # as the topic delivers it
        time.sleep(1)
        assert drain(sqs, url_other, 1, timeout=2) == []
    finally:
        stack.cli("unsubscribe", one, "--force")  # its queue may still hold the test's events
        stack.cli("unsubscribe", other, "--force")  # its queue may still hold the test's events


# ---------------------------------------------------------------------- tail


class Tail:
    """`fanout tail` in the background, its output drained by threads for its whole life."""

    def __init__(self, stack: Stack, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(CLI), "tail", *args], env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self.errors), daemon=True),
        ]
        for t in self.threads:
            t.start()

    @staticmethod
    def _drain(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def ready(self) -> None:
        wait_for(lambda: any("tailing" in e for e in self.errors) or self.proc.poll() is not None, timeout=15)
        assert self.proc.poll() is None, self.errors

    def wait(self, timeout: float = 10) -> int:
        code = self.proc.wait(timeout)
        for t in self.threads:
            t.join(2)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def test_tail_prints_only_matching_events_and_exits_after_count(stack: Stack) -> None:
    alice, bob = user(), user()
    before = subscriptions(stack)
    by_subject = Tail(stack, "--json", "--subject", alice, "--count", "2")
    by_type = Tail(stack, "--type", "fanout.data.persisted.v1", "--count", "1")  # nothing of that type on the topic
    try:
        by_subject.ready()
        by_type.ready()
        first = post(stack, alice).json()["id"]
        post(stack, bob)
        second = post(stack, alice).json()["id"]
        assert by_subject.wait(15) == 0
        events = [json.loads(line) for line in by_subject.lines]
        assert [e["id"] for e in events] == [first, second]
        assert all(e["specversion"] == "1.0" and e["subject"] == alice for e in events)
        assert by_type.proc.poll() is None and by_type.lines == []
        by_type.proc.send_signal(signal.SIGINT)
        assert by_type.wait() == 0
    finally:
        by_subject.kill()
        by_type.kill()
    assert subscriptions(stack) == before
    assert tail_queues(stack) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_tail_removes_its_queue_and_subscription_on_a_signal(stack: Stack, sig: signal.Signals) -> None:
    sub = user()
    before = subscriptions(stack)
    tail = Tail(stack, "--subject", sub)
    try:
        tail.ready()
        assert len(subscriptions(stack)) == len(before) + 1
        event_id = post(stack, sub).json()["id"]
        wait_for(lambda: any(event_id in line for line in tail.lines), timeout=10)
        line = next(x for x in tail.lines if event_id in x)
        assert "fanout.data.generated.v1" in line and f"subject={sub}" in line
        tail.proc.send_signal(sig)
        assert tail.wait() == 0
    finally:
        tail.kill()
    assert subscriptions(stack) == before
    assert tail_queues(stack) == []


def test_the_console_is_an_html_page_with_a_strict_csp(stack: Stack) -> None:
    r = requests.get(f"{stack.api_url}/console", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "'unsafe-inline'" not in csp
    assert "<script" in r.text and "/console/console.js" in r.text
    assert requests.get(f"{stack.api_url}/console/.hidden", timeout=10).status_code == 404
    assert requests.post(f"{stack.api_url}/console", timeout=10).status_code == 405


def test_a_killed_tail_leaves_nothing_behind_for_long(stack: Stack) -> None:
    before = subscriptions(stack)
    tail = Tail(stack)
    try:
        tail.ready()
        assert len(subscriptions(stack)) == len(before) + 1
        tail.proc.kill()  # SIGKILL: no cleanup of its own; the running stack removes what it left
        tail.wait()
    finally:
        tail.kill()
    wait_for(lambda: subscriptions(stack) == before and not tail_queues(stack), timeout=10)
