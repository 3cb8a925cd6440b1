"""Encryption, resource policies and least-privilege IAM, for every build."""

from __future__ import annotations

import json

import pulumi

from tests.infra.helpers import as_list, has_tls_deny, statements

# The only actions AWS lets us grant on "*" (no resource-level permissions, or Lambda validates on "*").
STAR_RESOURCE_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def all_queues(stack):
    return {**stack.work_queues, **{f"dlq:{k}": q for k, q in stack.dead_letter_queues.items()}}


@pulumi.runtime.test
def test_topic_queues_and_tables_are_encrypted_with_customer_managed_keys(any_stack):
    queues = all_queues(any_stack)
    table = any_stack.table

    def check(args):
        topic_key, messaging_key, queue_keys, table_sse, idem_sse, table_key = args
        assert topic_key == messaging_key
        assert queue_keys and all(k == messaging_key for k in queue_keys), queue_keys
        for sse in (table_sse, idem_sse):
            assert sse["enabled"] is True and sse["kms_key_arn"] == table_key

    return pulumi.Output.all(
        any_stack.topic.topic.kms_master_key_id,
        any_stack.topic.key.arn,
        pulumi.Output.all(*[q.kms_master_key_id for q in queues.values()]),
        table.table.server_side_encryption,
        table.idempotency_table.server_side_encryption,
        table.key.arn,
    ).apply(check)


@pulumi.runtime.test
def test_every_queue_built_is_known_to_the_checks(builds):
    """A queue added without joining work_queues/dead_letter_queues would dodge the other tests."""

    def check(counts):
        for registered, known in counts:
            assert registered == known, (registered, known)

    counts = []
    for recorded, stack in builds.values():
        registered = sum(1 for r in recorded.resources if r.type == "aws:sqs/queue:Queue")
        counts.append((registered, len(all_queues(stack))))
    return pulumi.Output.from_input(counts).apply(check)


@pulumi.runtime.test
def test_keys_rotate_and_let_aws_services_deliver(any_stack):
    def check(args):
        rotation_a, rotation_b, policy = args
        assert rotation_a is True and rotation_b is True
        services = {s["Principal"]["Service"] for s in statements(policy) if "Service" in s.get("Principal", {})}
        assert {"sns.amazonaws.com", "events.amazonaws.com", "cloudwatch.amazonaws.com"} <= services

    return pulumi.Output.all(
        any_stack.topic.key.enable_key_rotation, any_stack.table.key.enable_key_rotation, any_stack.topic.key.policy
    ).apply(check)


@pulumi.runtime.test
def test_consumer_queues_admit_only_the_topic_and_deny_plain_http(any_stack):
    checks = []
    for consumer in any_stack.consumers.values():
        # A topic consumer's queues admit SNS from the topic; a bus consumer's, EventBridge from its rule.
        if consumer.rule is None:
            service, source = "sns.amazonaws.com", any_stack.topic.topic.arn
        else:
            service, source = "events.amazonaws.com", consumer.rule.arn
        checks += [
            pulumi.Output.all(consumer.queue_policy.policy, consumer.queue.arn, service, source),
            pulumi.Output.all(consumer.delivery_dlq_policy.policy, consumer.delivery_dlq.arn, service, source),
            pulumi.Output.all(consumer.dlq_policy.policy, consumer.dlq.arn, None, None),
        ]

    def check(results):
        for policy, queue_arn, service, source in results:
            assert has_tls_deny(policy, "sqs:")
            allows = [s for s in statements(policy) if s["Effect"] == "Allow"]
            if service is None:
                assert allows == []  # a DLQ is written by SQS itself, nobody else
                continue
            assert len(allows) == 1
            (allow,) = allows
            assert allow["Principal"] == {"Service": service}
            assert allow["Action"] == ["sqs:SendMessage"]
            assert allow["Resource"] == [queue_arn]
            assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": source}}

    return pulumi.Output.all(*checks).apply(check)


@pulumi.runtime.test
def test_bus_queues_admit_only_the_rule(any_stack):
    bus = any_stack.bus
    if bus.rule is None:
        assert not any_stack.settings.persisted_queue
        return None

    def check(args):
        rule_arn, target_policy, target_dlq_policy, reader_dlq_policy = args
        for policy in (target_policy, target_dlq_policy):
            assert has_tls_deny(policy, "sqs:")
            (allow,) = [s for s in statements(policy) if s["Effect"] == "Allow"]
            assert allow["Principal"] == {"Service": "events.amazonaws.com"}
            assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
        assert has_tls_deny(reader_dlq_policy, "sqs:")

    return pulumi.Output.all(
        bus.rule.arn, bus.target_queue_policy.policy, bus.target_dlq_policy.policy, bus.reader_dlq_policy.policy
    ).apply(check)


@pulumi.runtime.test
def test_topic_bucket_and_alarm_topic_deny_plain_http(any_stack):
    policies = [any_stack.topic.topic_policy.policy, any_stack.website.bucket_policy.policy]
    if any_stack.monitoring.topic_policy is not None:
        policies.append(any_stack.monitoring.topic_policy.policy)

    def check(docs):
        assert has_tls_deny(docs[0], "sns:")
        assert has_tls_deny(docs[1], "s3:")
        for doc in docs[2:]:
            assert has_tls_deny(doc, "sns:")

    return pulumi.Output.all(*policies).apply(check)


@pulumi.runtime.test
def test_one_role_per_function_assumable_only_by_lambda(any_stack):
    functions = any_stack.functions

    def check(args):
        role_arns = [a[0] for a in args]
        assert len(set(role_arns)) == len(role_arns) == len(functions)
        for function_role, role_arn, trust in args:
            assert function_role == role_arn
            (stmt,) = statements(trust)
            assert stmt["Principal"] == {"Service": "lambda.amazonaws.com"}
            assert stmt["Action"] == "sts:AssumeRole"

    return pulumi.Output.all(
        *[pulumi.Output.all(f.function.role, f.role.arn, f.role.assume_role_policy) for f in functions.values()]
    ).apply(check)


def _check_least_privilege(doc: str) -> None:
    for s in statements(doc):
        assert s["Effect"] == "Allow"
        actions = as_list(s["Action"])
        resources = as_list(s["Resource"])
        for action in actions:
            assert "*" not in action, f"wildcard action {action}"
        if "*" in resources:
            assert set(actions) <= STAR_RESOURCE_ACTIONS, f"{actions} on '*'"
        for resource in resources:
            assert resource == "*" or resource.startswith("arn:aws:"), resource


@pulumi.runtime.test
def test_function_policies_name_their_resources_and_actions(any_stack):
    def check(docs):
        for doc in docs:
            _check_least_privilege(doc)

    docs = [f.policy.policy for f in any_stack.functions.values()]
    docs.append(any_stack.generator.scheduler_policy.policy)
    return pulumi.Output.all(*docs).apply(check)


def _grants(doc: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for s in statements(doc):
        for action in as_list(s["Action"]):
            found.setdefault(action, set()).update(as_list(s["Resource"]))
    return found


@pulumi.runtime.test
def test_each_function_gets_exactly_what_it_calls(any_stack):
    fns = any_stack.functions
    persister = any_stack.consumers["persister"]

    def check(args):
        (api, persist, gen, auth, topic, table, idem, bus, queue, key, table_key, hs256_secret) = args
        api, persist, gen, auth = _grants(api), _grants(persist), _grants(gen), _grants(auth)
        assert api["sns:Publish"] == {topic}
        assert api["dynamodb:Query"] == {table} and api["dynamodb:GetItem"] == {table, idem}
        for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
            assert api[action] == {idem}
        assert "dynamodb:BatchWriteItem" not in api and "events:PutEvents" not in api
        assert api["kms:GenerateDataKey"] == {key, table_key}

        assert persist["dynamodb:BatchWriteItem"] == {table}
        assert persist["events:PutEvents"] == {bus}
        for action in (
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ChangeMessageVisibility",
        ):
            assert persist[action] == {queue}
        assert key in persist["kms:Decrypt"]
        assert "sns:Publish" not in persist and "dynamodb:Query" not in persist

        assert gen["sns:Publish"] == {topic}
        assert not any(a.startswith("dynamodb:") for a in gen)

        assert not any(a.split(":")[0] in {"sns", "sqs", "dynamodb", "events"} for a in auth)
        if hs256_secret is None:
            assert "secretsmanager:GetSecretValue" not in auth
        else:
            assert auth["secretsmanager:GetSecretValue"] == {hs256_secret}

    secret = any_stack.identity.secret
    return pulumi.Output.all(
        fns["api"].policy.policy,
        fns["persister"].policy.policy,
        fns["generator"].policy.policy,
        fns["authorizer"].policy.policy,
        any_stack.topic.topic.arn,
        any_stack.table.table.arn,
        any_stack.table.idempotency_table.arn,
        any_stack.bus.bus.arn,
        persister.queue.arn,
        any_stack.topic.key.arn,
        any_stack.table.key.arn,
        secret.arn if secret is not None else None,
    ).apply(check)


@pulumi.runtime.test
def test_scheduler_role_is_for_this_account_only(any_stack):
    gen = any_stack.generator

    def check(args):
        trust, fn_arn, policy = args
        (stmt,) = statements(trust)
        assert stmt["Principal"] == {"Service": "scheduler.amazonaws.com"}
        assert stmt["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
        assert _grants(policy)["lambda:InvokeFunction"] == {fn_arn}

    return pulumi.Output.all(
        gen.scheduler_role.assume_role_policy, gen.function.function.arn, gen.scheduler_policy.policy
    ).apply(check)


@pulumi.runtime.test
def test_web_bucket_is_private_and_read_only_by_the_distribution(any_stack):
    web = any_stack.website

    def check(args):
        pab, policy, dist_arn, bucket_arn = args
        assert all(pab), pab
        (allow,) = [s for s in statements(policy) if s["Effect"] == "Allow"]
        assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        assert allow["Action"] == ["s3:GetObject"] and allow["Resource"] == [f"{bucket_arn}/*"]
        assert allow["Condition"] == {"StringEquals": {"AWS:SourceArn": dist_arn}}

    pab = web.public_access_block
    return pulumi.Output.all(
        pulumi.Output.all(
            pab.block_public_acls, pab.block_public_policy, pab.ignore_public_acls, pab.restrict_public_buckets
        ),
        web.bucket_policy.policy,
        web.distribution.arn,
        web.bucket.arn,
    ).apply(check)


def test_policies_module_documents_are_valid_json():
    from infra import policies

    stmt = policies.deny_insecure_transport("sqs:*", ["arn:aws:sqs:eu-west-1:1:q"])
    assert json.loads(json.dumps(stmt))["Condition"]["Bool"]["aws:SecureTransport"] == "false"
