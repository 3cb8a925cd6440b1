"""Consumers, DLQs, the bus and the generator: every queue, subscription, target and schedule has its DLQ."""

from __future__ import annotations

import json

import pulumi

from infra.components.queues import DLQ_RETENTION_SECONDS


@pulumi.runtime.test
def test_every_consumer_from_config_is_built(any_stack):
    topology = any_stack.settings.topology
    assert [c.name for c in topology.consumers] == list(any_stack.consumers)

    def check(rows):
        for spec, queue_name, dlq_name, filter_policy, scope, raw in rows:
            assert queue_name == topology.queue_name(spec)
            assert dlq_name == topology.dlq_name(spec)
            assert raw is True
            if spec.filter_policy:
                assert json.loads(filter_policy) == spec.filter_policy
                assert scope == spec.filter_policy_scope
            else:
                assert filter_policy is None

    rows = [
        pulumi.Output.all(
            c.spec,
            c.queue.name,
            c.dlq.name,
            c.subscription.filter_policy,
            c.subscription.filter_policy_scope,
            c.subscription.raw_message_delivery,
        )
        for c in any_stack.consumers.values()
        if c.subscription is not None
    ]
    return pulumi.Output.all(*rows).apply(check)


def test_each_consumer_has_a_subscription_or_a_rule_by_its_source(any_stack):
    for c in any_stack.consumers.values():
        if c.spec.source == "bus":
            assert c.subscription is None and c.rule is not None and c.target is not None
        else:
            assert c.subscription is not None and c.rule is None and c.target is None


@pulumi.runtime.test
def test_a_bus_consumer_is_a_rule_on_the_stack_bus_with_its_pattern_and_a_target_dlq(variant):
    c = variant.consumers["notify"]
    topology = variant.settings.topology

    def check(args):
        rule_name, bus_name, pattern, target_bus, dead_letter, target_dlq_arn, queue_name, retry = args
        assert rule_name == queue_name == topology.queue_name(c.spec)
        assert bus_name == target_bus == topology.event_bus_name
        assert json.loads(pattern) == c.spec.event_pattern
        assert dead_letter["arn"] == target_dlq_arn
        assert retry["maximum_retry_attempts"] > 0

    return pulumi.Output.all(
        c.rule.name,
        c.rule.event_bus_name,
        c.rule.event_pattern,
        c.target.event_bus_name,
        c.target.dead_letter_config,
        c.delivery_dlq.arn,
        c.queue.name,
        c.target.retry_policy,
    ).apply(check)


def test_the_variant_adds_consumers_by_config_alone(dev, variant):
    assert set(variant.consumers) == set(dev.consumers) | {"audit", "mirror", "notify"}
    assert variant.consumers["audit"].function is None
    assert variant.consumers["mirror"].function is not None


@pulumi.runtime.test
def test_every_consumer_queue_has_its_dlq_and_redrive_back(any_stack):
    def check(rows):
        for spec, redrive, dlq_arn, queue_arn, allow, retention in rows:
            assert json.loads(redrive) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count}
            assert json.loads(allow) == {"redrivePermission": "byQueue", "sourceQueueArns": [queue_arn]}
            assert retention == DLQ_RETENTION_SECONDS

    rows = [
        pulumi.Output.all(
            c.spec,
            c.queue.redrive_policy,
            c.dlq.arn,
            c.queue.arn,
            c.redrive_allow.redrive_allow_policy,
            c.dlq.message_retention_seconds,
        )
        for c in any_stack.consumers.values()
    ]
    return pulumi.Output.all(*rows).apply(check)


@pulumi.runtime.test
def test_every_work_queue_redrives_to_a_dlq(any_stack):
    dlqs = any_stack.dead_letter_queues

    def check(args):
        redrives, dlq_arns, retentions = args
        for redrive in redrives:
            assert json.loads(redrive)["deadLetterTargetArn"] in dlq_arns
        assert all(r == DLQ_RETENTION_SECONDS for r in retentions)

    return pulumi.Output.all(
        pulumi.Output.all(*[q.redrive_policy for q in any_stack.work_queues.values()]),
        pulumi.Output.all(*[q.arn for q in dlqs.values()]),
        pulumi.Output.all(*[q.message_retention_seconds for q in dlqs.values()]),
    ).apply(check)


@pulumi.runtime.test
def test_every_subscription_has_its_own_dlq(any_stack):
    def check(rows):
        seen = set()
        for redrive, sub_dlq_arn in rows:
            assert json.loads(redrive) == {"deadLetterTargetArn": sub_dlq_arn}
            seen.add(sub_dlq_arn)
        assert len(seen) == len(rows)

    rows = [
        pulumi.Output.all(c.subscription.redrive_policy, c.subscription_dlq.arn)
        for c in any_stack.consumers.values()
        if c.subscription is not None
    ]
    return pulumi.Output.all(*rows).apply(check)


@pulumi.runtime.test
def test_event_source_mappings_follow_the_consumer_config(any_stack):
    def check(rows):
        assert rows, "the persister at least has a function"
        for spec, batch, window, types, scaling, source, queue_arn, visibility, timeout in rows:
            assert batch == spec.batch_size
            assert window == spec.batching_window_seconds
            assert types == ["ReportBatchItemFailures"]
            assert scaling["maximum_concurrency"] == spec.max_concurrency
            assert source == queue_arn
            assert visibility >= 6 * timeout

    rows = []
    for c in any_stack.consumers.values():
        if c.function is None:
            assert c.event_source_mapping is None
            continue
        esm = c.event_source_mapping
        rows.append(
            pulumi.Output.all(
                c.spec,
                esm.batch_size,
                esm.maximum_batching_window_in_seconds,
                esm.function_response_types,
                esm.scaling_config,
                esm.event_source_arn,
                c.queue.arn,
                c.queue.visibility_timeout_seconds,
                c.function.function.timeout,
            )
        )
    return pulumi.Output.all(*rows).apply(check)


@pulumi.runtime.test
def test_bus_target_has_dlq_and_retries_and_archive_keeps_events(any_stack):
    bus = any_stack.bus
    if not any_stack.settings.persisted_queue:
        # No shared persisted-events queue (the stack files): no rule, target or queue to keep users' data.
        assert bus.targets == [] and bus.rule is None and bus.target_queue is None and bus.dead_letter_queues == {}
        return bus.archive.retention_days.apply(lambda r: _assert(r == any_stack.settings.archive_retention_days))
    assert bus.targets == [bus.target]

    def check(args):
        dead_letter, retry, target_dlq_arn, retention, pattern = args
        assert dead_letter["arn"] == target_dlq_arn
        assert retry["maximum_retry_attempts"] > 0
        assert retention == any_stack.settings.archive_retention_days
        assert json.loads(pattern)["detail-type"] == ["fanout.data.persisted.v1"]

    return pulumi.Output.all(
        bus.target.dead_letter_config,
        bus.target.retry_policy,
        bus.target_dlq.arn,
        bus.archive.retention_days,
        bus.rule.event_pattern,
    ).apply(check)


@pulumi.runtime.test
def test_schedule_retries_to_a_dlq_and_is_off_in_prd_by_default(stack_file):
    gen = stack_file.generator
    expected_state = "ENABLED" if stack_file.settings.topology.generator.enabled else "DISABLED"

    def check(args):
        target, state, dlq_arn, expression, failure = args
        assert target["dead_letter_config"]["arn"] == dlq_arn
        assert target["retry_policy"]["maximum_retry_attempts"] >= 1
        assert json.loads(target["input"])["count"] == stack_file.settings.topology.generator.count_per_run
        assert state == expected_state
        if stack_file.settings.stack == "prd":
            assert state == "DISABLED"
        assert expression == stack_file.settings.topology.generator.schedule
        assert failure["on_failure"]["destination"] == dlq_arn

    return pulumi.Output.all(
        gen.schedule.target,
        gen.schedule.state,
        gen.dlq.arn,
        gen.schedule.schedule_expression,
        gen.invoke_config.destination_config,
    ).apply(check)


@pulumi.runtime.test
def test_topic_traces_and_subscriptions_use_raw_delivery(any_stack):
    def check(args):
        tracing, raws = args
        assert tracing == "Active"
        assert all(r is True for r in raws)

    return pulumi.Output.all(
        any_stack.topic.topic.tracing_config,
        pulumi.Output.all(
            *[c.subscription.raw_message_delivery for c in any_stack.consumers.values() if c.subscription is not None]
        ),
    ).apply(check)


def _assert(condition: bool) -> None:
    assert condition
