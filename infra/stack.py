"""The whole system on AWS: wires the building blocks together from the settings.

Order matters only for Python, not for AWS: the REST API comes first because the CDN needs its
id, the CDN before the sign-in client (its callback URL), the client before the authorizer (its
audience), and the functions before the API's methods.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from fanout import asyncapi
from fanout.environment import Refs, consumer_environment, function_environment
from fanout.topology import NAMESPACE, TopologyError
from infra import package, policies
from infra.components.access_logs import CdnAccessLogs
from infra.components.api import DataApi
from infra.components.archive import EventArchive
from infra.components.bus import EventBus
from infra.components.consumer import Consumer
from infra.components.firewall import Firewall
from infra.components.function import FunctionSpec, LambdaFunction, SharedCode
from infra.components.generator import Generator
from infra.components.identity import Identity
from infra.components.monitoring import Monitoring, Watched
from infra.components.network import Network
from infra.components.table import DataTable
from infra.components.topic import EventTopic
from infra.components.website import WebSite
from infra.context import AwsContext
from infra.settings import LAMBDA_CONCURRENCY_QUOTA, Settings, check_concurrency

PERSISTER_HANDLER = "handlers.persister:handler"
ARCHIVE_HANDLER = "handlers.archive:handler"


@dataclass
class Stack:
    settings: Settings
    layer: aws.lambda_.LayerVersion
    network: Network | None
    topic: EventTopic
    table: DataTable
    bus: EventBus
    identity: Identity
    api: DataApi
    website: WebSite
    cdn_logs: CdnAccessLogs
    firewall: Firewall | None
    authorizer: LambdaFunction
    api_function: LambdaFunction
    consumers: dict[str, Consumer]
    archive: EventArchive | None
    generator: Generator
    monitoring: Monitoring
    cursor_secret: aws.secretsmanager.Secret | None = None

    @property
    def functions(self) -> dict[str, LambdaFunction]:
        found = {"authorizer": self.authorizer, "api": self.api_function, "generator": self.generator.function}
        found |= {name: c.function for name, c in self.consumers.items() if c.function is not None}
        return found

    @property
    def work_queues(self) -> dict[str, aws.sqs.Queue]:
        """Queues someone consumes from (each must have a DLQ)."""
        queues = {name: c.queue for name, c in self.consumers.items()}
        if self.bus.target_queue is not None:
            queues["bus-persisted"] = self.bus.target_queue
        return queues

    @property
    def dead_letter_queues(self) -> dict[str, aws.sqs.Queue]:
        dlqs = {}
        for name, consumer in self.consumers.items():
            dlqs[name] = consumer.dlq
            dlqs[f"{name}-subscription"] = consumer.subscription_dlq
        dlqs |= self.bus.dead_letter_queues
        dlqs["generator"] = self.generator.dlq
        return dlqs


def build(settings: Settings, ctx: AwsContext, artifacts: package.Artifacts) -> Stack:
    check_account_concurrency(settings)
    prefix = settings.prefix
    topology = settings.topology

    layer = aws.lambda_.LayerVersion(
        "deps",
        layer_name=f"{prefix}-deps",
        description="fanout: locked third-party packages (requirements-lambda.lock)",
        code=pulumi.FileArchive(str(artifacts.layer.path)),
        source_code_hash=artifacts.layer.source_code_hash,
        compatible_runtimes=[package.RUNTIME],
        compatible_architectures=[package.ARCHITECTURE],
    )
    # The X-Ray SDK only where the tracer is on (its support ends 2027-02-25; docs/deploy.md, "Tracing").
    tracing_layer = None
    if settings.tracing_sdk:
        if artifacts.tracing_layer is None:
            raise TopologyError(f"{NAMESPACE}:tracingSdk needs the tracing layer: run `make package`")
        tracing_layer = aws.lambda_.LayerVersion(
            "deps-tracing",
            layer_name=f"{prefix}-deps-tracing",
            description="fanout: the X-Ray SDK for Powertools' Tracer (requirements-lambda.lock)",
            code=pulumi.FileArchive(str(artifacts.tracing_layer.path)),
            source_code_hash=artifacts.tracing_layer.source_code_hash,
            compatible_runtimes=[package.RUNTIME],
            compatible_architectures=[package.ARCHITECTURE],
        )
    network = Network("network", settings, ctx) if settings.network.enabled else None
    shared = SharedCode(
        settings=settings,
        ctx=ctx,
        archive=artifacts.handlers,
        layer_arn=layer.arn,
        tracing_layer_arn=tracing_layer.arn if tracing_layer is not None else None,
        subnet_ids=network.subnet_ids if network else None,
        security_group_ids=network.security_group_ids if network else None,
    )

    topic = EventTopic("events", settings, ctx)
    table = DataTable("data", settings, ctx)
    bus = EventBus("bus", settings, topic.key.arn)
    identity = Identity("identity", settings, ctx)
    api = DataApi("api", settings, ctx)
    firewall = Firewall("firewall", settings, ctx) if settings.waf.enabled else None
    website = WebSite(
        "web",
        settings,
        api_domain=api.execute_api_domain,
        csp_connect_origins=identity.csp_origins(),
        web_acl_arn=firewall.edge_acl.arn if firewall else None,
        origin_header=firewall.origin_header if firewall else None,
    )
    cdn_logs = CdnAccessLogs("cdn-logs", settings, ctx, website.distribution)
    identity.web_client(website.url)
    website.publish_config(identity.web_config())
    # The event contract next to the web app, from the same generator as the local GET /asyncapi.json.
    website.publish_asyncapi(asyncapi_document(settings, topic, bus, ctx))

    tokens = identity.token_settings()
    auth_env = {"JWT_ALGORITHMS": tokens.algorithms, "ROLES_CLAIM": tokens.roles_claim}
    for var, value in (
        ("JWKS_URL", tokens.jwks_url),
        ("JWT_ISSUER", tokens.issuer),
        ("JWT_AUDIENCE", tokens.audience),
        ("JWT_SECRET_ARN", tokens.secret_arn),
    ):
        if value is not None:
            auth_env[var] = value
    authorizer = LambdaFunction(
        "authorizer",
        FunctionSpec(
            short_name="authorizer",
            handler="handlers.authorizer.handler",
            timeout_seconds=10,
            memory_mb=256,
            environment=auth_env,
            statements=[policies.allow(["secretsmanager:GetSecretValue"], [tokens.secret_arn], sid="ReadHs256Secret")]
            if tokens.secret_arn is not None
            else [],
            in_vpc=False,
            reserved_concurrency=settings.concurrency.authorizer,
        ),
        shared,
    )

    # The cursor MAC key in Secrets Manager, not in the function's environment (which anyone with
    # lambda:GetFunctionConfiguration reads); the api reads it once per container.
    cursor_value = random.RandomPassword("cursor-secret", length=48, special=False)
    cursor_secret = aws.secretsmanager.Secret(
        "cursor-secret-store",
        name_prefix=f"{prefix}-cursor-",
        description="fanout: HMAC key of the API's pagination cursors",
        # Deleted at once outside production; a production stack keeps a week to undo a destroy.
        recovery_window_in_days=7 if settings.production else 0,
    )
    cursor_version = aws.secretsmanager.SecretVersion(
        "cursor-secret-value", secret_id=cursor_secret.id, secret_string=cursor_value.result
    )
    messaging_key = [
        topic.key_through(ctx, "sns", "EncryptEventsThroughSns"),
    ]
    # What functions are told about the resources: fanout.environment, the same function the local runtime calls.
    refs = Refs(
        topic_arn=topic.topic.arn,
        table_name=table.table.name,
        idempotency_table_name=table.idempotency_table.name,
        event_bus_name=bus.bus.name,
        archive_bucket=None,  # set below, once the archive exists
        # The version's ARN is the secret's: the function waits for the value to exist.
        cursor_secret=cursor_version.secret_arn,
    )
    api_function = LambdaFunction(
        "api",
        FunctionSpec(
            short_name="api",
            handler="handlers.api.handler",
            timeout_seconds=10,
            memory_mb=512,
            environment=function_environment(
                topology, "api", refs, log_level=settings.log_level, tracing_sdk=settings.tracing_sdk
            ),
            statements=[
                policies.allow(["secretsmanager:GetSecretValue"], [cursor_secret.arn], sid="ReadCursorSecret"),
                policies.allow(["sns:Publish"], [topic.topic.arn], sid="PublishEvents"),
                *messaging_key,
                policies.allow(["dynamodb:GetItem", "dynamodb:Query"], [table.table.arn], sid="ReadOwnItems"),
                policies.allow(
                    ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                    [table.idempotency_table.arn],
                    sid="IdempotencyRecords",
                ),
                table.key_use(ctx),
            ],
            reserved_concurrency=settings.concurrency.api,
        ),
        shared,
    )
    api.connect(authorizer, api_function)
    if firewall is not None:
        firewall.protect_stage(api.stage)

    archive = (
        EventArchive("archive", settings, table.key.arn)
        if any(c.handler == ARCHIVE_HANDLER for c in topology.consumers)
        else None
    )
    consumers = {}
    if archive is not None:
        refs = dataclasses.replace(refs, archive_bucket=archive.bucket.bucket)
    for spec in topology.consumers:
        # What each known consumer handler calls beyond its own queue; any other handler gets only its queue.
        statements: list = []
        if spec.handler == PERSISTER_HANDLER:
            statements = [
                policies.allow(["dynamodb:BatchWriteItem"], [table.table.arn], sid="StoreItems"),
                table.key_use(ctx),
                policies.allow(["events:PutEvents"], [bus.bus.arn], sid="AnnouncePersisted"),
            ]
        elif spec.handler == ARCHIVE_HANDLER and archive is not None:
            statements = archive.writer_statements(ctx)
        if spec.idempotent and spec.handler:
            # The kit's Idempotency records, keyed on (consumer, event id), in the idempotency table only.
            statements = [
                *statements,
                policies.allow(
                    ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                    [table.idempotency_table.arn],
                    sid="IdempotencyRecords",
                ),
                table.key_use(ctx),
            ]
        # The same function the local runtime calls: what a consumer reads beyond the common variables.
        environment = consumer_environment(spec, refs) if spec.handler else {}
        consumers[spec.name] = Consumer(
            f"consumer-{spec.name}", spec, topic, shared, bus=bus, statements=statements, environment=environment
        )

    generator = Generator("generator", topic, shared)

    stack = Stack(
        settings=settings,
        layer=layer,
        network=network,
        topic=topic,
        table=table,
        bus=bus,
        identity=identity,
        api=api,
        website=website,
        cdn_logs=cdn_logs,
        firewall=firewall,
        authorizer=authorizer,
        api_function=api_function,
        cursor_secret=cursor_secret,
        consumers=consumers,
        archive=archive,
        generator=generator,
        monitoring=None,  # type: ignore[arg-type]  # set just below: it watches the stack built above
    )
    stack.monitoring = Monitoring(
        "monitoring",
        settings,
        ctx,
        Watched(
            api_name=api.rest_api.name,
            api_stage=api.stage.stage_name,
            dlqs=stack.dead_letter_queues,
            consumers={n: (c.function.function, c.queue) for n, c in consumers.items() if c.function is not None},
            functions={n: f.function for n, f in stack.functions.items()},
            topics={"events": topic.topic.name},
            rules=delivery_rules(stack),
            # The generator's schedule sits in the default group (Scheduler has no per-schedule metrics).
            schedule_groups=("default",),
            reserved={
                n: f.function
                for n, f in (("api", api_function), ("authorizer", authorizer))
                if getattr(settings.concurrency, n) is not None
            },
            on_failure={"generator": generator.function.function},
            reader_queues={"bus-persisted": bus.target_queue} if bus.target_queue is not None else {},
        ),
        topic.key.arn,
    )
    if firewall is not None:
        firewall.add_alarms(stack.monitoring.topic)
    return stack


def check_account_concurrency(settings: Settings) -> None:
    """Refuses (one line) reservations or consumers the account's real Lambda quota cannot hold.

    Read at every preview and up from Service Quotas (quota L-B99A9384, Lambda's concurrent
    executions in this region), so a new account's quota of 10 stops the deploy before Lambda
    does, half-way through.
    """
    quota = aws.servicequotas.get_service_quota(service_code="lambda", quota_code=LAMBDA_CONCURRENCY_QUOTA)
    limit = int(quota.value)
    source = f"its Lambda concurrency quota, Service Quotas {LAMBDA_CONCURRENCY_QUOTA}"
    check_concurrency(settings.topology, settings.concurrency, limit, source)


def delivery_rules(stack: Stack) -> dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]]:
    """Every rule of the stack's bus with a target, by alarm slug: (bus name, rule name)."""
    bus = stack.bus.bus.name
    rules = {f"rule-{n}": (bus, c.rule.name) for n, c in stack.consumers.items() if c.rule is not None}
    if stack.bus.rule is not None:
        rules["rule-persisted"] = (bus, stack.bus.rule.name)
    return rules


def asyncapi_document(settings: Settings, topic: EventTopic, bus: EventBus, ctx: AwsContext) -> pulumi.Output[str]:
    """The stack's AsyncAPI document (fanout.asyncapi) with its real ARNs and region."""

    def render(args: list[str]) -> str:
        region, topic_arn, bus_arn = args
        where = asyncapi.Where(region=region, topic_arn=topic_arn, event_bus_arn=bus_arn)
        return json.dumps(asyncapi.document(settings.topology, where), indent=2)

    return pulumi.Output.all(ctx.region, topic.topic.arn, bus.bus.arn).apply(render)


def subscriber_outputs(stack: Stack) -> dict[str, pulumi.Input]:
    """What a team subscribing from another project or account needs (docs/deploy.md); nothing secret."""
    topology = stack.settings.topology
    return {
        "topic_arn": stack.topic.topic.arn,
        "event_bus_name": stack.bus.bus.name,
        "event_bus_arn": stack.bus.bus.arn,
        "asyncapi_url": stack.website.asyncapi_url,
        # The ARN's region field: where the topic (and everything else) lives.
        "region": stack.topic.topic.arn.apply(lambda arn: arn.split(":")[3]),
        "event_types": sorted(asyncapi.event_types()),
        "event_bus_source": asyncapi.BUS_SOURCE,
        "topic_name": topology.topic_name,
        # "fifo": the topic is an SNS FIFO topic (each subject in order); subscribers need FIFO queues.
        "ordering": topology.ordering,
    }


def export(stack: Stack) -> None:
    """Stack outputs: what `fanout status`-like tools, the smoke test and people need."""
    s = stack.settings
    pulumi.export("web_url", stack.website.url)
    pulumi.export("api_url", stack.api.invoke_url)
    for name, value in subscriber_outputs(stack).items():
        pulumi.export(name, value)
    pulumi.export("table_name", stack.table.table.name)
    pulumi.export(
        "consumers",
        {n: {"queue_url": c.queue.url, "dlq_url": c.dlq.url} for n, c in stack.consumers.items()},
    )
    pulumi.export("generator_function", stack.generator.function.function.name)
    if stack.archive is not None:
        pulumi.export("archive_bucket", stack.archive.bucket.bucket)
    pulumi.export("cdn_log_bucket", stack.cdn_logs.bucket.bucket)
    pulumi.export("identity_mode", s.identity.mode)
    if stack.identity.user_pool is not None and stack.identity.client is not None:
        pulumi.export("user_pool_id", stack.identity.user_pool.id)
        pulumi.export("client_id", stack.identity.client.id)
    if stack.identity.issuer is not None:
        pulumi.export("issuer", stack.identity.issuer)
    if stack.identity.secret is not None:
        pulumi.export("jwt_secret_arn", stack.identity.secret.arn)
    if stack.monitoring.topic is not None:
        pulumi.export("alarm_topic_arn", stack.monitoring.topic.arn)
