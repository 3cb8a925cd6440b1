"""The deploy risks a review of the Pulumi program found, each pinned by a test under mocks."""

from __future__ import annotations

import copy
import fnmatch

import pulumi
import pytest

from fanout.topology import TopologyError
from infra import mocks, plan
from infra.components.api import ROUTES, method_path
from infra.settings import from_raw
from tests.infra.helpers import statements


def _build(stack: str = "dev", **changes):
    config, region = mocks.read_stack_file(stack)
    config = copy.deepcopy(config) | changes
    return plan.run_config(stack, config, region)


# ---------------------------------------------------------------- 1. API Gateway's CloudWatch role


@pulumi.runtime.test
def test_api_gateway_cloudwatch_role_trust_has_no_condition(any_stack):
    """API Gateway does not send aws:SourceAccount for this role: a condition would fail the Account."""
    role = any_stack.api.cloudwatch_role
    assert role is not None

    def check(trust):
        (stmt,) = statements(trust)
        assert stmt["Principal"] == {"Service": "apigateway.amazonaws.com"}
        assert stmt["Action"] == "sts:AssumeRole"
        assert "Condition" not in stmt

    return role.assume_role_policy.apply(check)


# ---------------------------------------------------------------- 2. method setting paths


def test_method_setting_paths_escape_slashes_of_nested_routes():
    # The keys `aws apigateway get-stage` returns under methodSettings.
    assert method_path("GET /data/{id}") == "~1data~1{id}/GET"
    assert method_path("POST /data") == "~1data/POST"
    assert method_path("GET /openapi.json") == "~1openapi.json/GET"


@pulumi.runtime.test
def test_every_method_setting_path_is_one_resource_path_and_a_method(variant):
    settings = variant.api.method_settings
    assert "~1data~1{id}/GET" in settings  # the variant throttles a nested route

    def check(paths):
        for path in paths:
            if path == "*/*":
                continue
            resource, _, method = path.rpartition("/")
            assert "/" not in resource, path  # API Gateway: "Invalid method setting path"
            assert resource.startswith("~1"), path  # the escaped leading slash, as get-stage keys it
            assert method in {"GET", "POST"}, path

    return pulumi.Output.all(*[m.method_path for m in settings.values()]).apply(check)


# ---------------------------------------------------------------- 4. the account-wide setting survives destroy


def test_destroy_keeps_the_account_setting_and_its_role(builds):
    for name in ("dev", "prd"):
        recorded, built = builds[name]
        assert built.api.account is not None
        kept = recorded.retained()
        assert {"api-account", "api-cloudwatch-role", "api-cloudwatch-role-policy"} <= kept, kept
        # The stack's own API is not kept: destroy still removes what belongs to this stack alone.
        assert not kept & {"api-rest-api", "api-stage", "api-deployment"}


def test_a_stack_can_leave_the_account_setting_to_another():
    recorded, built = _build(manageApiGatewayAccount=False)
    assert built.api.account is None and built.api.cloudwatch_role is None
    assert not any(r.type == "aws:apigateway/account:Account" for r in recorded.resources)


# ---------------------------------------------------------------- 8. redeploy on every frozen input


@pulumi.runtime.test
def test_deployment_hash_covers_every_method_integration_and_the_authorizer(dev):
    api = dev.api

    def check(args):
        frozen, authorizer_uri, api_uri = args
        assert set(frozen["methods"]) == set(frozen["integrations"]) == {r.key for r in ROUTES}
        kind, uri, identity_source, validation, ttl = frozen["authorizer"]
        assert (kind, uri, identity_source) == ("TOKEN", authorizer_uri, "method.request.header.Authorization")
        assert validation.startswith("^[Bb]earer") and ttl == dev.settings.topology.auth.cache_ttl_seconds
        for key, (_, integration_uri, *_rest) in frozen["integrations"].items():
            assert integration_uri == api_uri, key
        # Request parameters and the validator of each method are in, as API Gateway freezes them.
        get_item = frozen["methods"]["GET /data/{id}"]
        assert get_item[3]["method.request.path.id"] is True and get_item[4]
        assert frozen["validator"] == [True, False]

    return pulumi.Output.all(
        api.deployment_inputs, dev.authorizer.function.invoke_arn, dev.api_function.function.invoke_arn
    ).apply(check)


@pulumi.runtime.test
def test_a_changed_integration_uri_redeploys_the_stage():
    """Renaming the functions (here through the prefix) changes every integration and authorizer URI."""
    _, first = _build()
    _, second = _build(prefix="fanout-dev2")

    def check(args):
        a, b = args
        assert a["snapshot"] != b["snapshot"]

    return pulumi.Output.all(first.api.deployment.triggers, second.api.deployment.triggers).apply(check)


# ---------------------------------------------------------------- 10. KMS key: no confused deputy


@pulumi.runtime.test
def test_service_principals_use_the_messaging_key_only_for_this_accounts_resources(any_stack):
    s = any_stack.settings
    expected_source = {
        "sns.amazonaws.com": f"arn:aws:sns:{{region}}:{mocks.ACCOUNT}:{s.prefix}-*",
        "cloudwatch.amazonaws.com": f"arn:aws:cloudwatch:{{region}}:{mocks.ACCOUNT}:alarm:{s.prefix}-*",
        "scheduler.amazonaws.com": f"arn:aws:scheduler:{{region}}:{mocks.ACCOUNT}:schedule/default/{s.prefix}-*",
    }

    def check(args):
        policy, topic_arn = args
        region = topic_arn.split(":")[3]
        services = [st for st in statements(policy) if "Service" in st.get("Principal", {})]
        assert {st["Principal"]["Service"] for st in services} >= set(expected_source)
        # EventBridge is held by the queue it encrypts into (the test of that is beside the bus's).
        services = [st for st in services if st["Principal"]["Service"] != "events.amazonaws.com"]
        for st in services:
            service = st["Principal"]["Service"]
            # Every service principal, these and any added later, is held to this account's resources.
            assert st["Condition"]["StringEquals"] == {"aws:SourceAccount": mocks.ACCOUNT}, service
            source = st["Condition"]["ArnLike"]["aws:SourceArn"]
            assert f":{mocks.ACCOUNT}:" in source, service
            if service in expected_source:
                assert source == expected_source[service].format(region=region), service
            assert set(st["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        # The stack's own topic matches SNS's pattern.
        assert fnmatch.fnmatch(topic_arn, expected_source["sns.amazonaws.com"].format(region=region))

    return pulumi.Output.all(any_stack.topic.key.policy, any_stack.topic.topic.arn).apply(check)


# ---------------------------------------------------------------- 5. X-Ray lets SNS put its segments


@pulumi.runtime.test
def test_xray_resource_policy_lets_sns_trace_this_topic_only(any_stack):
    topic = any_stack.topic

    def check(args):
        tracing, document, topic_arn = args
        assert tracing == "Active"
        (stmt,) = statements(document)
        assert stmt["Principal"] == {"Service": "sns.amazonaws.com"}
        assert "xray:PutTraceSegments" in stmt["Action"]
        assert stmt["Condition"] == {
            "StringEquals": {"aws:SourceAccount": mocks.ACCOUNT},
            "ArnLike": {"aws:SourceArn": topic_arn},
        }

    return pulumi.Output.all(topic.topic.tracing_config, topic.tracing_policy.policy_document, topic.topic.arn).apply(
        check
    )


# ---------------------------------------------------------------- 12. archive writer: decrypt through S3 too


@pulumi.runtime.test
def test_archive_writer_may_decrypt_the_bucket_key_only_through_s3(dev):
    writer = dev.consumers["archive"]

    def check(args):
        policy, key_arn = args
        kms = [st for st in statements(policy) if any(a.startswith("kms:") for a in st["Action"])]
        through_s3 = [st for st in kms if st["Resource"] == [key_arn]]
        assert len(through_s3) == 1, through_s3
        (stmt,) = through_s3
        assert set(stmt["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
        assert stmt["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}

    return pulumi.Output.all(writer.function.policy.policy, dev.table.key.arn).apply(check)


# ---------------------------------------------------------------- 6. alarms must reach someone


@pytest.mark.parametrize("email", ["ops@example.com", "alerts@ops.example.org", "a@b.example.net", "me@host.test"])
def test_placeholder_alarm_addresses_are_refused_at_deploy(email):
    with pytest.raises(TopologyError, match=r"fanout:alarmEmail .*placeholder.*pulumi config set fanout:alarmEmail"):
        from_raw("prd", {"alarmEmail": email}, deploy=True)
    with pytest.raises(TopologyError, match="placeholder"):
        from_raw("dev", {"alarms": True, "alarmEmail": email}, deploy=True)


def test_a_production_stack_with_alarms_needs_an_address():
    with pytest.raises(TopologyError, match=r"fanout:alarmEmail is not set .*--stack prd"):
        from_raw("prd", {}, deploy=True)
    assert from_raw("prd", {"alarmEmail": "oncall@fanout-team.io"}, deploy=True).alarm_email
    assert from_raw("prd", {"alarms": False}, deploy=True).alarm_email is None
    assert from_raw("dev", {"alarms": True}, deploy=True).alarms  # dev may watch a dashboard only


def test_the_offline_plan_of_prd_warns_instead_of_failing(capsys):
    assert plan.main(["--stack", "prd"]) == 0
    out = capsys.readouterr().out
    assert "warning: `pulumi up` refuses this stack until this is fixed: fanout:alarmEmail is not set" in out
    assert "resources to create" in out


# ---------------------------------------------------------------- 7. VPC mode reaches S3 and may describe subnets


@pulumi.runtime.test
def test_vpc_mode_has_the_endpoints_its_functions_need(variant):
    net = variant.network
    assert net is not None
    assert {"s3", "dynamodb", "secretsmanager", "sns", "events", "xray"} <= set(net.endpoints)

    def check(args):
        s3_type, s3_routes, route_table, sm_type, sm_private_dns, policies_ = args
        assert s3_type == "Gateway" and s3_routes == [route_table]
        assert sm_type == "Interface" and sm_private_dns is True
        for name, doc in policies_:
            if name == "authorizer":
                continue  # outside the VPC
            actions = {a for st in statements(doc) for a in st["Action"]}
            assert {"ec2:DescribeSubnets", "ec2:CreateNetworkInterface"} <= actions, name

    s3, sm = net.endpoints["s3"], net.endpoints["secretsmanager"]
    return pulumi.Output.all(
        s3.vpc_endpoint_type,
        s3.route_table_ids,
        net.route_table.id,
        sm.vpc_endpoint_type,
        sm.private_dns_enabled,
        pulumi.Output.all(*[pulumi.Output.all(n, f.policy.policy) for n, f in variant.functions.items()]),
    ).apply(check)


# ---------------------------------------------------------------- 9. the cursor secret is a secret


@pulumi.runtime.test
def test_cursor_secret_lives_in_secrets_manager_readable_by_the_api_only(any_stack):
    secret = any_stack.cursor_secret
    assert secret is not None

    def check(args):
        secret_arn, rows = args
        for name, env, policy in rows:
            assert "CURSOR_SECRET" not in env, name  # never as plaintext in an environment
            readers = [st for st in statements(policy) if secret_arn in st["Resource"]]
            if name == "api":
                assert env["CURSOR_SECRET_ARN"] == secret_arn
                assert [(st["Action"], st["Resource"]) for st in readers] == [
                    (["secretsmanager:GetSecretValue"], [secret_arn])
                ]
            else:
                assert "CURSOR_SECRET_ARN" not in env and readers == [], name

    return pulumi.Output.all(
        secret.arn,
        pulumi.Output.all(
            *[
                pulumi.Output.all(n, f.function.environment.apply(lambda e: e["variables"]), f.policy.policy)
                for n, f in any_stack.functions.items()
            ]
        ),
    ).apply(check)


# ---------------------------------------------------------------- 11. the API keeps concurrency of its own


@pulumi.runtime.test
def test_prd_reserves_concurrency_for_the_api_path_and_dev_shares_the_pool(prd, dev):
    def check(args):
        prd_api, prd_auth, dev_api, dev_auth = args
        assert (prd_api, prd_auth) == (prd.settings.concurrency.api, prd.settings.concurrency.authorizer)
        assert prd_api and prd_auth
        assert dev_api is None and dev_auth is None

    return pulumi.Output.all(
        prd.api_function.function.reserved_concurrent_executions,
        prd.authorizer.function.reserved_concurrent_executions,
        dev.api_function.function.reserved_concurrent_executions,
        dev.authorizer.function.reserved_concurrent_executions,
    ).apply(check)


def test_consumers_that_would_take_the_whole_account_are_refused():
    busy = {"consumers": [{"name": "persister", "handler": "handlers.persister:handler", "maxConcurrency": 10}]}
    # A new account's quota of 10: persister 10 + generator 1 leaves the api and authorizer nothing.
    with pytest.raises(TopologyError, match=r"maxConcurrency adds up to 10 .*leaves the api and authorizer nothing"):
        from_raw("dev", {**busy, "accountConcurrency": 10})
    # Lambda keeps 100 unreserved: a quota of 10 cannot reserve either.
    with pytest.raises(TopologyError, match=r"fanout:reservedConcurrency reserves 2 .*keeps 100 unreserved"):
        from_raw("dev", {**busy, "accountConcurrency": 10, "reservedConcurrency": {"api": 1, "authorizer": 1}})
    with pytest.raises(TopologyError, match=r"fanout:reservedConcurrency\.apii .*fanout:reservedConcurrency\.api"):
        from_raw("dev", {"reservedConcurrency": {"apii": 5}})
    ok = from_raw("dev", {**busy, "accountConcurrency": 1000, "reservedConcurrency": {"api": 20}})
    assert (ok.concurrency.api, ok.concurrency.authorizer) == (20, None)
    # Reserved for both: the consumers may use the whole unreserved pool.
    both = {"api": 50, "authorizer": 50}
    assert from_raw("dev", {**busy, "accountConcurrency": 200, "reservedConcurrency": both}).concurrency.api == 50
