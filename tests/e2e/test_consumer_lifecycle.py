"""Consumers on a running stack: one namespace of names whatever adds them, removed consumers whose queues are
kept, `unsubscribe` that loses nothing by surprise, a deleted DLQ that breaks nothing else, and `fanout publish`.

The stack runs from a copy of the repository (the tests scaffold consumers and edit its stack config).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.checkout import repo_copy
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return repo_copy(tmp_path_factory.mktemp("checkout"))


@pytest.fixture(scope="module")
def live(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("state"), cwd=repo, FANOUT_VISIBILITY_TIMEOUT="1") as s:
        yield s


def fanout(stack: Stack, repo: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The copy's own CLI (it reads the copy's stack config and writes into the copy)."""
    return subprocess.run(
        [str(repo / ".venv" / "bin" / "python"), "-m", "fanout.cli", *args],
        cwd=repo,
        env=stack.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused(done: subprocess.CompletedProcess[str], *phrases: str) -> str:
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, line
    for phrase in phrases:
        assert phrase in line, line
    return line


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def status(stack: Stack, repo: Path) -> dict[str, Any]:
    return json.loads(ok(fanout(stack, repo, "status", "--json")))["consumers"]


def unique(base: str) -> str:
    return f"{base}{uuid.uuid4().hex[:6]}"


def event(**changes: Any) -> dict[str, Any]:
    """A valid CloudEvent as a producer would build it, with `changes` applied (None deletes a key)."""
    from fanout_kit import events

    doc = events.build(
        "fanout.data.generated.v1",
        source="fanout.cli.test",
        subject="pub-user",
        data={"informationOne": "published", "informationTwo": "by hand"},
    )
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def append_consumer(repo: Path, entry: str) -> None:
    config = repo / "Pulumi.dev.yaml"
    text = config.read_text()
    marker = "  fanout:generator:"
    config.write_text(text.replace(marker, entry + marker, 1))


# ---------------------------------------------------------------------- one namespace


def test_subscribe_then_new_consumer_and_the_reverse_are_refused(live: Stack, repo: Path) -> None:
    first = unique("sub")
    ok(fanout(live, repo, "subscribe", first))
    before = (repo / "Pulumi.dev.yaml").read_bytes()
    refused(fanout(live, repo, "new-consumer", first), f"consumer name {first!r} is taken", "fanout subscribe")
    assert (repo / "Pulumi.dev.yaml").read_bytes() == before
    assert not (repo / "handlers" / f"{first}.py").exists()

    second = unique("dec")
    ok(fanout(live, repo, "new-consumer", second))
    refused(
        fanout(live, repo, "subscribe", second), f"consumer name {second!r} is taken", "declared in Pulumi.dev.yaml"
    )


def test_a_config_edit_taking_a_subscribed_name_leaves_the_running_topology_unchanged(live: Stack, repo: Path) -> None:
    name = unique("taken")
    ok(fanout(live, repo, "subscribe", name))
    before = status(live, repo)
    said = len(live.output)
    config = repo / "Pulumi.dev.yaml"
    original = config.read_text()
    append_consumer(repo, f"    - name: {name}\n")
    try:
        line = wait_for(lambda: next((x for x in live.output[said:] if "running topology is unchanged" in x), None))
        assert line and f"consumer name {name!r} is taken" in line, live.text()[-2000:]
        after = status(live, repo)
        assert after[name]["queue_url"] == before[name]["queue_url"] and set(after) == set(before)
    finally:
        config.write_text(original)  # the next tests edit a config that holds no refused entry


def test_names_of_the_stacks_own_queues_are_refused(live: Stack, repo: Path) -> None:
    refused(fanout(live, repo, "new-consumer", "persister-dlq"), "'fanout-dev-persister-dlq'", "consumer 'persister'")
    refused(fanout(live, repo, "new-consumer", "trace-tap"), "one of the stack's own queues")
    refused(fanout(live, repo, "subscribe", "fanout-tail-1"), "`fanout tail`")
    refused(fanout(live, repo, "subscribe", "fanout-dev-persister"), "consumer 'persister'")


# ---------------------------------------------------------------------- removed, unsubscribed, missing


def test_a_removed_consumer_keeps_its_queues_and_stays_visible(live: Stack, repo: Path) -> None:
    name = unique("keeper")
    said = len(live.output)
    # No handler: its messages wait in its queue.
    append_consumer(repo, f"    - name: {name}\n      filterPolicy:\n        subject: [keeper-user]\n")
    assert wait_for(lambda: name in status(live, repo)), live.text()[-2000:]
    ok(fanout(live, repo, "publish", "-", stdin=json.dumps(event(subject="keeper-user"))))
    assert wait_for(lambda: status(live, repo)[name]["messages"] == 1)
    config = repo / "Pulumi.dev.yaml"
    config.write_text(
        config.read_text().replace(f"    - name: {name}\n      filterPolicy:\n        subject: [keeper-user]\n", "")
    )
    assert wait_for(lambda: any("its queues are kept" in x for x in live.output[said:])), live.text()[-2000:]

    gone = status(live, repo)[name]
    assert gone["removed"] is True and gone["messages"] == 1 and gone["dlq_messages"] == 0
    assert gone["queue_url"].endswith(f"fanout-dev-{name}") and gone["dlq_url"].endswith(f"fanout-dev-{name}-dlq")
    text = ok(fanout(live, repo, "status"))
    assert f"{name}" in text and "removed from Pulumi.dev.yaml; its queues are kept (1 messages, DLQ 0)" in text
    assert json.loads(ok(fanout(live, repo, "dlq", "show", name, "--json"))) == []
    assert ok(fanout(live, repo, "dlq", "purge", name)).startswith("purged 0 messages")
    assert "0 messages moved" in ok(fanout(live, repo, "dlq", "redrive", name))
    topo = requests.get(f"{live.api_url}/_local/topology", timeout=10).json()
    assert [r["removed"] for r in topo["consumers"] if r["name"] == name] == [True]

    refused(fanout(live, repo, "new-consumer", name), "its queues are kept")
    refused(fanout(live, repo, "subscribe", name), "its queues are kept")
    refused(fanout(live, repo, "unsubscribe", name), "holds 1 messages", "--force")
    assert "1 messages deleted" in ok(fanout(live, repo, "unsubscribe", name, "--force"))
    assert name not in status(live, repo)


def test_unsubscribe_refuses_while_messages_remain(live: Stack, repo: Path) -> None:
    name = unique("holder")
    ok(fanout(live, repo, "subscribe", name))
    ok(fanout(live, repo, "publish", "--consumer", name, "-", stdin=json.dumps(event())))
    refused(fanout(live, repo, "unsubscribe", name), f"{name}'s queue holds 1 messages and its DLQ 0", "--force")
    assert name in status(live, repo)
    ok(fanout(live, repo, "unsubscribe", name, "--force"))
    assert name not in status(live, repo)


def test_a_deleted_dlq_is_reported_and_nothing_else_breaks(live: Stack, repo: Path) -> None:
    name = unique("fragile")
    ok(fanout(live, repo, "subscribe", name))
    sqs = live.boto("sqs")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"])
    doc = status(live, repo)
    assert doc[name]["dlq_url"] is None and doc[name]["missing"] == [f"{name}-dlq"]
    assert "persister" in doc
    assert f"MISSING: {name}-dlq does not exist" in ok(fanout(live, repo, "status"))
    assert json.loads(ok(fanout(live, repo, "dlq", "show", "persister", "--json"))) is not None
    refused(fanout(live, repo, "dlq", "show", name), f"DLQ {name}-dlq does not exist")
    for path in ("/_local/topology", "/_local/figures", "/console"):
        assert requests.get(f"{live.api_url}{path}", timeout=10).status_code == 200, path
    assert "did not exist" in ok(fanout(live, repo, "unsubscribe", name))
    assert name not in status(live, repo)


# ---------------------------------------------------------------------- fanout publish


def test_publish_a_valid_event_reaches_the_consumers_as_a_producers_would(live: Stack, repo: Path) -> None:
    doc = event(subject="pub-valid")
    printed = ok(fanout(live, repo, "publish", "-", stdin=json.dumps(doc)))
    assert printed == doc["id"] + "\n"
    # Through the topic with its attributes: the persister's filter (type) matches and the item is stored.
    trace = wait_for(
        lambda: (
            (t := fanout(live, repo, "trace", doc["id"], "--json")).returncode == 0
            and json.loads(t.stdout)["consumers"]["persister"]["state"] == "processed"
            and json.loads(t.stdout)
        )
    )
    assert trace and trace["stored"] is True, trace


@pytest.mark.parametrize(
    ("stdin", "problem"),
    [
        (json.dumps(event(subject=None)), "is not a valid CloudEvent"),
        (json.dumps(event(type="fanout.data.unknown.v1")), "unknown event type 'fanout.data.unknown.v1'"),
        ("{not json", "stdin is not JSON"),
        ("[1, 2]", "must hold one JSON object"),
        ('{"id": "a", "id": "b"}', "the key 'id' twice"),
        ("", "stdin is empty"),
    ],
)
def test_publish_refuses_an_invalid_event_and_publishes_nothing(
    live: Stack, repo: Path, stdin: str, problem: str
) -> None:
    before = requests.get(f"{live.api_url}/_local/events?limit=1", timeout=10).json()["published"]
    refused(fanout(live, repo, "publish", "-", stdin=stdin), problem)
    time.sleep(0.5)
    assert requests.get(f"{live.api_url}/_local/events?limit=1", timeout=10).json()["published"] == before


def test_publish_to_one_consumer_reaches_that_queue_only(live: Stack, repo: Path, tmp_path: Path) -> None:
    one, other = unique("only"), unique("other")
    for name in (one, other):
        ok(fanout(live, repo, "subscribe", name))
    before = requests.get(f"{live.api_url}/_local/events?limit=1", timeout=10).json()["published"]
    path = tmp_path / "event.json"
    doc = event()
    path.write_text(json.dumps(doc))
    assert ok(fanout(live, repo, "publish", str(path), "--consumer", one)) == doc["id"] + "\n"
    counts = status(live, repo)
    assert (counts[one]["messages"], counts[other]["messages"]) == (1, 0)
    sqs = live.boto("sqs")
    got = sqs.receive_message(QueueUrl=counts[one]["queue_url"], MessageAttributeNames=["All"])["Messages"][0]
    assert json.loads(got["Body"]) == doc
    assert got["MessageAttributes"]["type"]["StringValue"] == doc["type"]
    assert requests.get(f"{live.api_url}/_local/events?limit=1", timeout=10).json()["published"] == before
    refused(fanout(live, repo, "publish", str(path), "--consumer", "nobody"), "no consumer named 'nobody'")


def test_a_raw_poison_message_lands_in_the_dlq(live: Stack, repo: Path) -> None:
    poison = f"not an event {uuid.uuid4().hex}"
    message_id = ok(fanout(live, repo, "publish", "--raw", "--consumer", "persister", "-", stdin=poison)).strip()
    assert message_id

    def in_dlq() -> bool:
        shown = json.loads(ok(fanout(live, repo, "dlq", "show", "persister", "--json")))
        return any(m["body"] == poison for m in shown)

    assert wait_for(in_dlq, timeout=30), live.text()[-2000:]


def test_a_removed_consumers_kept_queues_come_back_after_a_restart(tmp_path: Path) -> None:
    """Removed while the stack runs, or while it is stopped: after `make run` starts again on the same state
    dir its queues are there, listed as removed, each message once, and the DLQ tools work on them."""
    (tmp_path / "checkout").mkdir()
    repo, state = repo_copy(tmp_path / "checkout"), tmp_path / "state"
    running, stopped = unique("gonelive"), unique("gonestopped")
    entries = {name: f"    - name: {name}\n      maxReceiveCount: 2\n" for name in (running, stopped)}
    for entry in entries.values():
        append_consumer(repo, entry)
    config = repo / "Pulumi.dev.yaml"
    dead = {name: f"dead for {name}" for name in entries}
    with running_stack(state, cwd=repo, FANOUT_VISIBILITY_TIMEOUT="1") as first:
        sqs = first.boto("sqs")
        for name in entries:
            sqs.send_message(QueueUrl=status(first, repo)[name]["dlq_url"], MessageBody=dead[name])
        ok(fanout(first, repo, "publish", "--consumer", running, "-", stdin=json.dumps(event())))
        said = len(first.output)
        config.write_text(config.read_text().replace(entries[running], ""))
        assert wait_for(lambda: any("its queues are kept" in x for x in first.output[said:])), first.text()[-2000:]
    config.write_text(config.read_text().replace(entries[stopped], ""))  # while nothing runs

    with running_stack(state, cwd=repo, FANOUT_VISIBILITY_TIMEOUT="1") as second:
        assert "saved messages are dropped" not in second.text()
        doc = status(second, repo)
        for name, queued in ((running, 1), (stopped, 0)):
            assert doc[name]["removed"] is True, doc[name]
            assert (doc[name]["messages"], doc[name]["dlq_messages"]) == (queued, 1), doc[name]
            assert doc[name]["queue_url"].endswith(f"fanout-dev-{name}")
            assert doc[name]["dlq_url"].endswith(f"fanout-dev-{name}-dlq")
            shown = json.loads(ok(fanout(second, repo, "dlq", "show", name, "--json")))
            assert [m["body"] for m in shown] == [dead[name]]  # once
        assert "removed from Pulumi.dev.yaml; its queues are kept (1 messages, DLQ 1)" in ok(
            fanout(second, repo, "status")
        )
        refused(fanout(second, repo, "subscribe", stopped), "its queues are kept")
        assert ok(fanout(second, repo, "dlq", "redrive", running)).startswith("1 message moved")
        assert ok(fanout(second, repo, "dlq", "purge", stopped)).startswith("purged 1 message")
        doc = status(second, repo)
        assert (doc[running]["messages"], doc[running]["dlq_messages"]) == (2, 0)
        assert (doc[stopped]["messages"], doc[stopped]["dlq_messages"]) == (0, 0)

    with running_stack(state, cwd=repo, FANOUT_VISIBILITY_TIMEOUT="1") as third:
        doc = status(third, repo)
        # Emptied before the stop and still absent from the config: gone, its name free again.
        assert stopped not in doc
        assert doc[running]["removed"] is True and (doc[running]["messages"], doc[running]["dlq_messages"]) == (2, 0)
        ok(fanout(third, repo, "subscribe", stopped))
