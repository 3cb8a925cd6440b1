"""fanout's Lambda functions: the consumer package's `Function` (its own role, inline policy and log
group; see fanout_subscriber/function.py) with the names, layer, logging and tracing of this stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from fanout.environment import common_environment
from fanout_subscriber.function import Function, FunctionArgs
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
    tracing_layer_arn: pulumi.Input[str] | None = None  # the X-Ray SDK's layer: fanout:tracingSdk only
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
    reserved_concurrency: int | None = None  # fanout:reservedConcurrency (api and authorizer)


def handler_path(entry: str) -> str:
    """'handlers.persister:handler' (topology form) -> 'handlers.persister.handler' (Lambda form)."""
    return entry.replace(":", ".")


def function_args(spec: FunctionSpec, shared: SharedCode) -> FunctionArgs:
    """A fanout function's arguments for the consumer package's `Function`: named, logged and traced as fanout's."""
    settings = shared.settings
    in_vpc = spec.in_vpc and shared.subnet_ids is not None
    return FunctionArgs(
        code=pulumi.FileArchive(str(shared.archive.path)),
        handler=spec.handler,
        statements=list(spec.statements),
        # fanout.environment: the same variables the local runtime gives the function.
        environment={
            **common_environment(spec.short_name, settings.log_level, settings.tracing_sdk),
            **spec.environment,
        },
        timeout_seconds=spec.timeout_seconds,
        memory_mb=spec.memory_mb,
        runtime=package.RUNTIME,
        architecture=package.ARCHITECTURE,
        layers=[shared.layer_arn, *([shared.tracing_layer_arn] if shared.tracing_layer_arn is not None else [])],
        source_code_hash=shared.archive.source_code_hash,
        log_retention_days=settings.log_retention_days,
        function_name=f"{settings.prefix}-{spec.short_name}",
        description=f"fanout {spec.short_name} function ({settings.stack})",
        subnet_ids=shared.subnet_ids if in_vpc else None,
        security_group_ids=shared.security_group_ids if in_vpc else None,
        reserved_concurrency=spec.reserved_concurrency,
        role_path=settings.role_path,
    )


class LambdaFunction(Function):
    """A fanout function: the consumer package's `Function` (one implementation) with fanout's settings."""

    def __init__(
        self, name: str, spec: FunctionSpec, shared: SharedCode, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, function_args(spec, shared), opts)
