"""What `fanout:subscribers` grants other accounts, and nothing more (contract §8, docs/deploy.md).

- Topic: `sns:Subscribe`, only with protocol `sqs` or `lambda` (the `sns:Protocol` condition), so
  a listed account can subscribe its own queue or function and cannot publish, read attributes,
  list subscriptions or subscribe an e-mail address or a URL.
- Bus: manage rules (and their targets) on the bus, only rules it created itself
  (`events:creatorAccount` must be the caller's account), so one subscriber cannot touch another's
  rule or the stack's own; no PutEvents.

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
# A policy variable: EventBridge compares the rule's creator with the account calling.
OWN_RULES = {"StringEqualsIfExists": {"events:creatorAccount": "${aws:PrincipalAccount}"}}


def _principals(subscribers: Subscribers, partition: pulumi.Input[str]) -> list[tuple[str, dict, dict]]:
    """(sid suffix, principal, extra condition) per kind of subscriber."""
    found: list[tuple[str, dict, dict]] = []
    if subscribers.accounts:
        roots = [pulumi.Output.concat("arn:", partition, ":iam::", a, ":root") for a in subscribers.accounts]
        found.append(("Accounts", {"AWS": roots}, {}))
    if subscribers.organization_id:
        found.append(
            ("Organization", {"AWS": "*"}, {"StringEquals": {"aws:PrincipalOrgID": subscribers.organization_id}})
        )
    return found


def _merge(*conditions: dict) -> dict:
    merged: dict = {}
    for condition in conditions:
        for operator, pairs in condition.items():
            merged.setdefault(operator, {}).update(pairs)
    return merged


def topic_statements(
    subscribers: Subscribers, partition: pulumi.Input[str], topic_arn: pulumi.Input[str]
) -> list[policies.Statement]:
    return [
        policies.allow(
            ["sns:Subscribe"],
            [topic_arn],
            sid=f"Subscribers{suffix}MaySubscribeQueuesOrFunctions",
            principal=principal,
            condition=_merge(extra, {"StringEquals": {"sns:Protocol": SUBSCRIBE_PROTOCOLS}}),
        )
        for suffix, principal, extra in _principals(subscribers, partition)
    ]


def bus_statements(
    subscribers: Subscribers, partition: pulumi.Input[str], rules_arn: pulumi.Input[str]
) -> list[policies.Statement]:
    """`rules_arn`: the ARN pattern of the bus's rules, arn:...:rule/<bus>/*."""
    return [
        policies.allow(
            RULE_ACTIONS,
            [rules_arn],
            sid=f"Subscribers{suffix}ManageOwnRules",
            principal=principal,
            condition=_merge(extra, OWN_RULES),
        )
        for suffix, principal, extra in _principals(subscribers, partition)
    ]
