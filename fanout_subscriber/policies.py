"""IAM and resource-policy documents, built as plain dicts so tests (and plans) can read every statement.

The one implementation: fanout's own Pulumi program (`infra.policies`) re-exports these.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi

Statement = dict[str, Any]


def allow(
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    *,
    sid: str | None = None,
    principal: dict[str, Any] | None = None,
    condition: dict[str, Any] | None = None,
) -> Statement:
    statement: Statement = {"Effect": "Allow", "Action": sorted(actions), "Resource": list(resources)}
    if sid:
        statement["Sid"] = sid
    if principal is not None:
        statement["Principal"] = principal
    if condition:
        statement["Condition"] = condition
    return statement


def deny_insecure_transport(actions: str | Sequence[str], resources: Sequence[pulumi.Input[str]]) -> Statement:
    """Refuse any request not made over TLS, whoever makes it."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": actions,
        "Resource": list(resources),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def document(statements: Sequence[pulumi.Input[Statement]]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role(service: str, source_account: pulumi.Input[str] | None = None) -> pulumi.Output[str]:
    statement: Statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if source_account is not None:
        # Only this account's resources of that service may use the role (no confused deputy).
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return document([statement])


def parse(policy: str) -> list[Statement]:
    """The statements of a JSON policy, for tests and the plan."""
    doc = json.loads(policy)
    statements = doc["Statement"]
    return statements if isinstance(statements, list) else [statements]
