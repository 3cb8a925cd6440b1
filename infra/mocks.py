"""Pulumi mocks standing in for AWS, for the tests and the offline plan.

Every resource "creates" instantly with its inputs as outputs, plus the computed attributes the
program reads (ARNs, URLs, ids), shaped like AWS's. Each registration is recorded in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks

ACCOUNT = "123456789012"


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]


@dataclass
class AwsMocks(Mocks):
    region: str = "eu-west-1"
    # What Service Quotas answers for Lambda's concurrent executions (the offline plan: accountConcurrency).
    lambda_concurrency: int = 1000
    resources: list[Registered] = field(default_factory=list)
    # Resource options by logical name (mocks never see them): what `destroy` keeps, what is protected.
    options: dict[str, pulumi.ResourceOptions] = field(default_factory=dict)

    def record_options(self, args: pulumi.ResourceTransformationArgs) -> None:
        """A stack transformation that records each resource's options and changes nothing."""
        self.options[args.name] = args.opts
        return None

    def retained(self) -> set[str]:
        """Logical names of the resources `pulumi destroy` leaves in place."""
        return {name for name, opts in self.options.items() if opts.retain_on_delete}

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs)))
        physical = args.inputs.get("name") or args.inputs.get("functionName") or f"{args.name}-0000000"
        if args.typ == "aws:sqs/queue:Queue" and args.inputs.get("fifoQueue") and not physical.endswith(".fifo"):
            physical += ".fifo"  # as Pulumi's auto-name does for a FIFO queue
        state = dict(args.inputs)
        state.update(self._computed(args.typ, str(physical), args.inputs))
        if args.typ == "aws:secretsmanager/secret:Secret":
            return state["arn"], state  # a secret's id is its ARN
        return f"{physical}-id", state

    def _computed(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        region, acct = self.region, ACCOUNT
        service = typ.split(":")[1].split("/")[0] if ":" in typ else "mock"
        out: dict[str, Any] = {"arn": f"arn:aws:{service}:{region}:{acct}:{name}"}
        if typ == "aws:sqs/queue:Queue":
            out["arn"] = f"arn:aws:sqs:{region}:{acct}:{name}"
            out["url"] = f"https://sqs.{region}.amazonaws.com/{acct}/{name}"
        elif typ == "aws:lambda/function:Function":
            out["arn"] = f"arn:aws:lambda:{region}:{acct}:function:{name}"
            out["invokeArn"] = f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{out['arn']}/invocations"
        elif typ == "aws:lambda/layerVersion:LayerVersion":
            out["arn"] = f"arn:aws:lambda:{region}:{acct}:layer:{inputs.get('layerName')}:1"
        elif typ == "aws:apigateway/restApi:RestApi":
            out["executionArn"] = f"arn:aws:execute-api:{region}:{acct}:abc123"
            out["rootResourceId"] = "root0000"
            return out | {"id": "abc123"}
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            out["arn"] = f"arn:aws:logs:{region}:{acct}:log-group:{name}"
        elif typ == "aws:dynamodb/table:Table":
            out["arn"] = f"arn:aws:dynamodb:{region}:{acct}:table/{name}"
        elif typ == "aws:cloudwatch/eventBus:EventBus":
            out["arn"] = f"arn:aws:events:{region}:{acct}:event-bus/{name}"
        elif typ == "aws:cloudwatch/eventRule:EventRule":
            out["arn"] = f"arn:aws:events:{region}:{acct}:rule/{name}"
        elif typ == "aws:iam/role:Role":
            out["arn"] = f"arn:aws:iam::{acct}:role/{name}"
            out["name"] = name
        elif typ == "aws:cloudfront/distribution:Distribution":
            out["domainName"] = "d111111abcdef8.cloudfront.net"
            out["arn"] = f"arn:aws:cloudfront::{acct}:distribution/E1MOCK"
        elif typ == "aws:s3/bucket:Bucket":
            bucket = f"{inputs.get('bucketPrefix', 'bucket-')}mock"
            out |= {
                "bucket": bucket,
                "arn": f"arn:aws:s3:::{bucket}",
                "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
            }
        elif typ == "aws:cognito/userPool:UserPool":
            return out | {"id": f"{region}_MockPool"}
        elif typ == "aws:kms/key:Key":
            out["arn"] = f"arn:aws:kms:{region}:{acct}:key/{name}"
        elif typ == "aws:secretsmanager/secret:Secret":
            out["arn"] = f"arn:aws:secretsmanager:{region}:{acct}:secret:{inputs.get('namePrefix', name)}abc"
        elif typ == "aws:secretsmanager/secretVersion:SecretVersion":
            out["secretArn"] = inputs.get("secretId")  # the version's secret_arn is its secret's ARN
        elif typ.startswith("random:"):
            out["result"] = "mock-random-value-0000"
        elif typ == "aws:apigateway/stage:Stage":
            out["invokeUrl"] = f"https://abc123.execute-api.{region}.amazonaws.com/{inputs.get('stageName')}"
        return out

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/mock",
                "userId": "MOCK",
                "id": ACCOUNT,
            }, []
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
                "reverseDnsPrefix": "com.amazonaws",
            }, []
        if args.token == "aws:index/getRegion:getRegion":
            return {
                "region": self.region,
                "name": self.region,
                "id": self.region,
                "endpoint": "",
                "description": "",
            }, []
        if args.token == "aws:servicequotas/getServiceQuota:getServiceQuota":
            code = args.args.get("quotaCode")
            if (args.args.get("serviceCode"), code) != ("lambda", "L-B99A9384"):
                raise ValueError(f"mocks: no quota {args.args.get('serviceCode')}/{code}")
            return {
                "serviceCode": "lambda",
                "quotaCode": code,
                "quotaName": "Concurrent executions",
                "value": float(self.lambda_concurrency),
                "adjustable": True,
                "defaultValue": 1000.0,
                "id": f"lambda/{code}",
            }, []
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{z}" for z in "abc"]
            return {"names": names, "zoneIds": names, "id": self.region}, []
        return {}, []


def config_for(stack_config: dict[str, Any], region: str) -> dict[str, str]:
    """Pulumi's config map (namespaced keys, JSON for anything but strings) from a stack's `fanout:` keys."""
    config = {"aws:region": region}
    for key, value in stack_config.items():
        config[f"fanout:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return config


def install(
    stack: str, stack_config: dict[str, Any], region: str = "eu-west-1", *, lambda_concurrency: int | None = None
) -> AwsMocks:
    """Route Pulumi to fresh mocks for `stack`, with its config; returns the mocks to read back.

    The account's Lambda concurrency quota is `lambda_concurrency`, else the config's
    accountConcurrency (what the offline plan assumes), else AWS's default of 1000.
    """
    quota = lambda_concurrency or stack_config.get("accountConcurrency")
    mocks = AwsMocks(region=region, lambda_concurrency=quota if isinstance(quota, int) else 1000)
    pulumi.runtime.set_mocks(mocks, project="fanout", stack=stack, preview=False)
    pulumi.runtime.set_all_config(config_for(stack_config, region))
    return mocks


def read_stack_file(stack: str) -> tuple[dict[str, Any], str]:
    """The `fanout:` keys (namespace stripped) and `aws:region` of Pulumi.<stack>.yaml."""
    import yaml

    from infra.paths import ROOT

    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no stack file {path.name} in {ROOT}")
    config = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("config") or {}
    fanout = {k.removeprefix("fanout:"): v for k, v in config.items() if k.startswith("fanout:")}
    return fanout, str(config.get("aws:region", "eu-west-1"))
