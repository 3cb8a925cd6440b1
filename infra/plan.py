"""Offline plan: run the Pulumi program for a stack under mocks and print what it would create.

No account and no Pulumi CLI needed: `python -m infra.plan --stack prd`. The list is what a
`pulumi preview` of an empty stack would create, with each resource's key settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from typing import Any

import pulumi

from fanout.topology import TopologyError
from infra import context, mocks, package, settings, stack
from infra.components.website import web_files

# Per resource type, the inputs worth reading in a plan (the rest are defaults or plumbing).
KEY_SETTINGS: dict[str, tuple[str, ...]] = {
    "aws:sqs/queue:Queue": (
        "name",
        "fifoQueue",
        "deduplicationScope",
        "fifoThroughputLimit",
        "visibilityTimeoutSeconds",
        "messageRetentionSeconds",
        "redrivePolicy",
    ),
    "aws:sns/topic:Topic": ("name", "fifoTopic", "contentBasedDeduplication", "fifoThroughputScope", "tracingConfig"),
    "aws:sns/topicSubscription:TopicSubscription": (
        "protocol",
        "rawMessageDelivery",
        "filterPolicy",
        "filterPolicyScope",
    ),
    "aws:lambda/function:Function": (
        "name",
        "handler",
        "runtime",
        "architectures",
        "memorySize",
        "timeout",
        "reservedConcurrentExecutions",
    ),
    "aws:xray/resourcePolicy:ResourcePolicy": ("policyName",),
    "aws:secretsmanager/secret:Secret": ("namePrefix", "recoveryWindowInDays"),
    "aws:lambda/eventSourceMapping:EventSourceMapping": (
        "batchSize",
        "maximumBatchingWindowInSeconds",
        "functionResponseTypes",
        "scalingConfig",
    ),
    "aws:lambda/layerVersion:LayerVersion": ("layerName", "compatibleRuntimes", "compatibleArchitectures"),
    "aws:dynamodb/table:Table": (
        "name",
        "hashKey",
        "rangeKey",
        "billingMode",
        "pointInTimeRecovery",
        "deletionProtectionEnabled",
        "ttl",
    ),
    "aws:kms/key:Key": ("description", "enableKeyRotation"),
    "aws:kms/alias:Alias": ("name",),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays"),
    "aws:cloudwatch/eventBus:EventBus": ("name",),
    "aws:cloudwatch/eventArchive:EventArchive": ("name", "retentionDays"),
    "aws:cloudwatch/eventRule:EventRule": ("name", "eventPattern"),
    "aws:cloudwatch/eventTarget:EventTarget": ("retryPolicy",),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", "metricName", "threshold", "comparisonOperator"),
    "aws:cloudwatch/dashboard:Dashboard": ("dashboardName",),
    "aws:scheduler/schedule:Schedule": ("name", "scheduleExpression", "state"),
    "aws:apigateway/restApi:RestApi": ("name", "endpointConfiguration"),
    "aws:apigateway/resource:Resource": ("pathPart",),
    "aws:apigateway/method:Method": ("httpMethod", "authorization"),
    "aws:apigateway/authorizer:Authorizer": ("name", "type", "identitySource", "authorizerResultTtlInSeconds"),
    "aws:apigateway/stage:Stage": ("stageName", "xrayTracingEnabled"),
    "aws:apigateway/methodSettings:MethodSettings": ("methodPath", "settings"),
    "aws:apigateway/response:Response": ("responseType", "statusCode"),
    "aws:cognito/userPool:UserPool": ("name", "mfaConfiguration", "userPoolTier", "deletionProtection"),
    "aws:cognito/userGroup:UserGroup": ("name",),
    "aws:cognito/userPoolClient:UserPoolClient": ("name", "allowedOauthFlows", "allowedOauthScopes"),
    "aws:cloudfront/distribution:Distribution": (
        "priceClass",
        "httpVersion",
        "defaultRootObject",
        "aliases",
        "viewerCertificate",
    ),
    # region: set where a resource lives outside the stack's region (CloudFront's WAF and logs: us-east-1).
    "aws:wafv2/webAcl:WebAcl": ("name", "scope", "region"),
    "aws:cloudwatch/logDeliverySource:LogDeliverySource": ("name", "logType", "region"),
    "aws:cloudwatch/logDelivery:LogDelivery": ("region",),
    "aws:s3/bucketObjectv2:BucketObjectv2": ("key", "contentType"),
    "aws:iam/role:Role": ("description",),
}


def _short(value: Any, limit: int = 90) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _actions(policy: str) -> str:
    try:
        statements = json.loads(policy)["Statement"]
    except (ValueError, KeyError, TypeError):
        return "?"
    actions = sorted({a for s in statements if s.get("Effect") == "Allow" for a in _as_list(s.get("Action"))})
    return ", ".join(actions)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value] if value else []


def short_type(token: str) -> str:
    """'aws:iam/rolePolicy:RolePolicy' -> 'aws:iam:RolePolicy'."""
    pkg, module, name = token.split(":")
    return f"{pkg}:{module.split('/')[0]}:{name}" if pkg == "aws" else f"{pkg}:{name}"


def service(token: str) -> str:
    pkg, module, _ = token.split(":")
    return module.split("/")[0] if pkg == "aws" else pkg


def describe(res: mocks.Registered) -> str:
    inputs = res.inputs
    if res.type == "aws:iam/rolePolicy:RolePolicy":
        return f"allows {_actions(inputs.get('policy', '{}'))}"
    keys = KEY_SETTINGS.get(res.type, ())
    return ", ".join(f"{k}={_short(inputs[k])}" for k in keys if inputs.get(k) not in (None, "", [], {}))


# CI gives prd its alarm address from the environment (pulumi/actions config-map, from the GitHub
# environment's FANOUT_ALARM_EMAIL), not from the committed stack file: the plan takes it the same way.
ALARM_EMAIL_ENV = "FANOUT_ALARM_EMAIL"


def run(stack_name: str, alarm_email: str | None = None) -> tuple[mocks.AwsMocks, stack.Stack]:
    """Build the stack's program under mocks; returns what was registered and the built stack.

    `alarm_email` stands in for fanout:alarmEmail where the stack file sets none (as CI does).
    """
    stack_config, region = mocks.read_stack_file(stack_name)
    if alarm_email and "alarmEmail" not in stack_config:
        stack_config = {**stack_config, "alarmEmail": alarm_email}
    return run_config(stack_name, stack_config, region)


def run_config(
    stack_name: str, stack_config: dict[str, Any], region: str, *, lambda_concurrency: int | None = None
) -> tuple[mocks.AwsMocks, stack.Stack]:
    recorded = mocks.install(stack_name, stack_config, region, lambda_concurrency=lambda_concurrency)
    built: dict[str, stack.Stack] = {}

    @pulumi.runtime.test
    def program() -> None:
        pulumi.runtime.register_stack_transformation(recorded.record_options)
        built["stack"] = stack.build(settings.load(plan_only=True), context.current(), package.existing())

    program()
    return recorded, built["stack"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default dev)")
    parser.add_argument(
        "--strict", action="store_true", help="fail (exit 1) on what `pulumi up` would refuse, instead of warning"
    )
    args = parser.parse_args(argv)
    try:
        recorded, built = run(args.stack, os.environ.get(ALARM_EMAIL_ENV) or None)
    except (TopologyError, FileNotFoundError) as exc:
        print(f"plan: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    s = built.settings
    out = [
        f"fanout stack {args.stack!r}: offline plan (Pulumi mocks; nothing is contacted)",
        f"prefix {s.prefix}, production={s.production}, identity={s.identity.mode}, vpc={s.network.enabled}, "
        f"alarms={s.alarms}, log retention {s.log_retention_days} d, consumers: "
        + ", ".join(c.name for c in s.topology.consumers),
        f"runtime {package.RUNTIME} {package.ARCHITECTURE}; web files: {len(web_files())}",
        *[f"warning: `pulumi up` refuses this stack until this is fixed: {w}" for w in s.deploy_warnings],
        "",
    ]
    resources = sorted(
        (r for r in recorded.resources if not r.type.startswith("fanout:")), key=lambda r: (r.type, r.name)
    )
    width = max(len(short_type(r.type)) for r in resources)
    retained = recorded.retained()
    for res in resources:
        kept = "  [kept on destroy]" if res.name in retained else ""
        out.append(f"+ {short_type(res.type):<{width}}  {res.name}  {describe(res)}".rstrip() + kept)
    counts = Counter(service(r.type) for r in resources)
    out += [
        "",
        f"{len(resources)} resources to create ("
        + ", ".join(f"{svc} {n}" for svc, n in sorted(counts.items()))
        + f"), in {sum(1 for r in recorded.resources if r.type.startswith('fanout:'))} components",
    ]
    print("\n".join(out))  # noqa: T201
    if args.strict and s.deploy_warnings:
        print(f"plan: {s.deploy_warnings[0]}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
