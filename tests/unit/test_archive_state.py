"""Local state kept between runs: the archive, the tables and subscribed consumers survive moto restarts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fanout import consumers, localenv, topology
from fanout.local import state
from fanout.local.provision import provision
from tests.support.checkout import STACK_CONFIGS


def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> localenv.LocalEnv:
    monkeypatch.setenv("FANOUT_STATE_DIR", str(tmp_path))
    return localenv.load()


def _fresh_stack(env: localenv.LocalEnv, topo: topology.Topology) -> Any:
    session = boto3.session.Session(region_name=env.region)
    provision(topo, env, session)
    return session


def test_snapshot_then_restore_into_an_empty_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, topo = _env(tmp_path, monkeypatch), topology.load("dev", STACK_CONFIGS)
    item = {"pk": {"S": "USER#alice"}, "sk": {"S": "DATA#01"}, "id": {"S": "01"}, "blob": {"B": b"\x00\xff"}}
    body = b'{"id":"01"}\n'
    with mock_aws():
        session = _fresh_stack(env, topo)
        kept = state.LocalState(tmp_path, topo, env)
        assert kept.restore(session) == {"items": 0, "objects": 0, "consumers": 0, "messages": 0}
        session.client("dynamodb").put_item(TableName=topo.table_name, Item=item)
        session.client("s3").put_object(Bucket=topo.archive_bucket_name, Key="events/dt=2026-01-01/a.ndjson", Body=body)
        sqs, sns = session.client("sqs"), session.client("sns")
        consumers.ensure(
            sqs,
            sns,
            env.topic_arn(topo.topic_name),
            name="extra",
            queue_name="extra",
            dlq_name="extra-dlq",
            max_receive_count=7,
            filter_policy={"subject": ["alice"]},
            filter_scope="MessageAttributes",
        )
        assert kept.snapshot(session)
    assert (tmp_path / "s3" / topo.archive_bucket_name / "events/dt=2026-01-01/a.ndjson").read_bytes() == body
    saved = json.loads((tmp_path / "consumers.json").read_text())
    assert saved == [
        {
            "name": "extra",
            "queue_name": "extra",
            "dlq_name": "extra-dlq",
            "max_receive_count": 7,
            "filter_policy": {"subject": ["alice"]},
            "filter_scope": "MessageAttributes",
            "tags": {},
        }
    ]

    with mock_aws():  # a new, empty emulator, as after a restart
        session = _fresh_stack(env, topo)
        again = state.LocalState(tmp_path, topo, env)
        assert again.restore(session) == {"items": 1, "objects": 1, "consumers": 1, "messages": 0}
        got = session.client("dynamodb").get_item(TableName=topo.table_name, Key={"pk": item["pk"], "sk": item["sk"]})
        assert got["Item"] == item
        s3 = session.client("s3")
        assert (
            s3.get_object(Bucket=topo.archive_bucket_name, Key="events/dt=2026-01-01/a.ndjson")["Body"].read() == body
        )
        found = consumers.discover(session.client("sqs"), session.client("sns"), env.topic_arn(topo.topic_name))
        assert {"persister", "archive", "extra"} <= set(found)
        # An object deleted since is deleted from the copy at the next snapshot.
        s3.delete_object(Bucket=topo.archive_bucket_name, Key="events/dt=2026-01-01/a.ndjson")
        assert again.snapshot(session)
    assert not (tmp_path / "s3" / topo.archive_bucket_name / "events/dt=2026-01-01/a.ndjson").exists()


def test_no_snapshot_before_a_restore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stack that failed to load its state must not overwrite it with an empty one.
    env, topo = _env(tmp_path, monkeypatch), topology.load("dev", STACK_CONFIGS)
    assert state.LocalState(tmp_path, topo, env).snapshot(session=None) is False


def test_one_stack_per_state_dir_and_reset_waits_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, topo = _env(tmp_path, monkeypatch), topology.load("dev", STACK_CONFIGS)
    first = state.LocalState(tmp_path, topo, env)
    first.lock()
    try:
        with pytest.raises(state.StateError, match="another local stack"):
            state.LocalState(tmp_path, topo, env).lock()
        with pytest.raises(state.StateError, match="stop `make run` first"):
            state.reset(tmp_path)
    finally:
        first.unlock()
    state.LocalState(tmp_path, topo, env).lock()  # free again once unlocked


def test_reset_removes_only_what_fanout_keeps(tmp_path: Path) -> None:
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "t.jsonl").write_text("{}\n")
    (tmp_path / "s3" / "b").mkdir(parents=True)
    (tmp_path / "consumers.json").write_text("[]")
    (tmp_path / "notes.txt").write_text("mine")
    assert state.reset(tmp_path) == ["tables", "s3", "consumers.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert state.reset(tmp_path / "missing") == []
    only_ours = tmp_path / "ours"
    (only_ours / "tables").mkdir(parents=True)
    state.reset(only_ours)
    assert not only_ours.exists()


def test_queue_and_dlq_messages_come_back_once_with_their_receive_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, topo = _env(tmp_path, monkeypatch), topology.load("dev", STACK_CONFIGS)
    queue, dlq = topo.queue_name(topo.consumer("persister")), topo.dlq_name(topo.consumer("persister"))
    attrs = {
        "type": {"DataType": "String", "StringValue": "fanout.data.generated.v1"},
        "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }
    with mock_aws():
        session = _fresh_stack(env, topo)
        kept = state.LocalState(tmp_path, topo, env)
        kept.restore(session)
        sqs = session.client("sqs")
        q, d = sqs.get_queue_url(QueueName=queue)["QueueUrl"], sqs.get_queue_url(QueueName=dlq)["QueueUrl"]
        sqs.send_message(QueueUrl=q, MessageBody="twice", MessageAttributes=attrs)
        for _ in range(2):  # received twice, visible again each time
            sqs.receive_message(QueueUrl=q, VisibilityTimeout=0)
        sqs.send_message(QueueUrl=q, MessageBody="never received")
        sqs.send_message(QueueUrl=d, MessageBody="dead")
        assert kept.snapshot(session, final=True)
    assert (tmp_path / "queues.json").is_file()

    def contents(sqs: Any, url: str) -> dict[str, tuple[int, dict[str, Any]]]:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])  # fmt: skip
        return {
            m["Body"]: (int(m["Attributes"]["ApproximateReceiveCount"]), m.get("MessageAttributes", {})) for m in got
        }

    with mock_aws():  # a new, empty emulator, as after a restart
        session = _fresh_stack(env, topo)
        again = state.LocalState(tmp_path, topo, env)
        assert again.restore(session)["messages"] == 3
        sqs = session.client("sqs")
        q, d = sqs.get_queue_url(QueueName=queue)["QueueUrl"], sqs.get_queue_url(QueueName=dlq)["QueueUrl"]
        main = contents(sqs, q)
        assert set(main) == {"twice", "never received"}
        assert main["twice"][0] == 3 and main["never received"][0] == 1  # 2 before, and this look
        assert main["twice"][1]["raw"]["BinaryValue"] == b"\x00\x01"
        assert main["twice"][1]["type"]["StringValue"] == "fanout.data.generated.v1"
        assert set(contents(sqs, d)) == {"dead"}
    assert not (tmp_path / "queues.json").exists()  # loaded once: a crash now cannot bring them back twice
    with mock_aws():
        session = _fresh_stack(env, topo)
        assert state.LocalState(tmp_path, topo, env).restore(session)["messages"] == 0


def test_a_consumer_removed_while_stopped_gets_its_kept_queues_back_with_their_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, topo = _env(tmp_path, monkeypatch), topology.load("dev", STACK_CONFIGS)
    archive = topo.consumer("archive")
    queue, dlq = topo.queue_name(archive), topo.dlq_name(archive)
    with mock_aws():
        session = _fresh_stack(env, topo)
        kept = state.LocalState(tmp_path, topo, env)
        kept.restore(session)
        sqs = session.client("sqs")
        sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=dlq)["QueueUrl"], MessageBody="dead")
        assert kept.snapshot(session, final=True)

    # The stack config no longer declares the archive consumer.
    without = dataclasses.replace(topo, consumers=tuple(c for c in topo.consumers if c.name != "archive"))

    def restart() -> tuple[Any, state.LocalState, int]:
        session = _fresh_stack(env, without)
        again = state.LocalState(tmp_path, without, env)
        return session, again, again.restore(session)["messages"]

    with mock_aws():
        session, again, restored = restart()
        assert restored == 1
        sqs, sns = session.client("sqs"), session.client("sns")
        found = consumers.discover(sqs, sns, env.topic_arn(topo.topic_name))
        assert set(found) == {"persister"}  # nothing delivers to the archive's queue
        kept_now = consumers.discover_kept(sqs, found, {"persister"})
        assert set(kept_now) == {"archive"} and kept_now["archive"].removed
        q, d = kept_now["archive"].queue_url, str(kept_now["archive"].dlq_url)
        assert (q.rsplit("/", 1)[-1], d.rsplit("/", 1)[-1]) == (queue, dlq)
        redrive = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["RedrivePolicy"])["Attributes"]
        policy = json.loads(redrive["RedrivePolicy"])
        assert policy["maxReceiveCount"] == archive.max_receive_count
        assert policy["deadLetterTargetArn"].endswith(f":{dlq}")
        assert sqs.list_queue_tags(QueueUrl=d)["Tags"] == {consumers.TAG: "archive", consumers.ROLE_TAG: "dlq"}
        assert [m["Body"] for m in consumers.peek(sqs, d)] == ["dead"]  # once
        assert consumers._redrive_by_copy(sqs, d, q) == 1  # what `fanout dlq redrive` does on moto
        assert again.snapshot(session, final=True)

    with mock_aws():  # in its queue now, its DLQ empty: still kept, the message there once
        session, again, restored = restart()
        assert restored == 1
        sqs = session.client("sqs")
        kept_now = consumers.discover_kept(sqs, {}, {"persister"})
        assert consumers.counts(sqs, kept_now["archive"].queue_url) == 1
        assert consumers.counts(sqs, kept_now["archive"].dlq_url) == 0
        assert consumers.purge(sqs, kept_now["archive"].queue_url) == 1
        assert again.snapshot(session, final=True)

    with mock_aws():  # both empty at the stop: not made again, the name is free
        session, _, restored = restart()
        assert restored == 0
        sqs = session.client("sqs")
        assert consumers.discover_kept(sqs, {}, {"persister"}) == {}
        assert not consumers.queue_exists(sqs, queue) and not consumers.queue_exists(sqs, dlq)


def test_saved_messages_never_go_into_a_queue_that_now_belongs_to_another_consumer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, topo = _env(tmp_path, monkeypatch), topology.load("dev", STACK_CONFIGS)
    dlq = topo.dlq_name(topo.consumer("archive"))
    with mock_aws():
        session = _fresh_stack(env, topo)
        kept = state.LocalState(tmp_path, topo, env)
        kept.restore(session)
        sqs = session.client("sqs")
        sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=dlq)["QueueUrl"], MessageBody="dead")
        assert kept.snapshot(session, final=True)
    without = dataclasses.replace(topo, consumers=tuple(c for c in topo.consumers if c.name != "archive"))
    with mock_aws():
        session = _fresh_stack(env, without)
        sqs = session.client("sqs")
        # Made by someone else meanwhile, under the archive's DLQ name.
        url = sqs.create_queue(QueueName=dlq, tags={consumers.TAG: "other"})["QueueUrl"]
        assert state.LocalState(tmp_path, without, env).restore(session)["messages"] == 0
        assert consumers.counts(sqs, url) == 0


def test_a_removed_bus_consumers_kept_queue_comes_back_as_a_bus_consumers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, topo = _env(tmp_path, monkeypatch), topology.load("dev", STACK_CONFIGS)
    with mock_aws():
        session = _fresh_stack(env, topo)
        kept = state.LocalState(tmp_path, topo, env)
        kept.restore(session)
        sqs = session.client("sqs")
        made = consumers.ensure_bus(
            sqs,
            session.client("events"),
            topo.event_bus_name,
            name="busy",
            queue_name="fanout-dev-busy",
            dlq_name="fanout-dev-busy-dlq",
            event_pattern={"source": ["fanout.persister"]},
            max_receive_count=4,
        )
        sqs.send_message(QueueUrl=made.queue_url, MessageBody="waiting")
        assert kept.snapshot(session, final=True)
    with mock_aws():  # no rule feeds it any more: its queues come back, kept
        session = _fresh_stack(env, topo)
        assert state.LocalState(tmp_path, topo, env).restore(session)["messages"] == 1
        sqs = session.client("sqs")
        back = consumers.discover_kept(sqs, {}, {c.name for c in topo.consumers})["busy"]
        assert back.removed and consumers.counts(sqs, back.queue_url) == 1
        assert sqs.list_queue_tags(QueueUrl=back.queue_url)["Tags"] == {
            consumers.TAG: "busy",
            consumers.SOURCE_TAG: "bus",
        }
        redrive = sqs.get_queue_attributes(QueueUrl=back.queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
        assert json.loads(redrive["RedrivePolicy"])["maxReceiveCount"] == 4
        assert str(back.dlq_url).endswith("/fanout-dev-busy-dlq")
