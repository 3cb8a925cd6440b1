"""The deploy role's permissions as code: a least-privilege IAM policy for one stack.

    python -m infra.deploy_role --stack prd --account 123456789012 > deploy-prd.json
    python -m infra.deploy_role --stack prd --account 123456789012 --preview > preview-prd.json

Attach the first to the role CI's `prd` (or `dev`) environment assumes, the second (`--preview`) to
the role of `prd-preview`: it can read the quota the program checks and nothing else, so the prd
preview needs no approval. The trust policy is in docs/deploy.md ("CI/CD").

Every statement names its resources after the stack: `<prefix>-*` (queues, topics, functions and
layers, tables, log groups, alarms, rules, schedules, secrets, buckets, web ACLs), roles under the
IAM path `/<prefix>/`, KMS keys by their `fanout-stack` tag. API Gateway, CloudFront and Cognito
name their resources by generated ids, so those are bounded by account and region only; X-Ray
resource policies and the VPC's EC2 actions have no resource-level permissions at all.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from fanout.topology import TopologyError
from infra import mocks
from infra.settings import LAMBDA_CONCURRENCY_QUOTA, STACK_TAG, Settings, from_raw

EDGE_REGION = "us-east-1"  # CloudFront's WAF, log delivery and the edge alarms (infra/components/firewall.py)
# Services the stack's roles are passed to: functions, the generator's schedule, API Gateway's logging.
PASSED_TO = ["apigateway.amazonaws.com", "lambda.amazonaws.com", "scheduler.amazonaws.com"]
API_GATEWAY_LOGS_POLICY = "arn:{p}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"


def _allow(sid: str, actions: list[str], resources: list[str], condition: dict | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _merge_conditions(*conditions: dict) -> dict:
    merged: dict = {}
    for condition in conditions:
        for operator, pairs in condition.items():
            merged.setdefault(operator, {}).update(pairs)
    return merged


def preview_policy(settings: Settings, account: str, region: str, partition: str = "aws") -> dict[str, Any]:
    """What `pulumi preview` asks of AWS itself: the Lambda quota (and the zones, with a VPC)."""
    statements = [
        _allow(
            "ReadLambdaConcurrencyQuota",
            ["servicequotas:GetServiceQuota"],
            [f"arn:{partition}:servicequotas:{region}:{account}:lambda/{LAMBDA_CONCURRENCY_QUOTA}"],
        )
    ]
    if settings.network.enabled:
        statements.append(_allow("ReadZones", ["ec2:DescribeAvailabilityZones"], ["*"]))
    return {"Version": "2012-10-17", "Statement": statements}


def deploy_policy(settings: Settings, account: str, region: str, partition: str = "aws") -> dict[str, Any]:
    """Everything `pulumi up` and `destroy` of this stack (and its smoke test) do, and no more."""
    p, a, r, prefix = partition, account, region, settings.prefix
    bus = settings.topology.event_bus_name
    regions = sorted({r, EDGE_REGION})

    def arn(service: str, resource: str, region_: str = r) -> str:
        return f"arn:{p}:{service}:{region_}:{a}:{resource}"

    tagged = {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": prefix}}
    statements = preview_policy(settings, account, region, partition)["Statement"]
    statements += [
        _allow(
            "Functions",
            [
                "lambda:AddPermission",
                "lambda:CreateFunction",
                "lambda:DeleteFunction",
                "lambda:DeleteFunctionConcurrency",
                "lambda:DeleteFunctionEventInvokeConfig",
                "lambda:GetFunction",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:GetFunctionConcurrency",
                "lambda:GetFunctionConfiguration",
                "lambda:GetFunctionEventInvokeConfig",
                "lambda:GetPolicy",
                "lambda:ListTags",
                "lambda:ListVersionsByFunction",
                "lambda:PutFunctionConcurrency",
                "lambda:PutFunctionEventInvokeConfig",
                "lambda:RemovePermission",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:UpdateFunctionEventInvokeConfig",
            ],
            [arn("lambda", f"function:{prefix}-*")],
        ),
        _allow(
            "Layers",
            ["lambda:DeleteLayerVersion", "lambda:GetLayerVersion", "lambda:PublishLayerVersion"],
            [arn("lambda", f"layer:{prefix}-*"), arn("lambda", f"layer:{prefix}-*:*")],
        ),
        # Mappings are named by generated ids: held by the function they feed.
        _allow(
            "EventSourceMappings",
            ["lambda:CreateEventSourceMapping", "lambda:DeleteEventSourceMapping", "lambda:UpdateEventSourceMapping"],
            ["*"],
            {"ArnLike": {"lambda:FunctionArn": arn("lambda", f"function:{prefix}-*")}},
        ),
        _allow("ReadEventSourceMappings", ["lambda:GetEventSourceMapping"], [arn("lambda", "event-source-mapping:*")]),
        _allow(
            "Roles",
            [
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:DeleteRolePolicy",
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:ListRolePolicies",
                "iam:ListRoleTags",
                "iam:PutRolePolicy",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:UpdateRole",
            ],
            [f"arn:{p}:iam::{a}:role{settings.role_path}*"],
        ),
        _allow(
            "AttachApiGatewayLoggingPolicyOnly",
            ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            [f"arn:{p}:iam::{a}:role{settings.role_path}*"],
            {"ArnEquals": {"iam:PolicyARN": API_GATEWAY_LOGS_POLICY.format(p=p)}},
        ),
        _allow(
            "PassRolesToTheirServices",
            ["iam:PassRole"],
            [f"arn:{p}:iam::{a}:role{settings.role_path}*"],
            {"StringEquals": {"iam:PassedToService": PASSED_TO}},
        ),
        _allow(
            "Queues",
            [
                "sqs:CreateQueue",
                "sqs:DeleteQueue",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ListDeadLetterSourceQueues",
                "sqs:ListQueueTags",
                "sqs:SetQueueAttributes",
                "sqs:TagQueue",
                "sqs:UntagQueue",
            ],
            [arn("sqs", f"{prefix}-*")],
        ),
        _allow(
            "Topics",
            [
                "sns:CreateTopic",
                "sns:DeleteTopic",
                "sns:GetSubscriptionAttributes",
                "sns:GetTopicAttributes",
                "sns:ListSubscriptionsByTopic",
                "sns:ListTagsForResource",
                "sns:SetSubscriptionAttributes",
                "sns:SetTopicAttributes",
                "sns:Subscribe",
                "sns:TagResource",
                "sns:Unsubscribe",
                "sns:UntagResource",
            ],
            [arn("sns", f"{prefix}-*", g) for g in regions],
        ),
        _allow(
            "CreateTaggedKeys",
            ["kms:CreateKey", "kms:TagResource"],
            ["*"],
            {
                "StringEquals": {f"aws:RequestTag/{STACK_TAG}": prefix},
                "ForAllValues:StringEquals": {"aws:TagKeys": [STACK_TAG]},
            },
        ),
        _allow(
            "ManageOwnKeys",
            [
                "kms:CreateAlias",
                "kms:CreateGrant",
                "kms:DeleteAlias",
                "kms:DescribeKey",
                "kms:EnableKeyRotation",
                "kms:GetKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:ListResourceTags",
                "kms:PutKeyPolicy",
                "kms:ScheduleKeyDeletion",
                "kms:UpdateAlias",
            ],
            [f"arn:{p}:kms:{g}:{a}:key/*" for g in regions],
            tagged,
        ),
        _allow(
            "KeyAliases",
            ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"],
            [arn("kms", f"alias/{prefix}-*")],
        ),
        _allow(
            "Tables",
            [
                "dynamodb:CreateTable",
                "dynamodb:DeleteTable",
                "dynamodb:DescribeContinuousBackups",
                "dynamodb:DescribeTable",
                "dynamodb:DescribeTimeToLive",
                "dynamodb:ListTagsOfResource",
                "dynamodb:TagResource",
                "dynamodb:UntagResource",
                "dynamodb:UpdateContinuousBackups",
                "dynamodb:UpdateTable",
                "dynamodb:UpdateTimeToLive",
            ],
            [arn("dynamodb", f"table/{prefix}-*")],
        ),
        _allow(
            "LogGroups",
            [
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:DeleteRetentionPolicy",
                "logs:ListTagsForResource",
                "logs:PutRetentionPolicy",
                "logs:TagResource",
                "logs:UntagResource",
            ],
            [
                arn("logs", f"log-group:/aws/lambda/{prefix}-*"),
                arn("logs", f"log-group:/aws/apigateway/{prefix}-*"),
            ],
        ),
        _allow("FindLogGroups", ["logs:DescribeLogGroups"], ["*"]),
        _allow(
            "CdnLogDelivery",
            [
                "logs:CreateDelivery",
                "logs:DeleteDelivery",
                "logs:DeleteDeliveryDestination",
                "logs:DeleteDeliverySource",
                "logs:GetDelivery",
                "logs:GetDeliveryDestination",
                "logs:GetDeliverySource",
                "logs:PutDeliveryDestination",
                "logs:PutDeliverySource",
            ],
            [
                arn("logs", f"delivery-source:{prefix}-*", EDGE_REGION),
                arn("logs", f"delivery-destination:{prefix}-*", EDGE_REGION),
                arn("logs", "delivery:*", EDGE_REGION),
            ],
        ),
        _allow(
            "Alarms",
            [
                "cloudwatch:DeleteAlarms",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:ListTagsForResource",
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
            ],
            [arn("cloudwatch", f"alarm:{prefix}-*", g) for g in regions],
        ),
        _allow(
            "Dashboard",
            ["cloudwatch:DeleteDashboards", "cloudwatch:GetDashboard", "cloudwatch:PutDashboard"],
            [f"arn:{p}:cloudwatch::{a}:dashboard/{prefix}"],
        ),
        _allow(
            "BusRulesArchive",
            [
                "events:CreateArchive",
                "events:CreateEventBus",
                "events:DeleteArchive",
                "events:DeleteEventBus",
                "events:DeleteRule",
                "events:DescribeArchive",
                "events:DescribeEventBus",
                "events:DescribeRule",
                "events:ListTagsForResource",
                "events:ListTargetsByRule",
                "events:PutPermission",
                "events:PutRule",
                "events:PutTargets",
                "events:RemovePermission",
                "events:RemoveTargets",
                "events:TagResource",
                "events:UntagResource",
                "events:UpdateArchive",
                "events:UpdateEventBus",
            ],
            [
                arn("events", f"event-bus/{bus}"),
                arn("events", f"rule/{bus}/{prefix}-*"),
                arn("events", f"archive/{prefix}-*"),
            ],
        ),
        _allow(
            "Schedules",
            [
                "scheduler:CreateSchedule",
                "scheduler:DeleteSchedule",
                "scheduler:GetSchedule",
                "scheduler:UpdateSchedule",
            ],
            [arn("scheduler", f"schedule/default/{prefix}-*")],
        ),
        _allow(
            "Secrets",
            [
                "secretsmanager:CreateSecret",
                "secretsmanager:DeleteSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetResourcePolicy",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:TagResource",
                "secretsmanager:UntagResource",
                "secretsmanager:UpdateSecret",
            ],
            [arn("secretsmanager", f"secret:{prefix}-*")],
        ),
        _allow(
            "Buckets",
            [
                "s3:CreateBucket",
                "s3:DeleteBucket",
                "s3:DeleteBucketPolicy",
                "s3:GetAccelerateConfiguration",
                "s3:GetBucket*",
                "s3:GetEncryptionConfiguration",
                "s3:GetLifecycleConfiguration",
                "s3:GetReplicationConfiguration",
                "s3:ListBucket",
                "s3:ListBucketVersions",
                "s3:PutBucket*",
                "s3:PutEncryptionConfiguration",
                "s3:PutLifecycleConfiguration",
            ],
            [f"arn:{p}:s3:::{prefix}-*"],
        ),
        _allow(
            "BucketObjects",
            ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:GetObject", "s3:PutObject"],
            [f"arn:{p}:s3:::{prefix}-*/*"],
        ),
        # API Gateway names REST APIs by generated ids: this account and region's APIs, the account
        # setting (its CloudWatch role), and the stage's web ACL.
        _allow(
            "RestApis",
            ["apigateway:DELETE", "apigateway:GET", "apigateway:PATCH", "apigateway:POST", "apigateway:PUT"],
            [
                f"arn:{p}:apigateway:{r}::/restapis",
                f"arn:{p}:apigateway:{r}::/restapis/*",
                f"arn:{p}:apigateway:{r}::/account",
                f"arn:{p}:apigateway:{r}::/tags/*",
            ],
        ),
        _allow("StageWebAcl", ["apigateway:SetWebACL"], [f"arn:{p}:apigateway:{r}::/restapis/*/stages/*"]),
        _allow(
            "WebAcls",
            [
                "wafv2:AssociateWebACL",
                "wafv2:CreateWebACL",
                "wafv2:DeleteWebACL",
                "wafv2:DisassociateWebACL",
                "wafv2:GetWebACL",
                "wafv2:GetWebACLForResource",
                "wafv2:ListTagsForResource",
                "wafv2:TagResource",
                "wafv2:UntagResource",
                "wafv2:UpdateWebACL",
            ],
            [
                arn("wafv2", f"regional/webacl/{prefix}-*/*"),
                arn("wafv2", f"global/webacl/{prefix}-*/*", EDGE_REGION),
                f"arn:{p}:apigateway:{r}::/restapis/*/stages/*",
            ],
        ),
        # CloudFront names distributions, origin access controls and policies by generated ids.
        _allow(
            "Cdn",
            [
                "cloudfront:AllowVendedLogDeliveryForResource",
                "cloudfront:CreateDistribution",
                "cloudfront:CreateOriginAccessControl",
                "cloudfront:CreateResponseHeadersPolicy",
                "cloudfront:DeleteDistribution",
                "cloudfront:DeleteOriginAccessControl",
                "cloudfront:DeleteResponseHeadersPolicy",
                "cloudfront:GetCachePolicy",
                "cloudfront:GetDistribution",
                "cloudfront:GetOriginAccessControl",
                "cloudfront:GetOriginRequestPolicy",
                "cloudfront:GetResponseHeadersPolicy",
                "cloudfront:ListTagsForResource",
                "cloudfront:TagResource",
                "cloudfront:UntagResource",
                "cloudfront:UpdateDistribution",
                "cloudfront:UpdateOriginAccessControl",
                "cloudfront:UpdateResponseHeadersPolicy",
            ],
            [f"arn:{p}:cloudfront::{a}:*"],
        ),
        # Cognito names pools by generated ids; the Admin* actions are the smoke test's throwaway user.
        _allow("CreateUserPool", ["cognito-idp:CreateUserPool"], ["*"]),
        _allow(
            "UserPools",
            [
                "cognito-idp:AdminAddUserToGroup",
                "cognito-idp:AdminCreateUser",
                "cognito-idp:AdminDeleteUser",
                "cognito-idp:AdminInitiateAuth",
                "cognito-idp:AdminSetUserPassword",
                "cognito-idp:CreateGroup",
                "cognito-idp:CreateUserPoolClient",
                "cognito-idp:CreateUserPoolDomain",
                "cognito-idp:DeleteGroup",
                "cognito-idp:DeleteUserPool",
                "cognito-idp:DeleteUserPoolClient",
                "cognito-idp:DeleteUserPoolDomain",
                "cognito-idp:DescribeUserPool",
                "cognito-idp:DescribeUserPoolClient",
                "cognito-idp:DescribeUserPoolDomain",
                "cognito-idp:GetGroup",
                "cognito-idp:GetUserPoolMfaConfig",
                "cognito-idp:ListTagsForResource",
                "cognito-idp:ListUsers",
                "cognito-idp:SetUserPoolMfaConfig",
                "cognito-idp:TagResource",
                "cognito-idp:UntagResource",
                "cognito-idp:UpdateGroup",
                "cognito-idp:UpdateUserPool",
                "cognito-idp:UpdateUserPoolClient",
            ],
            [arn("cognito-idp", "userpool/*")],
        ),
        # The smoke test removes what its throwaway user stored (tests/infra/smoke.py), nothing else.
        _allow(
            "SmokeTestItems",
            ["dynamodb:DeleteItem", "dynamodb:Query"],
            [arn("dynamodb", f"table/{settings.topology.table_name}")],
        ),
        _allow(
            "SmokeTestItemsKey",
            ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            [arn("kms", "key/*")],
            _merge_conditions(tagged, {"StringEquals": {"kms:ViaService": f"dynamodb.{r}.amazonaws.com"}}),
        ),
        # X-Ray resource policies have no resource-level permissions.
        _allow(
            "SnsTracingPolicy",
            ["xray:DeleteResourcePolicy", "xray:ListResourcePolicies", "xray:PutResourcePolicy"],
            ["*"],
        ),
    ]
    if settings.network.enabled:
        # EC2's create actions have no name to hold them by; the VPC option only.
        statements.append(
            _allow(
                "Network",
                [
                    "ec2:AssociateRouteTable",
                    "ec2:AuthorizeSecurityGroupEgress",
                    "ec2:CreateRouteTable",
                    "ec2:CreateSecurityGroup",
                    "ec2:CreateSubnet",
                    "ec2:CreateTags",
                    "ec2:CreateVpc",
                    "ec2:CreateVpcEndpoint",
                    "ec2:DeleteRouteTable",
                    "ec2:DeleteSecurityGroup",
                    "ec2:DeleteSubnet",
                    "ec2:DeleteVpc",
                    "ec2:DeleteVpcEndpoints",
                    "ec2:Describe*",
                    "ec2:DisassociateRouteTable",
                    "ec2:ModifyVpcAttribute",
                    "ec2:ModifyVpcEndpoint",
                    "ec2:RevokeSecurityGroupEgress",
                ],
                ["*"],
            )
        )
    return {"Version": "2012-10-17", "Statement": statements}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy_role", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default dev)")
    parser.add_argument("--account", required=True, help="the 12-digit AWS account id the stack deploys to")
    parser.add_argument("--partition", default="aws")
    parser.add_argument("--preview", action="store_true", help="the read-only policy of the prd-preview role")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"\d{12}", args.account):
        print(f"deploy_role: --account must be a 12-digit AWS account id, got {args.account!r}", file=sys.stderr)  # noqa: T201
        return 2
    try:
        raw, region = mocks.read_stack_file(args.stack)
        settings = from_raw(args.stack, raw)
    except (TopologyError, FileNotFoundError) as exc:
        print(f"deploy_role: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    make = preview_policy if args.preview else deploy_policy
    print(json.dumps(make(settings, args.account, region, args.partition), indent=2))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
