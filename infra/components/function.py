"""A Lambda function with everything it owns: its own role, its inline policy, its log group.

One role per function, so a statement granted to one never leaks to another. The function
waits for its policy: Lambda checks VPC permissions at creation, and an event source mapping
checks queue permissions, so a function created before its policy fails the first `pulumi up`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra import package, policies
from infra.context import AwsContext
from infra.settings import Settings


@dataclass(frozen=True)
class SharedCode:
    """What every function shares: the handler archive, the dependency layer, settings, network."""

    settings: Settings
    ctx: AwsContext
    archive: package.Artifact
    layer_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]] | None = None
    security_group_ids: pulumi.Input[Sequence[str]] | None = None


@dataclass(frozen=True)
class FunctionSpec:
    short_name: str  # "api", "persister", ...: the service name in logs and metrics
    handler: str  # "handlers.api.handler"
    statements: Sequence[pulumi.Input[policies.Statement]]
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    timeout_seconds: int = 10
    memory_mb: int = 256
    in_vpc: bool = True  # False for the authorizer: it fetches a JWKS from the internet


def handler_path(entry: str) -> str:
    """'handlers.persister:handler' (topology form) -> 'handlers.persister.handler' (Lambda form)."""
    return entry.replace(":", ".")


class LambdaFunction(pulumi.ComponentResource):
    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    log_group: aws.cloudwatch.LogGroup
    function: aws.lambda_.Function
    statements: list[pulumi.Input[policies.Statement]]

    def __init__(
        self, name: str, spec: FunctionSpec, shared: SharedCode, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fanout:aws:Function", name, None, opts)
        settings = shared.settings
        function_name = f"{settings.prefix}-{spec.short_name}"
        child = pulumi.ResourceOptions(parent=self)

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=settings.log_retention_days,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=policies.assume_role("lambda.amazonaws.com"),
            description=f"fanout {spec.short_name} function ({settings.stack})",
            opts=child,
        )
        in_vpc = spec.in_vpc and shared.subnet_ids is not None
        self.statements = [
            policies.allow(
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                [pulumi.Output.concat(self.log_group.arn, ":*")],
                sid="WriteOwnLogs",
            ),
            # X-Ray has no resource-level permissions: AWS accepts only "*" for these two actions.
            policies.allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"], sid="Tracing"),
            *spec.statements,
        ]
        if in_vpc:
            # Lambda validates these against "*" when it creates the function's network interfaces,
            # and the Describe action has no resource-level permissions (AWS's own managed policy does the same).
            self.statements.append(
                policies.allow(
                    [
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    ["*"],
                    sid="VpcNetworkInterfaces",
                )
            )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=policies.document(self.statements),
            opts=child,
        )
        environment = {
            "POWERTOOLS_SERVICE_NAME": spec.short_name,
            "POWERTOOLS_METRICS_NAMESPACE": "fanout",
            "POWERTOOLS_LOG_LEVEL": settings.log_level,
            # Powertools Tracer loads the X-Ray SDK only when asked (fanout:tracingSdk) for subsegments.
            "POWERTOOLS_TRACE_DISABLED": "false" if settings.tracing_sdk else "true",
            **spec.environment,
        }
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=function_name,
            runtime=package.RUNTIME,
            architectures=[package.ARCHITECTURE],
            handler=spec.handler,
            code=pulumi.FileArchive(str(shared.archive.path)),
            source_code_hash=shared.archive.source_code_hash,
            layers=[shared.layer_arn],
            role=self.role.arn,
            timeout=spec.timeout_seconds,
            memory_size=spec.memory_mb,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON",
                log_group=self.log_group.name,
            ),
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=shared.subnet_ids,
                security_group_ids=shared.security_group_ids,
            )
            if in_vpc
            else None,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy, self.log_group]),
        )
        self.register_outputs({"arn": self.function.arn, "role": self.role.arn})
