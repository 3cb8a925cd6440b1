"""One namespace of consumer names: one rule of characters and length, no two consumers sharing a name or a
queue, no consumer taking a name the stack builds for itself, and no queue adopted from another role."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fanout import cli, consumers, new_consumer, topology
from fanout.local import localapi
from fanout.topology import TopologyError

REGION = "us-east-1"


def _declare(*names: str, prefix: str = "fanout-dev", **extra: Any) -> topology.Topology:
    entries = [{"name": n, "handler": f"handlers.{n.replace('-', '_')}:handler", **extra} for n in names]
    return topology.from_config("dev", {"prefix": prefix, "consumers": entries})


@pytest.mark.parametrize(
    ("names", "message"),
    [
        # Its queue would be the persister's DLQ: the persister's dead letters would be consumed and deleted.
        (
            ["persister", "persister-dlq"],
            "would make the queue 'fanout-dev-persister-dlq', which belongs to consumer 'persister'",
        ),
        # In the other order too: "audit"'s DLQ is the queue of the consumer "audit-dlq" declared first.
        (["audit-dlq", "audit"], "would make the queue 'fanout-dev-audit-dlq', which belongs to consumer 'audit-dlq'"),
        (["trace-tap"], "would make the queue 'fanout-dev-trace-tap', one of the stack's own queues"),
        (["trace-bus-tap"], "one of the stack's own queues"),
        (["persisted-events-dlq"], "one of the stack's own queues"),
        (["api"], "would make the function fanout-dev-api, one of the stack's own functions"),
        (["authorizer"], "one of the stack's own functions"),
    ],
)
def test_a_config_whose_names_collide_is_refused(names: list[str], message: str) -> None:
    with pytest.raises(TopologyError, match=re.escape(message)):
        _declare(*names)


def test_a_queue_named_like_a_tail_queue_is_refused() -> None:
    with pytest.raises(TopologyError, match="a name kept for `fanout tail`'s queues"):
        _declare("tail-1", prefix="fanout")


def test_a_bus_consumer_named_like_the_stacks_rule_is_refused() -> None:
    pattern = {"source": ["fanout.persister"]}
    with pytest.raises(TopologyError, match="bus rule fanout-dev-persisted, one of the stack's own rules"):
        topology.from_config(
            "dev",
            {"prefix": "fanout-dev", "consumers": [{"name": "persisted", "source": "bus", "eventPattern": pattern}]},
        )


def test_one_rule_for_the_length_of_a_name_everywhere() -> None:
    longest = "n" * topology.CONSUMER_NAME_MAX
    # Derived from SQS's 80: the shortest prefix "ab-", the longest queue suffix "-sub-dlq", room for ".fifo".
    assert 80 - len("ab-") - len("-sub-dlq") - len(".fifo") == topology.CONSUMER_NAME_MAX
    assert re.fullmatch(localapi.CONSUMER, longest) and not re.fullmatch(localapi.CONSUMER, longest + "n")
    topology.check_consumer_name("ab", longest, handler=False)
    with pytest.raises(TopologyError, match=rf"must be 1-{topology.CONSUMER_NAME_MAX} letters"):
        topology.check_consumer_name("ab", longest + "n", handler=False)


def test_subscribe_refuses_a_name_outside_the_rule_before_reaching_any_stack(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["subscribe", "n" * (topology.CONSUMER_NAME_MAX + 1)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"NAME must be 1-{topology.CONSUMER_NAME_MAX} letters" in err


def test_new_consumer_refuses_a_name_the_running_stack_has_subscribed(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  fanout:prefix: fanout-dev\n")
    subscribed = topology.NameUse("audit", "subscribed with `fanout subscribe`", ("audit", "audit-dlq"))
    with pytest.raises(new_consumer.NewConsumerError, match="consumer name 'audit' is taken: subscribed with"):
        new_consumer.plan("audit", None, "topic", None, tmp_path, {"dev": [subscribed]})
    # A subscribed consumer whose queue is named like this one's queue.
    odd = topology.NameUse("fanout-dev-audit", "subscribed with `fanout subscribe`", ("fanout-dev-audit",))
    with pytest.raises(new_consumer.NewConsumerError, match="belongs to consumer 'fanout-dev-audit'"):
        new_consumer.plan("audit", None, "topic", None, tmp_path, {"dev": [odd]})
    assert new_consumer.plan("audit2", None, "topic", None, tmp_path, {"dev": [subscribed]}).name == "audit2"


def test_new_consumer_keeps_crlf_line_endings(tmp_path: Path) -> None:
    text = (
        "config:\r\n  fanout:prefix: demo\r\n  fanout:consumers:\r\n"
        "    - name: persister\r\n      handler: handlers.persister:handler\r\n"
    )
    (tmp_path / "Pulumi.dev.yaml").write_bytes(text.encode())
    made = new_consumer.plan("audit", None, "topic", None, tmp_path)
    made.write(tmp_path)
    written = (tmp_path / "Pulumi.dev.yaml").read_bytes()
    assert written.startswith(text.encode()) and b"- name: audit\r\n" in written
    assert written.count(b"\n") == written.count(b"\r\n")
    assert [c.name for c in topology.load("dev", tmp_path).consumers] == ["persister", "audit"]


def test_new_consumer_adds_to_a_config_followed_by_another_top_level_key(tmp_path: Path) -> None:
    text = (
        "config:\n  fanout:prefix: demo\n  fanout:consumers:\n    - name: persister\n"
        "      handler: handlers.persister:handler\nencryptionsalt: v1:abc\n"
    )
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    new_consumer.plan("audit", None, "topic", None, tmp_path).write(tmp_path)
    written = (tmp_path / "Pulumi.dev.yaml").read_text()
    assert written.endswith("encryptionsalt: v1:abc\n")
    assert [c.name for c in topology.load("dev", tmp_path).consumers] == ["persister", "audit"]


def test_a_broken_stack_file_is_one_line_naming_the_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  fanout:prefix: demo\n  fanout:consumers: [\n")
    monkeypatch.setattr(new_consumer, "ROOT", tmp_path)
    monkeypatch.setattr(new_consumer, "running_names", lambda stacks: {})
    assert cli.main(["new-consumer", "audit"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Pulumi.dev.yaml is not valid YAML: line 4:" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Pulumi.dev.yaml"]


# ---------------------------------------------------------------------- on the AWS APIs (moto)


@pytest.fixture
def sqs_sns() -> Any:
    with mock_aws():
        sqs, sns = boto3.client("sqs", region_name=REGION), boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="fanout-dev-data-events")["TopicArn"]
        yield sqs, sns, topic


def _ensure(sqs: Any, sns: Any, topic: str, name: str, queue: str, dlq: str) -> consumers.ConsumerQueues:
    return consumers.ensure(sqs, sns, topic, name=name, queue_name=queue, dlq_name=dlq)


def test_a_queue_of_another_role_is_never_adopted(sqs_sns: Any) -> None:
    sqs, sns, topic = sqs_sns
    _ensure(sqs, sns, topic, "persister", "fanout-dev-persister", "fanout-dev-persister-dlq")
    with pytest.raises(
        consumers.ConsumerError, match="fanout-dev-persister-dlq exists already as a dlq queue of consumer 'persister'"
    ):
        _ensure(sqs, sns, topic, "persister-dlq", "fanout-dev-persister-dlq", "fanout-dev-persister-dlq-dlq")
    sqs.create_queue(QueueName="fanout-dev-trace-tap", tags={"fanout:role": "tap"})
    with pytest.raises(consumers.ConsumerError, match="fanout-dev-trace-tap exists already as a tap queue"):
        _ensure(sqs, sns, topic, "trace-tap", "fanout-dev-trace-tap", "fanout-dev-trace-tap-dlq")
    # Its own queues it finds again (idempotent).
    again = _ensure(sqs, sns, topic, "persister", "fanout-dev-persister", "fanout-dev-persister-dlq")
    assert again.queue_url.endswith("/fanout-dev-persister")


def test_a_deleted_dlq_is_reported_and_the_rest_keeps_working(sqs_sns: Any) -> None:
    sqs, sns, topic = sqs_sns
    a = _ensure(sqs, sns, topic, "a", "a", "a-dlq")
    _ensure(sqs, sns, topic, "b", "b", "b-dlq")
    sqs.delete_queue(QueueUrl=str(a.dlq_url))
    found = consumers.discover(sqs, sns, topic)
    assert (found["a"].dlq_url, found["a"].missing) == (None, ("a-dlq",))
    assert found["b"].dlq_url and not found["b"].missing
    consumers.remove(sqs, sns, topic, "a", "a-dlq")  # removes what exists
    assert set(consumers.discover(sqs, sns, topic)) == {"b"}
    assert consumers.counts(sqs, str(a.dlq_url)) is None


def test_a_removed_consumers_kept_queues_are_found_with_their_counts(sqs_sns: Any) -> None:
    sqs, sns, topic = sqs_sns
    kept = _ensure(sqs, sns, topic, "old", "fanout-dev-old", "fanout-dev-old-dlq")
    sqs.send_message(QueueUrl=str(kept.dlq_url), MessageBody="dead")
    sqs.send_message(QueueUrl=kept.queue_url, MessageBody="waiting")
    arn = consumers.queue_arn(sqs, kept.queue_url)
    for sub in consumers.sqs_subscriptions(sns, topic):
        if sub["Endpoint"] == arn:
            sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])  # what a removal from the config does
    found = consumers.discover(sqs, sns, topic)
    assert "old" not in found
    gone = consumers.discover_kept(sqs, found)["old"]
    assert (gone.removed, gone.queue_url, gone.dlq_url) == (True, kept.queue_url, kept.dlq_url)
    assert (consumers.counts(sqs, gone.queue_url), consumers.counts(sqs, gone.dlq_url)) == (1, 1)
    # Its name is taken until its queues go.
    topo = topology.from_config("dev", {"prefix": "fanout-dev"})
    uses = consumers.name_uses(topo, found, {"old": gone})
    problem = topology.name_problem("fanout-dev", "old", topology.subscribed_queue_names("old"), uses)
    assert problem and "consumer name 'old' is taken: removed from Pulumi.dev.yaml" in problem


def test_snapshots_go_on_when_a_dlq_was_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from fanout import localenv
    from fanout.local import state
    from fanout.local.provision import provision
    from tests.support.checkout import STACK_CONFIGS

    monkeypatch.setenv("FANOUT_STATE_DIR", str(tmp_path))
    env, topo = localenv.load(), topology.load("dev", STACK_CONFIGS)
    with mock_aws():
        session = boto3.session.Session(region_name=env.region)
        provision(topo, env, session)
        kept = state.LocalState(tmp_path, topo, env)
        kept.restore(session)
        sqs, sns = session.client("sqs"), session.client("sns")
        extra = _ensure(sqs, sns, env.topic_arn(topo.topic_name), "extra", "extra", "extra-dlq")
        sqs.send_message(QueueUrl=extra.queue_url, MessageBody="waiting")
        sqs.delete_queue(QueueUrl=str(extra.dlq_url))
        assert kept.snapshot(session, final=True)
    saved = json.loads((tmp_path / "consumers.json").read_text())
    assert [(c["name"], c["dlq_name"]) for c in saved] == [("extra", "extra-dlq")]  # made again at the next start
    assert [m["body"] for m in json.loads((tmp_path / "queues.json").read_text())["extra"]] == ["waiting"]


def test_a_deleted_queue_is_reported_missing_with_its_dlq_still_found(sqs_sns: Any) -> None:
    sqs, sns, topic = sqs_sns
    a = _ensure(sqs, sns, topic, "a", "a", "a-dlq")
    sqs.delete_queue(QueueUrl=a.queue_url)
    found = consumers.discover(sqs, sns, topic)
    assert "a" not in found  # its subscription points at a deleted queue
    left = consumers.discover_kept(sqs, found)["a"]
    assert (left.queue_url, left.dlq_url, left.missing, left.removed) == ("", a.dlq_url, ("a",), False)
    consumers.remove(sqs, sns, topic, "a", "a-dlq")
    assert consumers.discover_kept(sqs, consumers.discover(sqs, sns, topic)) == {}


def test_with_no_stack_running_new_consumer_refuses_a_name_saved_as_subscribed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import socket

    with socket.socket() as s:  # a port nothing listens on: no stack answers
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FANOUT_PORT", str(port))
    monkeypatch.setenv("FANOUT_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "state").mkdir()
    saved = [{"name": "audit", "queue_name": "audit", "dlq_name": "audit-dlq", "max_receive_count": 3}]
    (tmp_path / "state" / "consumers.json").write_text(json.dumps(saved))
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  fanout:prefix: fanout-dev\n")
    uses = new_consumer.running_names(["dev"])
    with pytest.raises(new_consumer.NewConsumerError, match="consumer name 'audit' is taken: subscribed with"):
        new_consumer.plan("audit", None, "topic", None, tmp_path, uses)
