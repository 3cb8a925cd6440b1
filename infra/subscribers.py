"""What `fanout:subscribers` grants other accounts, and nothing more (contract §8, docs/deploy.md).

- Topic: `sns:Subscribe`, only with protocol `sqs` or `lambda` (the `sns:Protocol` condition) and
  only an endpoint in the caller's own account (`sns:Endpoint`), so a listed account can subscribe
  its own queue or function and cannot publish, read attributes, list subscriptions, subscribe an
  e-mail address or a URL, or subscribe a queue of an account that is not listed.
- Bus: create rules and manage the rules it created itself (`events:creatorAccount` must be the
  caller's account; only PutRule, which creates, may find no creator yet), named with its account
  id as a prefix (listed accounts), targeting only event buses of its own account
  (`events:TargetArn`), so one subscriber cannot touch, tag or retarget another's rule or the
  stack's own; no PutEvents.

Accounts are named by their root principal (the account, whose own IAM decides which of its roles
may act); an organization by `aws:PrincipalOrgID`. No subscribers: no statement at all.
"""

from __future__ import annotations

import pulumi

from fanout.topology import Subscribers
from infra import policies

SUBSCRIBE_PROTOCOLS = ["lambda", "sqs"]
# What creating, reading, updating and deleting one's own rule and its targets takes (Pulumi reads
# a rule's targets and tags on every refresh), per EventBridge's "restrict updates" example policy.
RULE_ACTIONS = [
    "events:DeleteRule",
    "events:DescribeRule",
    "events:DisableRule",
    "events:EnableRule",
    "events:ListTagsForResource",
    "events:ListTargetsByRule",
    "events:PutRule",
    "events:PutTargets",
    "events:RemoveTargets",
    "events:TagResource",
    "events:UntagResource",
]
CREATE_ACTIONS = ["events:PutRule"]
TARGET_ACTIONS = ["events:PutTargets"]
MANAGE_ACTIONS = sorted(set(RULE_ACTIONS) - set(CREATE_ACTIONS) - set(TARGET_ACTIONS))
# A policy variable (EventBridge user guide, "Using IAM policy conditions": conditions may use policy
# variables): the account making the call.
CALLER = "${aws:PrincipalAccount}"
# EventBridge compares a rule's creator with the caller. Only PutRule may find no creator (the rule
# does not exist yet): with IfExists on every action, a request where EventBridge sends no creator
# (tagging, for one) would pass for any rule, the stack's own included.
CREATED_BY_CALLER = {"StringEquals": {"events:creatorAccount": CALLER}}
NEW_OR_CREATED_BY_CALLER = {"StringEqualsIfExists": {"events:creatorAccount": CALLER}}


def _root(partition: pulumi.Input[str], account: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("arn:", partition, ":iam::", account, ":root")


def _endpoints(partition: pulumi.Input[str], account: str) -> list[pulumi.Output[str]]:
    """The queues and functions of `account`, in any region: what it may subscribe."""
    return [
        pulumi.Output.concat("arn:", partition, ":sqs:*:", account, ":*"),
        pulumi.Output.concat("arn:", partition, ":lambda:*:", account, ":function:*"),
    ]


def _merge(*conditions: dict) -> dict:
    merged: dict = {}
    for condition in conditions:
        for operator, pairs in condition.items():
            merged.setdefault(operator, {}).update(pairs)
    return merged


def topic_statements(
    subscribers: Subscribers, partition: pulumi.Input[str], topic_arn: pulumi.Input[str]
) -> list[policies.Statement]:
    protocols = {"StringEquals": {"sns:Protocol": SUBSCRIBE_PROTOCOLS}}
    found = [
        policies.allow(
            ["sns:Subscribe"],
            [topic_arn],
            sid=f"Subscriber{account}MaySubscribeOwnQueuesOrFunctions",
            principal={"AWS": _root(partition, account)},
            condition=_merge(protocols, {"StringLike": {"sns:Endpoint": _endpoints(partition, account)}}),
        )
        for account in subscribers.accounts
    ]
    if subscribers.organization_id:
        found.append(
            policies.allow(
                ["sns:Subscribe"],
                [topic_arn],
                sid="SubscribersOrganizationMaySubscribeOwnQueuesOrFunctions",
                principal={"AWS": "*"},
                condition=_merge(
                    {"StringEquals": {"aws:PrincipalOrgID": subscribers.organization_id}},
                    protocols,
                    {"StringLike": {"sns:Endpoint": _endpoints(partition, CALLER)}},
                ),
            )
        )
    return found


def _rule_statements(
    sid: str, principal: dict, rules: pulumi.Input[str], target_account: str, extra: dict, partition: pulumi.Input[str]
) -> list[policies.Statement]:
    buses = pulumi.Output.concat("arn:", partition, ":events:*:", target_account, ":event-bus/*")
    return [
        policies.allow(
            CREATE_ACTIONS,
            [rules],
            sid=f"{sid}CreateRules",
            principal=principal,
            condition=_merge(extra, NEW_OR_CREATED_BY_CALLER),
        ),
        policies.allow(
            MANAGE_ACTIONS,
            [rules],
            sid=f"{sid}ManageOwnRules",
            principal=principal,
            condition=_merge(extra, CREATED_BY_CALLER),
        ),
        # A rule another account creates on this bus can only target an event bus (EventBridge user
        # guide, "Sending and receiving events between AWS accounts"): one of the caller's own.
        policies.allow(
            TARGET_ACTIONS,
            [rules],
            sid=f"{sid}TargetOwnBuses",
            principal=principal,
            condition=_merge(extra, CREATED_BY_CALLER, {"ArnLike": {"events:TargetArn": buses}}),
        ),
    ]


def bus_statements(
    subscribers: Subscribers, partition: pulumi.Input[str], rules_arn: pulumi.Input[str]
) -> list[policies.Statement]:
    """`rules_arn`: the ARN prefix of the bus's rules, arn:...:rule/<bus>/ (a listed account's rules
    are `<its account id>-*` below it; an organization's, any name)."""
    found: list[policies.Statement] = []
    for account in subscribers.accounts:
        found += _rule_statements(
            f"Subscriber{account}",
            {"AWS": _root(partition, account)},
            pulumi.Output.concat(rules_arn, account, "-*"),
            account,
            {},
            partition,
        )
    if subscribers.organization_id:
        found += _rule_statements(
            "SubscribersOrganization",
            {"AWS": "*"},
            pulumi.Output.concat(rules_arn, "*"),
            CALLER,
            {"StringEquals": {"aws:PrincipalOrgID": subscribers.organization_id}},
            partition,
        )
    return found
