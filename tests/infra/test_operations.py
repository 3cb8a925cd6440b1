"""Tables, logs, tracing, environments, alarms, the network option and the archive bucket."""

from __future__ import annotations

import pulumi

COMMON_ENV = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACE_DISABLED",
}
EXPECTED_ENV = {
    "authorizer": {"JWT_ALGORITHMS", "ROLES_CLAIM"},  # plus the JWKS/issuer/audience or secret variables
    "api": {"TOPIC_ARN", "TABLE_NAME", "IDEMPOTENCY_TABLE_NAME", "CURSOR_SECRET_ARN"},
    "persister": {"TABLE_NAME", "EVENT_BUS_NAME"},
    "generator": {"TOPIC_ARN", "GENERATOR_USERS", "GENERATOR_COUNT"},
    "archive": {"ARCHIVE_BUCKET"},
}


@pulumi.runtime.test
def test_tables_pitr_and_deletion_protection_in_prd_and_ttl_for_idempotency(stack_file):
    table = stack_file.table
    production = stack_file.settings.stack == "prd"

    def check(args):
        pitr, protection, idem_protection, ttl, billing, keys = args
        assert pitr["enabled"] is production
        assert protection is production and idem_protection is production
        assert ttl == {"attribute_name": "expiration", "enabled": True}
        assert billing == "PAY_PER_REQUEST"
        assert keys == ["pk", "sk", "id"]

    return pulumi.Output.all(
        table.table.point_in_time_recovery,
        table.table.deletion_protection_enabled,
        table.idempotency_table.deletion_protection_enabled,
        table.idempotency_table.ttl,
        table.table.billing_mode,
        pulumi.Output.all(table.table.hash_key, table.table.range_key, table.idempotency_table.hash_key),
    ).apply(check)


@pulumi.runtime.test
def test_every_function_has_log_retention_json_logs_tracing_and_arm64(any_stack):
    retention = any_stack.settings.log_retention_days

    def check(rows):
        for name, days, group_name, logging, tracing, arch, runtime, layers, fn_name in rows:
            assert days == retention, name
            assert group_name == f"/aws/lambda/{fn_name}"
            assert logging["log_group"] == group_name and logging["log_format"] == "JSON"
            assert tracing == {"mode": "Active"}, name
            assert arch == ["arm64"] and runtime.startswith("python3.")
            # The dependency layer, and the X-Ray SDK's only where the tracer is on.
            assert len(layers) == (2 if any_stack.settings.tracing_sdk else 1)

    rows = [
        pulumi.Output.all(
            name,
            f.log_group.retention_in_days,
            f.log_group.name,
            f.function.logging_config,
            f.function.tracing_config,
            f.function.architectures,
            f.function.runtime,
            f.function.layers,
            f.function.name,
        )
        for name, f in any_stack.functions.items()
    ]
    return pulumi.Output.all(*rows).apply(check)


@pulumi.runtime.test
def test_function_environments_are_exactly_what_the_handlers_read(any_stack):
    handler_of = {"authorizer": "authorizer", "api": "api", "generator": "generator"}
    for name, consumer in any_stack.consumers.items():
        if consumer.spec.handler:
            handler_of[name] = consumer.spec.handler.split(".")[1].split(":")[0]

    def check(rows):
        for name, env in rows:
            handler = handler_of[name]
            expected = COMMON_ENV | EXPECTED_ENV.get(handler, set())
            if name in any_stack.consumers:
                expected |= set(any_stack.consumers[name].spec.environment)
            if handler == "authorizer":
                optional = {"JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_SECRET_ARN"}
                assert expected <= set(env) <= expected | optional, (name, sorted(env))
            else:
                assert set(env) == expected, (name, sorted(env))
            assert env["POWERTOOLS_METRICS_NAMESPACE"] == "fanout"
            assert env["POWERTOOLS_SERVICE_NAME"] == name
            # The X-Ray SDK (~210 ms of cold start) only when the stack asks for subsegments.
            assert env["POWERTOOLS_TRACE_DISABLED"] == ("false" if any_stack.settings.tracing_sdk else "true")

    return pulumi.Output.all(
        *[
            pulumi.Output.all(name, f.function.environment.apply(lambda e: e["variables"]))
            for name, f in any_stack.functions.items()
        ]
    ).apply(check)


@pulumi.runtime.test
def test_alarms_in_prd_on_every_dlq_api_and_consumer(prd):
    mon = prd.monitoring
    expected = {f"dlq-{slug}" for slug in prd.dead_letter_queues} | {"api-5xx", "api-latency-p99"}
    for name, consumer in prd.consumers.items():
        if consumer.function is not None:
            expected |= {f"{name}-errors", f"{name}-backlog-age"}
    # Deliveries that never reach a DLQ, and the functions that have a concurrency ceiling.
    expected |= {"events-NumberOfNotificationsFailed", "events-NumberOfNotificationsFailedToRedriveToDlq"}
    expected |= {"schedules-default-dlq-send-failed", "generator-destination-failures"}
    expected |= {"api-throttles", "authorizer-throttles"}
    assert set(mon.alarms) == expected
    assert mon.topic is not None

    def check(args):
        topic_arn, key_arn, topic_key, rows, dlq_names = args
        assert topic_key == key_arn
        alarmed_queues = set()
        for slug, actions, metric, threshold, op, dims in rows:
            assert actions == [topic_arn], slug
            if slug.startswith("dlq-"):
                assert metric == "ApproximateNumberOfMessagesVisible" and threshold == 1
                assert op == "GreaterThanOrEqualToThreshold"
                alarmed_queues.add(dims["QueueName"])
        assert alarmed_queues == set(dlq_names)

    return pulumi.Output.all(
        mon.topic.arn,
        prd.topic.key.arn,
        mon.topic.kms_master_key_id,
        pulumi.Output.all(
            *[
                pulumi.Output.all(
                    slug, a.alarm_actions, a.metric_name, a.threshold, a.comparison_operator, a.dimensions
                )
                for slug, a in mon.alarms.items()
            ]
        ),
        pulumi.Output.all(*[q.name for q in prd.dead_letter_queues.values()]),
    ).apply(check)


@pulumi.runtime.test
def test_no_alarms_in_dev_but_a_dashboard_everywhere(dev, any_stack):
    assert dev.monitoring.alarms == {} and dev.monitoring.topic is None

    def check(body):
        assert '"widgets"' in body and "ApproximateNumberOfMessagesVisible" in body

    return any_stack.monitoring.dashboard.dashboard_body.apply(check)


@pulumi.runtime.test
def test_alarm_email_is_subscribed_when_configured(variant):
    email = variant.monitoring.email
    assert email is not None

    def check(args):
        protocol, endpoint = args
        assert protocol == "email" and endpoint == "oncall@fanout-team.io"

    return pulumi.Output.all(email.protocol, email.endpoint).apply(check)


@pulumi.runtime.test
def test_vpc_option_puts_aws_calling_functions_in_private_subnets(variant, dev):
    net = variant.network
    assert net is not None and dev.network is None
    assert {"sns", "events", "xray", "dynamodb"} <= set(net.endpoints)

    def check(args):
        subnet_ids, rows = args
        for name, vpc in rows:
            if name == "authorizer":
                assert vpc is None  # fetches the issuer's JWKS from the internet
            else:
                assert vpc is not None and sorted(vpc["subnet_ids"]) == sorted(subnet_ids), name

    return pulumi.Output.all(
        net.subnet_ids,
        pulumi.Output.all(*[pulumi.Output.all(n, f.function.vpc_config) for n, f in variant.functions.items()]),
    ).apply(check)


@pulumi.runtime.test
def test_archive_bucket_is_private_encrypted_and_writable_only_under_events(any_stack):
    archive = any_stack.archive
    if archive is None:
        assert not any(c.spec.handler == "handlers.archive:handler" for c in any_stack.consumers.values())
        return None
    writer = next(c for c in any_stack.consumers.values() if c.spec.handler == "handlers.archive:handler")

    def check(args):
        pab, rules, table_key, bucket_arn, bucket, env, policy = args
        assert all(pab)
        default = rules[0]["apply_server_side_encryption_by_default"]
        assert default["sse_algorithm"] == "aws:kms" and default["kms_master_key_id"] == table_key
        assert env["ARCHIVE_BUCKET"] == bucket
        from tests.infra.helpers import statements

        puts = [s for s in statements(policy) if "s3:PutObject" in s["Action"]]
        assert [p["Resource"] for p in puts] == [[f"{bucket_arn}/events/*"]]

    pab = archive.public_access_block
    return pulumi.Output.all(
        pulumi.Output.all(
            pab.block_public_acls, pab.block_public_policy, pab.ignore_public_acls, pab.restrict_public_buckets
        ),
        archive.encryption.rules,
        any_stack.table.key.arn,
        archive.bucket.arn,
        archive.bucket.bucket,
        writer.function.function.environment.apply(lambda e: e["variables"]),
        writer.function.policy.policy,
    ).apply(check)
