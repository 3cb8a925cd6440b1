"""examples/subscriber: another team's project under mocks, its StackReference mocked with a fanout stack's outputs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

import fanout_subscriber as fs
from infra.components.consumer import Consumer as InRepoConsumer
from tests.infra.helpers import as_list, statements

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples/subscriber"
OUTPUTS = json.loads((EXAMPLE / "fanout-outputs.example.json").read_text(encoding="utf-8"))


def _plan_module():
    spec = importlib.util.spec_from_file_location("subscriber_example_plan", EXAMPLE / "plan.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    plan = _plan_module()
    mocks, program = plan.run("dev")
    return plan, mocks, program


def test_it_is_a_pulumi_project_of_its_own_reading_the_fanout_stack(example):
    plan, mocks, _ = example
    assert (EXAMPLE / "Pulumi.yaml").is_file() and (EXAMPLE / "Pulumi.dev.yaml").is_file()
    project, config = plan.stack_config("dev")
    assert project != "fanout"
    assert mocks.references == [config[f"{project}:fanoutStack"]] == ["acme/fanout/prd"]


def test_the_example_and_the_in_repo_consumers_use_one_component(example):
    _, _, program = example
    assert type(program["consumer"]) is fs.Consumer
    assert issubclass(InRepoConsumer, fs.Consumer)


@pulumi.runtime.test
def test_it_subscribes_its_own_queue_to_the_fanout_topic_raw_with_its_filter(example):
    _, mocks, program = example
    consumer = program["consumer"]
    subs = [r for r in mocks.resources if r.type == "aws:sns/topicSubscription:TopicSubscription"]
    assert len(subs) == 1

    def check(args):
        topic, protocol, endpoint, queue_arn, raw, policy = args
        assert topic == OUTPUTS["topic_arn"]
        assert protocol == "sqs" and endpoint == queue_arn and raw is True
        assert json.loads(policy) == {"type": ["fanout.data.generated.v1"]}
        assert ":999988887777:" in queue_arn, "the queue is in the subscriber's own account"

    s = consumer.subscription
    return pulumi.Output.all(
        s.topic, s.protocol, s.endpoint, consumer.queue.arn, s.raw_message_delivery, s.filter_policy
    ).apply(check)


@pulumi.runtime.test
def test_its_key_and_queues_admit_only_that_topic(example):
    _, _, program = example
    c = program["consumer"]

    def check(args):
        key_policy, queue_policy, sub_dlq_policy = args
        service = next(s for s in statements(key_policy) if s["Sid"] == "AllowSourceToEncryptIntoQueues")
        assert service["Principal"] == {"Service": "sns.amazonaws.com"}
        assert service["Condition"] == {"ArnEquals": {"aws:SourceArn": OUTPUTS["topic_arn"]}}
        for policy in (queue_policy, sub_dlq_policy):
            (allow,) = [s for s in statements(policy) if s["Effect"] == "Allow"]
            assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": OUTPUTS["topic_arn"]}}

    return pulumi.Output.all(c.key.policy, c.queue_policy.policy, c.subscription_dlq_policy.policy).apply(check)


@pulumi.runtime.test
def test_its_function_runs_the_example_handler_with_only_what_it_needs(example):
    _, _, program = example
    c = program["consumer"]
    bucket = program["received"]
    assert c.function is not None and len(c.alarms) == 2

    def check(args):
        handler, env, policy, bucket_arn, bucket_name, types = args
        assert handler == "subscriber_app.handler.handler"
        assert env["variables"]["RECEIVED_BUCKET"] == bucket_name
        found = {s.get("Sid"): s for s in statements(policy)}
        assert found["StoreReceivedEvents"]["Resource"] == [f"{bucket_arn}/received/*"]
        assert as_list(found["StoreReceivedEvents"]["Action"]) == ["s3:PutObject"]
        assert types == ["ReportBatchItemFailures"]

    return pulumi.Output.all(
        c.function.function.handler,
        c.function.function.environment,
        c.function.policy.policy,
        bucket.arn,
        bucket.bucket,
        c.event_source_mapping.function_response_types,
    ).apply(check)


def test_its_code_carries_the_handler_and_the_kit_with_its_schemas_and_nothing_of_fanout_else(example):
    _, _, program = example
    assets = program["code_archive"]().assets
    assert {"subscriber_app", "fanout_kit", "aws_lambda_powertools", "fastjsonschema"} <= set(assets)
    assert not {"handlers", "schemas", "fanout", "infra"} & set(assets)
    kit = assets["fanout_kit"].assets
    assert "kit.py" in kit and "models.py" in kit and "testing.py" not in kit
    schemas = kit["event_schemas"].assets
    assert Path(schemas["fanout.data.generated.v1.json"].path).is_file()
    assert sorted(schemas) == sorted(p.name for p in (EXAMPLE.parents[1] / "schemas").glob("*.json"))


def test_its_plan_prints_offline():
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "plan.py")], capture_output=True, text=True, timeout=120, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    assert "aws:sns/topicSubscription:TopicSubscription" in done.stdout
    assert OUTPUTS["topic_arn"] in done.stdout
