"""Each function's environment variables, computed once for both runtimes.

The Pulumi program (infra/) and the local runtime (fanout/local/) both call
`function_environment`, so a function sees locally exactly the variables it gets on AWS: its own,
never the union of all. Only what must differ is passed in by the caller: resource references
(Pulumi outputs on AWS, names and ARNs of the emulated resources locally) and the authorizer's
token settings (JWKS on AWS, the local HS256 secret locally). `local_extras` adds what only the
local runtime has: the emulated endpoint, dummy credentials, and metrics off (no CloudWatch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fanout.topology import Consumer, Topology

PERSISTER_HANDLER = "handlers.persister:handler"
ARCHIVE_HANDLER = "handlers.archive:handler"
FUNCTIONS = ("authorizer", "api", "generator")  # besides one per consumer with a handler


@dataclass(frozen=True)
class Refs:
    """What functions are told about the stack's resources; strings locally, Pulumi inputs on AWS."""

    topic_arn: Any
    table_name: Any
    idempotency_table_name: Any
    event_bus_name: Any
    archive_bucket: Any
    cursor_secret: Any  # the Secrets Manager secret holding the cursor key (ARN or name)


def function_names(topo: Topology) -> list[str]:
    return [*FUNCTIONS, *(c.name for c in topo.consumers if c.handler)]


def consumer_environment(c: Consumer, refs: Refs) -> dict[str, Any]:
    """What a consumer's handler reads beyond the common variables."""
    env: dict[str, Any] = {}
    if c.handler == PERSISTER_HANDLER:
        env |= {"TABLE_NAME": refs.table_name, "EVENT_BUS_NAME": refs.event_bus_name}
    elif c.handler == ARCHIVE_HANDLER:
        env |= {"ARCHIVE_BUCKET": refs.archive_bucket}
    if c.idempotent:
        # The kit's opt-in Powertools Idempotency (fanout_kit/kit.py) on the idempotency table.
        env |= {"FANOUT_IDEMPOTENT": "true", "IDEMPOTENCY_TABLE_NAME": refs.idempotency_table_name}
    return {**c.environment, **env}


def generator_environment(topo: Topology, topic_arn: Any) -> dict[str, Any]:
    gen = topo.generator
    return {"TOPIC_ARN": topic_arn, "GENERATOR_USERS": ",".join(gen.users), "GENERATOR_COUNT": str(gen.count_per_run)}


def common_environment(function: str, log_level: str, tracing_sdk: bool = False) -> dict[str, str]:
    """What every function gets: Powertools' service, namespace, log level and tracing switch."""
    return {
        "POWERTOOLS_SERVICE_NAME": function,
        "POWERTOOLS_METRICS_NAMESPACE": "fanout",
        "POWERTOOLS_LOG_LEVEL": log_level,
        # Powertools Tracer loads the X-Ray SDK only when asked (fanout:tracingSdk) for subsegments.
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing_sdk else "true",
    }


def function_environment(
    topo: Topology,
    function: str,
    refs: Refs,
    *,
    log_level: str,
    tracing_sdk: bool = False,
    auth: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The environment of one function ("authorizer", "api", "generator" or a consumer's name)."""
    env: dict[str, Any] = common_environment(function, log_level, tracing_sdk)
    if function == "authorizer":
        return env | dict(auth or {})
    if function == "api":
        return env | {
            "TOPIC_ARN": refs.topic_arn,
            "TABLE_NAME": refs.table_name,
            "IDEMPOTENCY_TABLE_NAME": refs.idempotency_table_name,
            # The cursor key's secret in Secrets Manager (its ARN on AWS, its name locally), never the value:
            # an environment variable is readable by anyone with lambda:GetFunctionConfiguration.
            "CURSOR_SECRET_ARN": refs.cursor_secret,
        }
    if function == "generator":
        return env | generator_environment(topo, refs.topic_arn)
    consumer = topo.consumer(function)  # KeyError for a name that is no function of this topology
    return env | consumer_environment(consumer, refs)


def local_extras(aws_environ: Mapping[str, str]) -> dict[str, str]:
    """What only the local runtime adds: endpoint, region, dummy credentials; metrics off (no CloudWatch)."""
    return {**aws_environ, "POWERTOOLS_METRICS_DISABLED": "true"}
