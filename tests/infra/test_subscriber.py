"""The consumer package (fanout_subscriber) on its own, as another account's Pulumi project uses it."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pulumi
import pytest

import fanout_subscriber as fs
from infra import mocks
from tests.infra.helpers import as_list, has_tls_deny, statements

ROOT = Path(__file__).resolve().parents[2]
# The publisher's resources live in another account than the subscriber's (mocks.ACCOUNT).
TOPIC_ARN = "arn:aws:sns:eu-west-1:210987654321:fanout-prd-data-events"
BUS_ARN = "arn:aws:events:eu-west-1:210987654321:event-bus/fanout-prd-bus"
PATTERN = {"source": ["fanout.persister"], "detail-type": ["fanout.data.persisted.v1"]}


@pytest.fixture(scope="module")
def built() -> dict:
    recorded = mocks.install("subscriber", {}, "eu-west-1")
    out: dict = {"recorded": recorded}

    @pulumi.runtime.test
    def program() -> None:
        code = pulumi.AssetArchive({"app.py": pulumi.StringAsset("def handler(event, context):\n    return {}\n")})
        out["topic"] = fs.Consumer(
            "orders",
            fs.TopicSource(TOPIC_ARN, filter_policy={"type": ["fanout.data.generated.v1"]}),
            function=fs.FunctionArgs(
                code=code,
                handler="app.handler",
                timeout_seconds=20,
                statements=[{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::mine/*"]}],
            ),
            queue_name="orders",
            dlq_name="orders-dlq",
            batch_size=5,
            max_receive_count=4,
            dlq_alarm=fs.DlqAlarm(actions=["arn:aws:sns:eu-west-1:123456789012:ops"]),
        )
        out["bus"] = fs.Consumer("audit", fs.BusSource(BUS_ARN, PATTERN))
        out["remote_bus"] = fs.Consumer("remote", fs.BusSource(BUS_ARN, PATTERN, cross_account=True))
        out["given_key"] = fs.Consumer(
            "plain", fs.TopicSource(TOPIC_ARN), kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/mine"
        )

    program()
    return out


def test_the_package_imports_nothing_of_fanout_or_infra() -> None:
    code = (
        "import sys, fanout_subscriber\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fanout', 'infra', 'handlers'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr


@pulumi.runtime.test
def test_a_topic_consumer_subscribes_its_queue_raw_with_its_filter_and_a_subscription_dlq(built):
    c = built["topic"]
    assert c.rule is None and c.target is None

    def check(args):
        topic, protocol, endpoint, queue_arn, raw, policy, redrive, sub_dlq_arn, queue_redrive, dlq_arn = args
        assert topic == TOPIC_ARN and protocol == "sqs" and endpoint == queue_arn and raw is True
        assert json.loads(policy) == {"type": ["fanout.data.generated.v1"]}
        assert json.loads(redrive) == {"deadLetterTargetArn": sub_dlq_arn}
        assert json.loads(queue_redrive) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 4}

    s = c.subscription
    return pulumi.Output.all(
        s.topic,
        s.protocol,
        s.endpoint,
        c.queue.arn,
        s.raw_message_delivery,
        s.filter_policy,
        s.redrive_policy,
        c.subscription_dlq.arn,
        c.queue.redrive_policy,
        c.dlq.arn,
    ).apply(check)


@pulumi.runtime.test
def test_its_own_key_lets_only_sns_for_that_topic_encrypt_into_its_queues(built):
    c = built["topic"]
    assert c.key is not None

    def check(args):
        policy, key_arn, queue_keys = args
        found = {s["Sid"]: s for s in statements(policy)}
        assert set(found) == {"EnableIamPolicies", "AllowSourceToEncryptIntoQueues"}
        assert found["EnableIamPolicies"]["Principal"] == {"AWS": f"arn:aws:iam::{mocks.ACCOUNT}:root"}
        service = found["AllowSourceToEncryptIntoQueues"]
        assert service["Principal"] == {"Service": "sns.amazonaws.com"}
        assert sorted(service["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
        assert service["Condition"] == {"ArnEquals": {"aws:SourceArn": TOPIC_ARN}}
        assert queue_keys == [key_arn] * 3

    return pulumi.Output.all(
        c.key.policy,
        c.key.arn,
        pulumi.Output.all(c.queue.kms_master_key_id, c.dlq.kms_master_key_id, c.delivery_dlq.kms_master_key_id),
    ).apply(check)


@pulumi.runtime.test
def test_queue_policies_admit_only_the_topic_and_only_tls(built):
    c = built["topic"]

    def check(args):
        for policy, arn, service in args:
            assert has_tls_deny(policy, "sqs:")
            allows = [s for s in statements(policy) if s["Effect"] == "Allow"]
            if service is None:
                assert allows == []
                continue
            (allow,) = allows
            assert allow["Principal"] == {"Service": service}
            assert as_list(allow["Action"]) == ["sqs:SendMessage"] and allow["Resource"] == [arn]
            assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": TOPIC_ARN}}

    return pulumi.Output.all(
        pulumi.Output.all(c.queue_policy.policy, c.queue.arn, "sns.amazonaws.com"),
        pulumi.Output.all(c.subscription_dlq_policy.policy, c.subscription_dlq.arn, "sns.amazonaws.com"),
        pulumi.Output.all(c.dlq_policy.policy, c.dlq.arn, None),
    ).apply(check)


@pulumi.runtime.test
def test_its_function_reads_only_its_queue_and_key_and_reports_partial_failures(built):
    c = built["topic"]
    assert c.function is not None and c.event_source_mapping is not None

    def check(args):
        policy, queue_arn, key_arn, types, batch, source, visibility, timeout, handler = args
        found = {s["Sid"]: s for s in statements(policy) if "Sid" in s}
        assert found["ConsumeOwnQueue"]["Resource"] == [queue_arn]
        assert "sqs:DeleteMessage" in found["ConsumeOwnQueue"]["Action"]
        assert found["DecryptMessagesThroughSqs"]["Resource"] == [key_arn]
        # The key only through SQS in the queue's region, never directly.
        assert found["DecryptMessagesThroughSqs"]["Condition"] == {
            "StringEquals": {"kms:ViaService": "sqs.eu-west-1.amazonaws.com"}
        }
        extra = [s for s in statements(policy) if "Sid" not in s]
        assert extra == [{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::mine/*"]}]
        for s in statements(policy):
            if s["Resource"] == ["*"]:
                assert set(as_list(s["Action"])) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
        assert types == ["ReportBatchItemFailures"] and batch == 5 and source == queue_arn
        assert visibility == 6 * timeout == 120
        assert handler == "app.handler"

    return pulumi.Output.all(
        c.function.policy.policy,
        c.queue.arn,
        c.key.arn,
        c.event_source_mapping.function_response_types,
        c.event_source_mapping.batch_size,
        c.event_source_mapping.event_source_arn,
        c.queue.visibility_timeout_seconds,
        c.function.function.timeout,
        c.function.function.handler,
    ).apply(check)


@pulumi.runtime.test
def test_a_dlq_depth_alarm_watches_each_dlq(built):
    c = built["topic"]
    assert set(c.alarms) == {"dlq", "subscription-dlq"}
    assert built["bus"].alarms == {}

    def check(args):
        rows, dlq_names = args
        assert sorted(r[0]["QueueName"] for r in rows) == sorted(dlq_names)
        for _, metric, threshold, op, actions in rows:
            assert metric == "ApproximateNumberOfMessagesVisible" and threshold == 0
            assert op == "GreaterThanThreshold" and actions == ["arn:aws:sns:eu-west-1:123456789012:ops"]

    rows = [
        pulumi.Output.all(a.dimensions, a.metric_name, a.threshold, a.comparison_operator, a.alarm_actions)
        for a in c.alarms.values()
    ]
    return pulumi.Output.all(pulumi.Output.all(*rows), pulumi.Output.all(c.dlq.name, c.delivery_dlq.name)).apply(check)


@pulumi.runtime.test
def test_a_bus_consumer_gets_a_rule_on_that_bus_and_admits_only_that_rule(built):
    c = built["bus"]
    assert c.subscription is None and c.function is None

    def check(args):
        bus, pattern, rule_arn, target_bus, queue_arn, dead, retry, target_dlq_arn, qp, tp, key_policy = args
        assert bus == target_bus == BUS_ARN
        assert json.loads(pattern) == PATTERN
        # The mocks overwrite every resource's `arn` output: the target's queue is read from its inputs.
        (target,) = [r for r in built["recorded"].resources if r.name == "audit-target"]
        assert target.inputs["arn"] == queue_arn
        assert dead["arn"] == target_dlq_arn and retry["maximum_retry_attempts"] > 0
        for policy in (qp, tp):
            (allow,) = [s for s in statements(policy) if s["Effect"] == "Allow"]
            assert allow["Principal"] == {"Service": "events.amazonaws.com"}
            assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
        service = next(s for s in statements(key_policy) if s["Sid"] == "AllowSourceToEncryptIntoQueues")
        assert service["Principal"] == {"Service": "events.amazonaws.com"}
        # What SQS puts in every data key's encryption context (EventBridge sends no aws:SourceArn to
        # KMS): this account's queues in this region; the queue policy holds the rule.
        assert service["Condition"] == {
            "ArnLike": {"kms:EncryptionContext:aws:sqs:arn": f"arn:aws:sqs:eu-west-1:{mocks.ACCOUNT}:*"}
        }
        assert fnmatch.fnmatch(queue_arn, service["Condition"]["ArnLike"]["kms:EncryptionContext:aws:sqs:arn"])

    return pulumi.Output.all(
        c.rule.event_bus_name,
        c.rule.event_pattern,
        c.rule.arn,
        c.target.event_bus_name,
        c.queue.arn,
        c.target.dead_letter_config,
        c.target.retry_policy,
        c.delivery_dlq.arn,
        c.queue_policy.policy,
        c.delivery_dlq_policy.policy,
        c.key.policy,
    ).apply(check)


@pulumi.runtime.test
def test_from_another_account_a_bus_consumer_forwards_to_an_inbox_bus_of_its_own(built):
    c = built["remote_bus"]
    assert c.inbox is not None and c.forward_rule is not None and c.forward_target is not None
    assert built["bus"].inbox is None

    def check(args):
        (
            forward_bus,
            forward_pattern,
            inbox_arn,
            inbox_name,
            rule_bus,
            target_bus,
            inbox_policy,
            queue_policy,
            rule_arn,
        ) = args
        # The forwarding rule is on the fanout bus (in the other account) and targets the inbox.
        assert forward_bus == BUS_ARN and json.loads(forward_pattern) == PATTERN
        (forward,) = [r for r in built["recorded"].resources if r.name == "remote-forward-target"]
        assert forward.inputs["arn"] == inbox_arn and forward.inputs["eventBusName"] == BUS_ARN
        # The queue's rule and target are on the inbox, in this account.
        assert rule_bus == target_bus == inbox_name
        (allow,) = statements(inbox_policy)
        assert allow["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
        assert allow["Action"] == ["events:PutEvents"] and allow["Resource"] == [inbox_arn]
        (admit,) = [s for s in statements(queue_policy) if s["Effect"] == "Allow"]
        assert admit["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}

    return pulumi.Output.all(
        c.forward_rule.event_bus_name,
        c.forward_rule.event_pattern,
        c.inbox.arn,
        c.inbox.name,
        c.rule.event_bus_name,
        c.target.event_bus_name,
        c.inbox_policy.policy,
        c.queue_policy.policy,
        c.rule.arn,
    ).apply(check)


@pulumi.runtime.test
def test_a_given_key_is_used_and_no_key_is_made(built):
    c = built["given_key"]
    assert c.key is None
    assert not any(r.name == "plain-key" for r in built["recorded"].resources)
    return pulumi.Output.all(c.queue.kms_master_key_id, c.dlq.kms_master_key_id).apply(
        lambda keys: keys == ["arn:aws:kms:eu-west-1:123456789012:key/mine"] * 2 or pytest.fail(str(keys))
    )


@pytest.mark.parametrize(
    ("source", "kwargs", "message"),
    [
        (fs.TopicSource(TOPIC_ARN, filter_policy_scope="Body"), {}, "filter_policy_scope"),
        (fs.BusSource(BUS_ARN, {}), {}, "event_pattern"),
        (fs.BusSource(BUS_ARN, PATTERN, rule_name="x" * 65), {}, "rule_name"),
        (fs.BusSource("fanout-prd-bus", PATTERN, cross_account=True), {}, "bus ARN"),
        (fs.TopicSource(TOPIC_ARN), {"batch_size": 11}, "batch_size"),
        (fs.TopicSource(TOPIC_ARN), {"max_receive_count": 0}, "max_receive_count"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(source, kwargs, message) -> None:
    mocks.install("subscriber-bad", {}, "eu-west-1")
    with pytest.raises(fs.ConsumerError, match=message):
        fs.Consumer("bad", source, **kwargs)


def test_the_package_ships_in_the_projects_wheel_and_imports_from_it(tmp_path: Path) -> None:
    """What another project gets from `pip install <this repository>`: fanout_subscriber, importable alone."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("fanout", "fanout_subscriber", "handlers", "infra"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("fanout-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {f"fanout_subscriber/{m}.py" for m in ("__init__", "consumer", "function", "policies", "queues")} <= names
    code = "import fanout_subscriber as fs, sys; print(fs.__file__); assert fs.Consumer and fs.TopicSource"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(wheel), "PATH": ""},
        cwd=tmp_path,  # not the checkout: `python -c` puts the current directory first on sys.path
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(wheel))
