"""The deploy role as code (infra/deploy_role.py): least privilege, bounded to the stack, and enough
for every resource the stack's plan creates."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from infra import deploy_role, mocks
from infra.settings import STACK_TAG

ACCOUNT = mocks.ACCOUNT


def _policy(built: Any, recorded: mocks.AwsMocks, preview: bool = False) -> dict[str, Any]:
    make = deploy_role.preview_policy if preview else deploy_role.deploy_policy
    return make(built.settings, ACCOUNT, recorded.region)


def _resources(policy: dict[str, Any], action: str) -> list[str]:
    found = []
    for s in policy["Statement"]:
        if any(fnmatch.fnmatchcase(action, a) for a in s["Action"]):
            found += s["Resource"]
    return found


def _allowed(policy: dict[str, Any], action: str, arn: str) -> bool:
    return any(fnmatch.fnmatchcase(arn, r) for r in _resources(policy, action))


@pytest.mark.parametrize("name", ["dev", "prd", "variant"])
def test_every_resource_the_plan_creates_is_within_the_role(builds, name):
    recorded, built = builds[name]
    policy = _policy(built, recorded)
    region = recorded.region

    def where(inputs: dict[str, Any]) -> str:
        return inputs.get("region") or region

    checked = 0
    for res in recorded.resources:
        i, t = res.inputs, res.type
        if t == "aws:sqs/queue:Queue":
            assert _allowed(policy, "sqs:CreateQueue", f"arn:aws:sqs:{region}:{ACCOUNT}:{i['name']}"), i["name"]
        elif t == "aws:lambda/function:Function":
            assert _allowed(policy, "lambda:CreateFunction", f"arn:aws:lambda:{region}:{ACCOUNT}:function:{i['name']}")
        elif t == "aws:lambda/layerVersion:LayerVersion":
            layer = f"arn:aws:lambda:{region}:{ACCOUNT}:layer:{i['layerName']}"
            assert _allowed(policy, "lambda:PublishLayerVersion", layer)
        elif t == "aws:cloudwatch/logGroup:LogGroup":
            group = i.get("name") or i["namePrefix"]
            assert _allowed(policy, "logs:CreateLogGroup", f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{group}"), group
        elif t == "aws:dynamodb/table:Table":
            assert _allowed(policy, "dynamodb:CreateTable", f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{i['name']}")
        elif t == "aws:cloudwatch/metricAlarm:MetricAlarm":
            alarm = f"arn:aws:cloudwatch:{where(i)}:{ACCOUNT}:alarm:{i['name']}"
            assert _allowed(policy, "cloudwatch:PutMetricAlarm", alarm), alarm
        elif t == "aws:sns/topic:Topic":
            assert _allowed(policy, "sns:CreateTopic", f"arn:aws:sns:{where(i)}:{ACCOUNT}:{i['name']}"), i["name"]
        elif t == "aws:cloudwatch/eventRule:EventRule":
            bus = built.settings.topology.event_bus_name
            assert _allowed(policy, "events:PutRule", f"arn:aws:events:{region}:{ACCOUNT}:rule/{bus}/{i['name']}")
        elif t == "aws:scheduler/schedule:Schedule":
            schedule = f"arn:aws:scheduler:{region}:{ACCOUNT}:schedule/default/{i['name']}"
            assert _allowed(policy, "scheduler:CreateSchedule", schedule)
        elif t == "aws:secretsmanager/secret:Secret":
            secret = f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{i['namePrefix']}abc"
            assert _allowed(policy, "secretsmanager:CreateSecret", secret)
        elif t == "aws:s3/bucket:Bucket":
            assert _allowed(policy, "s3:CreateBucket", f"arn:aws:s3:::{i['bucketPrefix']}mock"), i["bucketPrefix"]
        elif t == "aws:iam/role:Role":
            # Roles live under the stack's path: the only roles the deploy role may create, change or pass.
            assert i["path"] == built.settings.role_path
        elif t == "aws:kms/key:Key":
            assert i["tags"] == {STACK_TAG: built.settings.prefix}
        elif t == "aws:wafv2/webAcl:WebAcl":
            scope = "global" if i["scope"] == "CLOUDFRONT" else "regional"
            acl = f"arn:aws:wafv2:{where(i)}:{ACCOUNT}:{scope}/webacl/{i['name']}/id"
            assert _allowed(policy, "wafv2:CreateWebACL", acl), acl
        else:
            continue
        checked += 1
    assert checked > 30


def test_the_role_is_bounded_to_its_stack(builds):
    recorded, built = builds["prd"]
    policy = _policy(built, recorded)
    json.dumps(policy)  # a plain JSON document
    for s in policy["Statement"]:
        assert s["Effect"] == "Allow"
        for action in s["Action"]:
            _service, _, name = action.partition(":")
            assert name not in ("*", "") and not name.startswith("*"), action
        if s["Resource"] != ["*"]:
            assert all(
                f":{ACCOUNT}:" in r
                or r.startswith("arn:aws:s3:::fanout-prd-")
                or "apigateway" in r
                or ":iam::aws:" in r
                for r in s["Resource"]
            ), s["Sid"]
    # Roles: only under the stack's path, and passed only to the services that run them.
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:PassRole", "iam:AttachRolePolicy"):
        assert _resources(policy, action) == [f"arn:aws:iam::{ACCOUNT}:role/fanout-prd/*"], action
    (passing,) = [s for s in policy["Statement"] if "iam:PassRole" in s["Action"]]
    assert passing["Condition"]["StringEquals"]["iam:PassedToService"] == deploy_role.PASSED_TO
    (attach,) = [s for s in policy["Statement"] if "iam:AttachRolePolicy" in s["Action"]]
    assert attach["Condition"]["ArnEquals"]["iam:PolicyARN"].endswith("AmazonAPIGatewayPushToCloudWatchLogs")
    # Another stack's resources are out of reach.
    assert not _allowed(policy, "sqs:DeleteQueue", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:fanout-dev-persister")
    assert not _allowed(policy, "dynamodb:DeleteTable", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/fanout-dev-data")
    # Keys: created only with the stack's tag, managed only when they carry it.
    keys = [s for s in policy["Statement"] if any(a.startswith("kms:") for a in s["Action"])]
    for s in keys:
        if s["Resource"] == ["*"]:
            assert s["Condition"]["StringEquals"] == {f"aws:RequestTag/{STACK_TAG}": "fanout-prd"}
        elif any(":key/" in r for r in s["Resource"]):
            assert s["Condition"]["StringEquals"][f"aws:ResourceTag/{STACK_TAG}"] == "fanout-prd", s["Sid"]
            if {"kms:Decrypt", "kms:Encrypt"} & set(s["Action"]):
                # Data keys only through DynamoDB (the smoke test's clean-up of its own items).
                assert s["Condition"]["StringEquals"]["kms:ViaService"] == "dynamodb.eu-west-1.amazonaws.com"


def test_the_preview_role_reads_the_quota_and_changes_nothing(builds):
    recorded, built = builds["prd"]
    policy = _policy(built, recorded, preview=True)
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert actions == {"servicequotas:GetServiceQuota"}
    assert _resources(policy, "servicequotas:GetServiceQuota") == [
        f"arn:aws:servicequotas:eu-west-1:{ACCOUNT}:lambda/L-B99A9384"
    ]


def test_the_command_prints_the_document_or_one_line_why_not(capsys):
    assert deploy_role.main(["--stack", "prd", "--account", ACCOUNT]) == 0
    document = json.loads(capsys.readouterr().out)
    assert any(s["Sid"] == "PassRolesToTheirServices" for s in document["Statement"])
    assert deploy_role.main(["--stack", "prd", "--account", "12345"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--account must be a 12-digit AWS account id" in err
