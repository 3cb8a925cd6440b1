"""What a subscribing team gets from a stack: its outputs and the AsyncAPI document published beside the web app."""

from __future__ import annotations

import copy
import fnmatch
import json

import pulumi
import pytest

from fanout.topology import TopologyError
from infra import mocks, plan
from infra.settings import from_raw
from infra.stack import subscriber_outputs
from infra.subscribers import RULE_ACTIONS
from tests.infra.helpers import statements
from tests.support.asyncapi_spec import errors

# Contract §8: the outputs a subscriber's project reads through a StackReference.
CONTRACT_OUTPUTS = {"topic_arn", "event_bus_name", "event_bus_arn", "asyncapi_url", "region"}


@pulumi.runtime.test
def test_the_stack_outputs_what_a_subscriber_needs(builds):
    checks = []
    for name, (_, stack) in builds.items():
        outputs = subscriber_outputs(stack)
        assert set(outputs) >= CONTRACT_OUTPUTS
        checks.append(
            pulumi.Output.all(
                name,
                pulumi.Output.all(**outputs),
                stack.topic.topic.arn,
                stack.bus.bus.arn,
                stack.bus.bus.name,
                stack.website.url,
            )
        )

    def check(rows):
        for name, out, topic_arn, bus_arn, bus_name, web_url in rows:
            assert out["topic_arn"] == topic_arn and out["event_bus_arn"] == bus_arn
            assert out["event_bus_name"] == bus_name
            assert out["asyncapi_url"] == f"{web_url}/asyncapi.json"
            assert out["region"] == ("us-east-2" if name == "variant" else "eu-west-1")
            assert out["event_types"] == ["fanout.data.generated.v1", "fanout.data.persisted.v1"]
            secretish = [k for k in out if any(w in k for w in ("secret", "token", "password"))]
            assert not secretish

    return pulumi.Output.all(*checks).apply(check)


@pulumi.runtime.test
def test_each_stack_publishes_its_asyncapi_document_next_to_the_web_app(any_stack):
    web = any_stack.website
    assert web.asyncapi_object is not None
    topology = any_stack.settings.topology

    def check(args):
        key, ctype, bucket, web_bucket, content, topic_arn, bus_arn = args
        assert key == "asyncapi.json" and ctype == "application/json" and bucket == web_bucket
        doc = json.loads(content)
        assert errors(doc) == []
        assert doc["channels"]["topic"]["x-arn"] == topic_arn
        assert doc["channels"]["bus"]["x-eventbridge"]["busArn"] == bus_arn
        receive = {n for n, op in doc["operations"].items() if op["action"] == "receive"}
        assert receive == {c.name for c in topology.consumers}

    o = web.asyncapi_object
    return pulumi.Output.all(
        o.key, o.content_type, o.bucket, web.bucket.id, o.content, any_stack.topic.topic.arn, any_stack.bus.bus.arn
    ).apply(check)


@pulumi.runtime.test
def test_the_document_is_served_from_the_bucket_not_the_api(any_stack):
    def check(behaviours):
        for b in behaviours or []:
            assert not fnmatch.fnmatch("/asyncapi.json", b["path_pattern"]), b["path_pattern"]

    return any_stack.website.distribution.ordered_cache_behaviors.apply(check)


# ---------------------------------------------------------------- fanout:subscribers

SUBSCRIBERS = {"accounts": ["111122223333", "044455556666"], "organizationId": "o-abcdef1234"}
OWNER = f"arn:aws:iam::{mocks.ACCOUNT}:root"


@pytest.fixture(scope="module")
def shared():
    """dev, with two other accounts and an organization allowed to subscribe."""
    config, region = mocks.read_stack_file("dev")
    config = copy.deepcopy(config) | {"subscribers": SUBSCRIBERS}
    return plan.run_config("dev", config, region)


def _grants(policy: str) -> list[dict]:
    """Every Allow that reaches beyond the owner account."""
    return [s for s in statements(policy) if s["Effect"] == "Allow" and s.get("Principal") != {"AWS": OWNER}]


@pulumi.runtime.test
def test_listed_subscribers_may_only_subscribe_their_own_queues_or_functions_to_the_topic(shared):
    _, stack = shared

    def check(args):
        policy, topic_arn = args
        grants = {s["Sid"]: s for s in _grants(policy)}
        assert len(grants) == 3
        for account in SUBSCRIBERS["accounts"]:
            grant = grants[f"Subscriber{account}MaySubscribeOwnQueuesOrFunctions"]
            assert grant["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"}
            # Each account to its own endpoints: not a queue or function of any other account.
            assert grant["Condition"] == {
                "StringEquals": {"sns:Protocol": ["lambda", "sqs"]},
                "StringLike": {
                    "sns:Endpoint": [f"arn:aws:sqs:*:{account}:*", f"arn:aws:lambda:*:{account}:function:*"]
                },
            }
        org = grants["SubscribersOrganizationMaySubscribeOwnQueuesOrFunctions"]
        assert org["Principal"] == {"AWS": "*"}
        assert org["Condition"] == {
            "StringEquals": {"aws:PrincipalOrgID": "o-abcdef1234", "sns:Protocol": ["lambda", "sqs"]},
            "StringLike": {
                "sns:Endpoint": [
                    "arn:aws:sqs:*:${aws:PrincipalAccount}:*",
                    "arn:aws:lambda:*:${aws:PrincipalAccount}:function:*",
                ]
            },
        }
        for grant in grants.values():
            assert grant["Action"] == ["sns:Subscribe"] and grant["Resource"] == [topic_arn]

    return pulumi.Output.all(stack.topic.topic_policy.policy, stack.topic.topic.arn).apply(check)


@pulumi.runtime.test
def test_listed_subscribers_may_only_manage_their_own_rules_on_the_bus(shared):
    _, stack = shared
    assert stack.bus.bus_policy is not None

    def check(args):
        policy, bus_name, bus_policy_bus = args
        assert bus_policy_bus == bus_name
        grants = {s["Sid"]: s for s in statements(policy)}
        assert {g["Effect"] for g in grants.values()} == {"Allow"}
        rules = f"arn:aws:events:eu-west-1:{mocks.ACCOUNT}:rule/{bus_name}/"
        kinds = [("Subscriber" + a, f"arn:aws:iam::{a}:root", a) for a in SUBSCRIBERS["accounts"]]
        kinds.append(("SubscribersOrganization", "*", "${aws:PrincipalAccount}"))
        assert len(grants) == 3 * len(kinds)
        for sid, principal, account in kinds:
            create, manage, target = (grants[sid + s] for s in ("CreateRules", "ManageOwnRules", "TargetOwnBuses"))
            actions = create["Action"] + manage["Action"] + target["Action"]
            assert sorted(actions) == sorted(RULE_ACTIONS)
            assert not any(a in actions for a in ("events:PutEvents", "events:PutPermission"))
            for grant in (create, manage, target):
                assert grant["Principal"] == {"AWS": principal}
                # A listed account's rules carry its id as their name's prefix: never the stack's own.
                expected = rules + ("*" if principal == "*" else f"{account}-*")
                assert grant["Resource"] == [expected]
                if principal == "*":
                    assert grant["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == "o-abcdef1234"
            # Only creating may find no creator yet; tagging, deleting, retargeting need the caller's own rule.
            assert create["Action"] == ["events:PutRule"]
            assert create["Condition"]["StringEqualsIfExists"] == {"events:creatorAccount": "${aws:PrincipalAccount}"}
            for grant in (manage, target):
                assert "StringEqualsIfExists" not in grant["Condition"]
                assert grant["Condition"]["StringEquals"]["events:creatorAccount"] == "${aws:PrincipalAccount}"
            assert {"events:TagResource", "events:UntagResource"} <= set(manage["Action"])
            assert target["Action"] == ["events:PutTargets"]
            assert target["Condition"]["ArnLike"] == {"events:TargetArn": f"arn:aws:events:*:{account}:event-bus/*"}

    return pulumi.Output.all(
        stack.bus.bus_policy.policy, stack.bus.bus.name, stack.bus.bus_policy.event_bus_name
    ).apply(check)


@pulumi.runtime.test
def test_without_subscribers_no_other_account_is_granted_anything(builds):
    checks = []
    for recorded, stack in builds.values():
        assert stack.settings.topology.subscribers.accounts == ()
        assert stack.bus.bus_policy is None
        assert not [r for r in recorded.resources if r.type == "aws:cloudwatch/eventBusPolicy:EventBusPolicy"]
        checks.append(stack.topic.topic_policy.policy)

    def check(docs):
        for policy in docs:
            assert _grants(policy) == []

    return pulumi.Output.all(*checks).apply(check)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"accounts": [111122223333]}, r"quote the account id 111122223333"),
        ({"accounts": ["11112222333"]}, r"'11112222333' is not a 12-digit AWS account id"),
        ({"accounts": "111122223333"}, r"fanout:subscribers.accounts must be a list"),
        ({"accounts": ["111122223333", "111122223333"]}, r"lists 111122223333 more than once"),
        ({"organizationId": "org-1"}, r"fanout:subscribers.organizationId must look like o-"),
        ({"account": ["111122223333"]}, r"fanout:subscribers.account"),
        (["111122223333"], r"fanout:subscribers must be a mapping"),
    ],
)
def test_a_bad_subscribers_key_is_refused_naming_it(value, message):
    config, _ = mocks.read_stack_file("dev")
    with pytest.raises(TopologyError, match=message):
        from_raw("dev", copy.deepcopy(config) | {"subscribers": value})


def test_empty_subscribers_mean_no_other_account():
    config, _ = mocks.read_stack_file("dev")
    for value in ({}, {"accounts": []}, None):
        settings = from_raw("dev", copy.deepcopy(config) | {"subscribers": value})
        assert not settings.topology.subscribers
