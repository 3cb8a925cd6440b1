"""A Lambda function with everything it owns: its own role, its inline policy, its log group.

One role per function, so a statement granted to one never leaks to another. The function
waits for its policy: Lambda checks VPC permissions at creation, and an event source mapping
checks queue permissions, so a function created before its policy fails the first `pulumi up`.
fanout's own functions are built by this component too (`infra.components.function`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from fanout_subscriber import policies

RUNTIME = "python3.13"
ARCHITECTURE = "arm64"


@dataclass(frozen=True)
class FunctionArgs:
    """What a function runs and may do. `handler` is Lambda's form: "module.function"."""

    code: pulumi.Archive  # e.g. pulumi.FileArchive("handler/") or an AssetArchive
    handler: str
    statements: Sequence[pulumi.Input[policies.Statement]] = ()  # beyond its logs, tracing (and its queue)
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    timeout_seconds: int = 30
    memory_mb: int = 256
    runtime: str = RUNTIME
    architecture: str = ARCHITECTURE
    layers: Sequence[pulumi.Input[str]] = ()
    source_code_hash: pulumi.Input[str] | None = None
    log_retention_days: int = 14
    function_name: str | None = None  # None: Pulumi picks a unique name
    description: str | None = None
    subnet_ids: pulumi.Input[Sequence[str]] | None = None  # set both to run inside a VPC
    security_group_ids: pulumi.Input[Sequence[str]] | None = None
    reserved_concurrency: int | None = None  # None: the function shares the account's unreserved pool
    role_path: str | None = None  # the role's IAM path ("/team/"), e.g. to bound who may manage it; None: "/"


class Function(pulumi.ComponentResource):
    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    log_group: aws.cloudwatch.LogGroup
    function: aws.lambda_.Function
    statements: list[pulumi.Input[policies.Statement]]

    def __init__(self, name: str, args: FunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fanout:aws:Function", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The log group is created first, under the name Lambda would use, so its retention is ours.
        if args.function_name is not None:
            self.log_group = aws.cloudwatch.LogGroup(
                f"{name}-logs",
                name=f"/aws/lambda/{args.function_name}",
                retention_in_days=args.log_retention_days,
                opts=child,
            )
        else:
            self.log_group = aws.cloudwatch.LogGroup(
                f"{name}-logs",
                name_prefix=f"/aws/lambda/{name}-",
                retention_in_days=args.log_retention_days,
                opts=child,
            )
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=policies.assume_role("lambda.amazonaws.com"),
            path=args.role_path,
            description=args.description or f"{name} function",
            opts=child,
        )
        in_vpc = args.subnet_ids is not None
        self.statements = [
            policies.allow(
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                [pulumi.Output.concat(self.log_group.arn, ":*")],
                sid="WriteOwnLogs",
            ),
            # X-Ray has no resource-level permissions: AWS accepts only "*" for these two actions.
            policies.allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"], sid="Tracing"),
            *args.statements,
        ]
        if in_vpc:
            # Lambda validates these against "*" when it creates the function's network interfaces,
            # and the Describe actions have no resource-level permissions: the actions of AWS's managed
            # AWSLambdaVPCAccessExecutionRole, DescribeSubnets included (Lambda checks the subnets).
            self.statements.append(
                policies.allow(
                    [
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    ["*"],
                    sid="VpcNetworkInterfaces",
                )
            )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy", role=self.role.id, policy=policies.document(self.statements), opts=child
        )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=args.function_name,
            runtime=args.runtime,
            architectures=[args.architecture],
            handler=args.handler,
            code=args.code,
            source_code_hash=args.source_code_hash,
            layers=list(args.layers),
            role=self.role.arn,
            timeout=args.timeout_seconds,
            memory_size=args.memory_mb,
            reserved_concurrent_executions=args.reserved_concurrency,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(args.environment)),
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=self.log_group.name),
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=args.subnet_ids, security_group_ids=args.security_group_ids
            )
            if in_vpc
            else None,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy, self.log_group]),
        )
        self.register_outputs({"arn": self.function.arn, "role": self.role.arn})
