"""What a first prd deploy on a new account needs, and what watches a deployed stack, under mocks."""

from __future__ import annotations

import copy
import fnmatch
from typing import Any

import pulumi

from infra import mocks, plan
from tests.infra.helpers import statements


def _build(stack: str = "dev", **changes: Any) -> tuple[mocks.AwsMocks, Any]:
    config, region = mocks.read_stack_file(stack)
    config = copy.deepcopy(config) | changes
    return plan.run_config(stack, config, region)


def _inputs(recorded: mocks.AwsMocks, typ: str) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs for r in recorded.resources if r.type == typ}


# ---------------------------------------------------------------- method settings keys


@pulumi.runtime.test
def test_prd_post_limit_is_keyed_as_get_stage_returns_it(prd):
    """The committed prd throttles POST /data at 50 rps under the key API Gateway itself uses."""
    setting = prd.api.method_settings["~1data/POST"]

    def check(args):
        path, settings = args
        assert path == "~1data/POST"
        assert settings["throttling_rate_limit"] == 50 and settings["throttling_burst_limit"] == 100

    return pulumi.Output.all(setting.method_path, setting.settings).apply(check)


# ---------------------------------------------------------------- EventBridge into encrypted queues


@pulumi.runtime.test
def test_eventbridge_may_use_the_messaging_key_only_for_the_stacks_queues(any_stack):
    """Held by the encryption context SQS always sends, not by keys EventBridge may never send."""
    bus = any_stack.bus
    prefix = any_stack.settings.prefix

    def check(args):
        policy, topic_arn, *queue_arns = args
        region = topic_arn.split(":")[3]
        (events,) = [s for s in statements(policy) if s.get("Principal") == {"Service": "events.amazonaws.com"}]
        assert set(events["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        assert "aws:SourceArn" not in str(events["Condition"]) and "aws:SourceAccount" not in str(events["Condition"])
        pattern = events["Condition"]["ArnLike"]["kms:EncryptionContext:aws:sqs:arn"]
        assert pattern == f"arn:aws:sqs:{region}:{mocks.ACCOUNT}:{prefix}-*"
        # Every queue EventBridge delivers to (targets and their DLQs) is covered; another account's is not.
        for arn in queue_arns:
            assert fnmatch.fnmatch(arn, pattern), arn
        assert not fnmatch.fnmatch(f"arn:aws:sqs:{region}:210987654321:{prefix}-x", pattern)

    bus_consumers = [c for c in any_stack.consumers.values() if c.spec.source == "bus"]
    queues = [q.arn for c in bus_consumers for q in (c.queue, c.delivery_dlq)]
    if bus.targets:
        queues += [bus.target_queue.arn, bus.target_dlq.arn]
    return pulumi.Output.all(any_stack.topic.key.policy, any_stack.topic.topic.arn, *queues).apply(check)


# ---------------------------------------------------------------- the archive expires


def test_the_archive_expires_after_the_stacks_retention_and_has_no_useless_transition(builds):
    for name in ("dev", "prd"):
        recorded, built = builds[name]
        lifecycle = _inputs(recorded, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        (rule,) = lifecycle["archive-lifecycle"]["rules"]
        assert rule["filter"]["prefix"] == "events/"
        assert rule["status"] == "Enabled"
        assert rule["expiration"]["days"] == built.settings.archive_retention_days == (90 if name == "prd" else 7)
        # S3 does not transition objects under 128 KB: every archive object is smaller.
        assert not rule.get("transitions")


# ---------------------------------------------------------------- the edge alarm topic is encrypted


def test_the_us_east_1_alarm_topic_is_encrypted_with_a_key_there(builds):
    recorded, _ = builds["prd"]
    topics = _inputs(recorded, "aws:sns/topic:Topic")
    keys = _inputs(recorded, "aws:kms/key:Key")
    edge_topic = next(t for t in topics.values() if t.get("region") == "us-east-1")
    edge_key_name, edge_key = next((n, k) for n, k in keys.items() if k.get("region") == "us-east-1")
    assert edge_topic["kmsMasterKeyId"] == f"arn:aws:kms:eu-west-1:{mocks.ACCOUNT}:key/{edge_key_name}-0000000"
    assert edge_key["enableKeyRotation"] is True
    (cloudwatch,) = [
        s for s in statements(edge_key["policy"]) if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch["Condition"] == {
        "StringEquals": {"aws:SourceAccount": mocks.ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{mocks.ACCOUNT}:alarm:fanout-prd-*"},
    }
    # Every topic of the stack is encrypted now.
    assert all(t.get("kmsMasterKeyId") for t in topics.values())


# ---------------------------------------------------------------- the messaging key only through its service


@pulumi.runtime.test
def test_publishers_and_consumers_hold_the_messaging_key_only_through_sns_or_sqs(any_stack):
    key_arn = any_stack.topic.key.arn
    roles = {name: f.policy.policy for name, f in any_stack.functions.items()}
    roles["scheduler"] = any_stack.generator.scheduler_policy.policy

    def check(args):
        key, region, *policies = args
        named = dict(zip(roles, policies, strict=True))
        seen = set()
        for role, policy in named.items():
            for s in statements(policy):
                if key not in s["Resource"]:
                    continue
                seen.add(role)
                via = s["Condition"]["StringEquals"]["kms:ViaService"]
                assert via in {f"sns.{region}.amazonaws.com", f"sqs.{region}.amazonaws.com"}, (role, s)
        # Who uses the key: the publishers, every consumer function, the generator's schedule.
        assert {"api", "generator", "scheduler", "persister"} <= seen

    return pulumi.Output.all(
        key_arn, any_stack.topic.topic.arn.apply(lambda a: a.split(":")[3]), *roles.values()
    ).apply(check)


# ---------------------------------------------------------------- deliveries lost before any DLQ are watched


def test_lost_deliveries_raise_alarms_per_topic_rule_schedule_group_and_destination(builds):
    recorded, built = builds["variant"]
    alarms = {a["name"]: a for a in _inputs(recorded, "aws:cloudwatch/metricAlarm:MetricAlarm").values()}
    prefix = built.settings.prefix
    topic = built.settings.topology.topic_name
    bus = built.settings.topology.event_bus_name

    def alarm(slug: str) -> dict[str, Any]:
        found = alarms[f"{prefix}-{slug}"]
        assert found["threshold"] == 1 and found["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert found["statistic"] == "Sum" and found["alarmActions"]
        return found

    for metric in ("NumberOfNotificationsFailed", "NumberOfNotificationsFailedToRedriveToDlq"):
        found = alarm(f"events-{metric}")
        assert (found["namespace"], found["metricName"], found["dimensions"]) == (
            "AWS/SNS",
            metric,
            {"TopicName": topic},
        )
    # Every rule with a target: the bus consumer's and the shared persisted queue's, on the custom bus.
    rules = {"rule-notify": f"{prefix}-notify", "rule-persisted": f"{prefix}-persisted"}
    for slug, rule in rules.items():
        for metric in ("FailedInvocations", "InvocationsFailedToBeSentToDlq"):
            found = alarm(f"{slug}-{metric}")
            assert found["namespace"] == "AWS/Events" and found["metricName"] == metric
            assert found["dimensions"] == {"EventBusName": bus, "RuleName": rule}
    scheduler = alarm("schedules-default-dlq-send-failed")
    assert scheduler["namespace"] == "AWS/Scheduler"
    assert scheduler["metricName"] == "InvocationsFailedToBeSentToDeadLetterCount"
    assert scheduler["dimensions"] == {"ScheduleGroup": "default"}
    destination = alarm("generator-destination-failures")
    assert destination["metricName"] == "DestinationDeliveryFailures"
    assert destination["dimensions"] == {"FunctionName": f"{prefix}-generator"}


# ---------------------------------------------------------------- the persisted-events queue is opt-in


def test_no_queue_keeps_persisted_events_unless_asked_and_then_its_age_alarms(builds):
    for name in ("dev", "prd"):
        recorded, built = builds[name]
        assert built.settings.persisted_queue is False
        queues = {q["name"] for q in _inputs(recorded, "aws:sqs/queue:Queue").values()}
        assert not {n for n in queues if "persisted" in n}, queues
        assert not _inputs(recorded, "aws:cloudwatch/eventRule:EventRule")
    recorded, built = builds["variant"]
    queues = {q["name"] for q in _inputs(recorded, "aws:sqs/queue:Queue").values()}
    assert "fanout-dev-persisted-events" in queues
    alarms = {a["name"]: a for a in _inputs(recorded, "aws:cloudwatch/metricAlarm:MetricAlarm").values()}
    age = alarms["fanout-dev-bus-persisted-backlog-age"]
    assert age["metricName"] == "ApproximateAgeOfOldestMessage"
    assert age["dimensions"] == {"QueueName": "fanout-dev-persisted-events"}


def test_persisted_queue_is_validated_like_every_key():
    import pytest

    from fanout.topology import TopologyError
    from infra.settings import from_raw

    config, _ = mocks.read_stack_file("dev")
    with pytest.raises(TopologyError, match=r"fanout:persistedQueue must be true or false, got 'yes'"):
        from_raw("dev", copy.deepcopy(config) | {"persistedQueue": "yes"})


# ---------------------------------------------------------------- a subscriber in another region


def test_a_subscriber_subscribes_in_the_topics_region_whatever_its_own():
    import fanout_subscriber as fs

    recorded = mocks.install("subscriber-elsewhere", {}, "ap-southeast-2")
    topic = "arn:aws:sns:eu-west-1:210987654321:fanout-prd-data-events"

    @pulumi.runtime.test
    def program() -> None:
        fs.Consumer("far", fs.TopicSource(topic))

    program()
    (subscription,) = _inputs(recorded, "aws:sns/topicSubscription:TopicSubscription").values()
    assert subscription["region"] == "eu-west-1" and subscription["topic"] == topic
    # The queue stays where the subscriber's provider is.
    assert all("region" not in q for q in _inputs(recorded, "aws:sqs/queue:Queue").values())


# ---------------------------------------------------------------- reserved concurrency against the real quota


def test_prd_is_refused_in_one_line_on_an_account_whose_quota_cannot_hold_its_reservations():
    import pytest

    from fanout.topology import TopologyError

    config, region = mocks.read_stack_file("prd")
    # A new account: Service Quotas says 10 concurrent executions, whatever the config assumes.
    with pytest.raises(TopologyError) as refused:
        plan.run_config("prd", copy.deepcopy(config), region, lambda_concurrency=10)
    message = str(refused.value)
    assert "\n" not in message
    assert "reserves 25 of the account's 10" in message and "L-B99A9384" in message
    assert "raise the account's concurrency quota" in message


def test_dev_fits_a_new_account_and_prd_a_default_one(builds):
    config, region = mocks.read_stack_file("dev")
    _, dev = plan.run_config("dev", copy.deepcopy(config), region, lambda_concurrency=10)
    assert dev.settings.concurrency.api is None and dev.settings.concurrency.authorizer is None
    recorded, prd = builds["prd"]  # built against AWS's default quota of 1000
    assert (prd.settings.concurrency.api, prd.settings.concurrency.authorizer) == (20, 5)
    # Every function with a reservation alarms when throttled; the others have no ceiling of their own.
    alarms = {a["name"]: a for a in _inputs(recorded, "aws:cloudwatch/metricAlarm:MetricAlarm").values()}
    throttles = {n: a for n, a in alarms.items() if a["metricName"] == "Throttles"}
    assert set(throttles) == {"fanout-prd-api-throttles", "fanout-prd-authorizer-throttles"}
    for name, alarm in throttles.items():
        assert alarm["namespace"] == "AWS/Lambda" and alarm["threshold"] == 1
        assert alarm["dimensions"] == {"FunctionName": name.removesuffix("-throttles")}


# ---------------------------------------------------------------- prd plans and deploys with the committed config


def test_committed_prd_plans_strictly_with_the_alarm_address_ci_gives_it(monkeypatch, capsys):
    """The address comes from the CI environment (pulumi/actions config-map); placeholders stay refused."""
    config, _ = mocks.read_stack_file("prd")
    assert "alarmEmail" not in config  # nothing personal is committed
    monkeypatch.setenv(plan.ALARM_EMAIL_ENV, "oncall@fanout-team.io")
    assert plan.main(["--stack", "prd", "--strict"]) == 0
    out = capsys.readouterr()
    assert "warning:" not in out.out and "resources to create" in out.out
    monkeypatch.setenv(plan.ALARM_EMAIL_ENV, "oncall@example.com")
    assert plan.main(["--stack", "prd", "--strict"]) == 1
    assert "is a placeholder" in capsys.readouterr().err
    monkeypatch.delenv(plan.ALARM_EMAIL_ENV)
    assert plan.main(["--stack", "prd", "--strict"]) == 1
    assert "FANOUT_ALARM_EMAIL" in capsys.readouterr().err
    assert plan.main(["--stack", "prd"]) == 0  # without --strict, a warning only


def test_the_deploy_workflow_gives_prd_its_alarm_address_from_the_environment():
    import yaml

    from infra.paths import ROOT

    doc = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text(encoding="utf-8"))
    for job in ("prd-preview", "prd"):
        steps = [s for s in doc["jobs"][job]["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
        assert steps, job
        for step in steps:
            config_map = yaml.safe_load(step["with"]["config-map"])
            assert config_map == {"fanout:alarmEmail": {"value": "${{ vars.FANOUT_ALARM_EMAIL }}", "secret": False}}


# ---------------------------------------------------------------- the X-Ray SDK only where the tracer is on


def test_the_xray_sdk_is_split_out_of_the_main_layer():
    import re

    from infra import package

    def names(text: str) -> set[str]:
        return {m.lower() for m in re.findall(r"(?m)^([A-Za-z0-9._-]+)==", text)}

    core, tracing = names(package.lock_requirements(False)), names(package.lock_requirements(True))
    assert tracing == {"aws-xray-sdk", "wrapt"}
    assert not core & tracing and "aws-lambda-powertools" in core
    assert core | tracing == names(package.LOCK.read_text(encoding="utf-8"))
    # Every pin keeps its hashes (pip --require-hashes).
    assert package.lock_requirements(True).count("--hash=sha256:") >= 2
    assert package._layer_stamp(True) != package._layer_stamp(False)


def test_only_stacks_with_the_tracer_on_get_the_xray_layer(builds):
    for name, tracing in (("dev", False), ("prd", False), ("variant", True)):
        recorded, built = builds[name]
        assert built.settings.tracing_sdk is tracing
        layers = {r["layerName"] for r in _inputs(recorded, "aws:lambda/layerVersion:LayerVersion").values()}
        prefix = built.settings.prefix
        assert layers == ({f"{prefix}-deps", f"{prefix}-deps-tracing"} if tracing else {f"{prefix}-deps"})
        for function in _inputs(recorded, "aws:lambda/function:Function").values():
            assert len(function["layers"]) == (2 if tracing else 1), (name, function["name"])


# ---------------------------------------------------------------- every prerequisite is written down


def test_deploy_doc_lists_every_prerequisite_of_a_first_prd_deploy():
    from infra.paths import ROOT

    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = text.split("\n## Prerequisites\n", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "pulumi stack init prd",  # CI never creates a stack
        "`upsert` is off",
        "python -m infra.deploy_role --stack prd",  # the deploy role, as code
        "--preview",  # and the read-only preview role
        "L-B99A9384",  # the Lambda quota preview reads
        "125 or more",
        "AWS Support",  # CloudFront on a new account
        "SCP",  # us-east-1 resources
        "us-east-1",
        "FANOUT_ALARM_EMAIL",
        "2027-10",  # CI's Python 3.11
    ):
        assert needed in section, needed
    tracing = text.split("\n## Tracing\n", 1)[1].split("\n## ", 1)[0]
    assert "2027-02-25" in tracing and "OpenTelemetry" in tracing and "Tracer" in tracing
