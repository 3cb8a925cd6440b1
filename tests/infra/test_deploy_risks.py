"""The deploy risks a review of the Pulumi program found (issue 9 §3), each pinned by a test under mocks."""

from __future__ import annotations

import copy

import pulumi

from infra import mocks, plan
from infra.components.api import ROUTES, method_path
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
    assert method_path("GET /data/{id}") == "data~1{id}/GET"
    assert method_path("POST /data") == "data/POST"
    assert method_path("GET /openapi.json") == "openapi.json/GET"


@pulumi.runtime.test
def test_every_method_setting_path_is_one_resource_path_and_a_method(variant):
    settings = variant.api.method_settings
    assert "data~1{id}/GET" in settings  # the variant throttles a nested route

    def check(paths):
        for path in paths:
            if path == "*/*":
                continue
            resource, _, method = path.rpartition("/")
            assert "/" not in resource, path  # API Gateway: "Invalid method setting path"
            assert method in {"GET", "POST"}, path

    return pulumi.Output.all(*[m.method_path for m in settings.values()]).apply(check)


# ---------------------------------------------------------------- 4. the account-wide setting survives destroy


def test_destroy_keeps_the_account_setting_and_its_role(builds):
    for name in ("dev", "prd"):
        recorded, built = builds[name]
        assert built.api.account is not None
        kept = recorded.retained()
        assert {"api-account", "api-cloudwatch-role", "api-cloudwatch-role-policy"} <= kept, kept
        # Nothing else is kept: destroy still removes the stack's own resources.
        assert kept == {"api-account", "api-cloudwatch-role", "api-cloudwatch-role-policy"}


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
