"""The one declaration of fanout's building blocks, read from a stack's config.

The local runtime (`make run`) and the Pulumi program both build exactly what a
`Topology` says, so a consumer added to `Pulumi.<stack>.yaml` exists in both places.
Config keys live in the `fanout:` namespace, in camelCase as Pulumi config does.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fanout import PROJECT_ROOT
from fanout import schedule as schedules
from fanout_kit.models import DataGenerated, DataPersisted

NAMESPACE = "fanout"
FILTER_SCOPES = ("MessageAttributes", "MessageBody")
SOURCES = ("topic", "bus")
# fanout:ordering: standard SNS/SQS (no order), or an SNS FIFO topic fanning out to SQS FIFO queues,
# each subject's events in publish order (the subject is the message group id).
ORDERINGS = ("standard", "fifo")
FIFO_SUFFIX = ".fifo"  # SNS and SQS require it at the end of every FIFO topic and queue name
# The event types, from the kit's registry of models (fanout_kit.models.MODELS).
GENERATED_TYPE = DataGenerated.TYPE
PERSISTED_TYPE = DataPersisted.TYPE


class TopologyError(ValueError):
    """A stack config that cannot describe a valid topology; the message names the key."""


# Every top-level `fanout:` key, in this one place: both readers of the config (this module for
# `make run` and the CLI, infra/settings.py for the Pulumi program) refuse any other key, naming the
# closest known one, so a typo such as `fanout:consumer` fails instead of being silently ignored.
# A new key goes here first (and is then parsed where it belongs).
TOPOLOGY_KEYS = ("prefix", "consumers", "generator", "token", "subscribers", "ordering")
# Parsed by infra/settings.py only (AWS settings); the local runtime accepts and ignores them.
INFRA_KEYS = (
    "production",
    "tracingSdk",
    "logRetentionDays",
    "logLevel",
    "throttle",
    "alarms",
    "alarmEmail",
    "alarmThresholds",
    "vpc",
    "identity",
    "archiveRetentionDays",
    "apiStageName",
    "manageApiGatewayAccount",
    "deletionProtection",
    "pointInTimeRecovery",
    "priceClass",
    "reservedConcurrency",
    "accountConcurrency",
    "persistedQueue",
    "waf",
    "customDomain",
)
KNOWN_KEYS = TOPOLOGY_KEYS + INFRA_KEYS
CONSUMER_KEYS = (
    "name",
    "handler",
    "batchSize",
    "batchingWindowSeconds",
    "maxReceiveCount",
    "timeoutSeconds",
    "memoryMb",
    "maxConcurrency",
    "filterPolicy",
    "filterPolicyScope",
    "environment",
    "source",
    "eventPattern",
    "idempotent",
)
GENERATOR_KEYS = ("enabled", "schedule", "users", "countPerRun")
TOKEN_KEYS = ("algorithms", "jwksUrl", "issuer", "audience", "rolesClaim", "cacheTtlSeconds")


def refuse_unknown(keys: Any, known: tuple[str, ...] | list[str], where: str) -> None:
    """Raise for the first key not in `known`, naming it and the closest known key.

    `where` prefixes the key as the user wrote it: "fanout:" for top-level keys,
    "fanout:generator." for nested ones.
    """
    for key in sorted(str(k) for k in keys if k not in known):
        close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
        hint = f"did you mean {where}{close[0]}?" if close else "known keys: " + ", ".join(sorted(known))
        raise TopologyError(f"{where}{key} is not a known key ({hint})")


# AWS's limits on the names built from fanout:prefix and consumer names. Checked when the config is
# read, before any resource is declared, so a long name fails with one line instead of half-way
# through `pulumi up`. infra/ builds the names the same way (tests/infra checks every one it declares).
S3_BUCKET_PREFIX_MAX = 37  # bucket_prefix: the 63-character bucket name minus the 26 characters appended
LAMBDA_NAME_MAX = 64
SQS_NAME_MAX = 80
IAM_ROLE_NAME_MAX = 64
EVENT_RULE_NAME_MAX = 64
SCHEDULE_NAME_MAX = 64
COGNITO_DOMAIN_MAX = 63
ALARM_NAME_MAX = 255
LOG_GROUP_NAME_MAX = 512
# A FIFO stack appends ".fifo" to every queue name: a standard stack's consumer queue names keep room for it.
SQS_CONSUMER_QUEUE_MAX = SQS_NAME_MAX - len(FIFO_SUFFIX)
AUTONAME_SUFFIX = 8  # Pulumi auto-naming appends "-" and 7 random characters to the logical name
RANDOM_DOMAIN_SUFFIX = 9  # infra/components/identity.py: "-" and 8 random characters
# The logical name infra/components/consumer.py gives a consumer function's role (auto-named by Pulumi).
CONSUMER_ROLE_LOGICAL = "consumer-{name}-fn-role"
# The longest alarm slug built from a consumer name (infra/components/monitoring.py).
CONSUMER_ALARM_SLUGS = ("{name}-backlog-age", "dlq-{name}-subscription")


# The one rule for consumer names, wherever a name comes from (fanout:consumers, `fanout new-consumer`,
# `fanout subscribe`, the local stack's /_local routes): letters, digits, '-' and '_', at most
# CONSUMER_NAME_MAX, and every AWS name built from it within its limit (check_consumer_name). The
# longest name any prefix allows: the shortest prefix ("ab-") and the longest suffix of a consumer
# queue ("-sub-dlq") fill what SQS allows before ".fifo".
CONSUMER_NAME_MAX = SQS_CONSUMER_QUEUE_MAX - len("ab-") - len("-sub-dlq")
CONSUMER_NAME_PATTERN = rf"[A-Za-z0-9_-]{{1,{CONSUMER_NAME_MAX}}}"
CONSUMER_NAME = re.compile(rf"^{CONSUMER_NAME_PATTERN}$")
CONSUMER_NAME_RULE = f"1-{CONSUMER_NAME_MAX} letters, digits, '-' or '_'"
# Queues of `fanout tail` (created and removed by the CLI, and cleaned up by the local stack when left
# behind): no consumer queue may be named like one.
TAIL_QUEUE_PREFIX = "fanout-tail-"
# The stack's own queue, function and rule names besides the consumers' (infra/ and the local trace taps).
STACK_QUEUES = ("persisted-target-dlq", "persisted-events-dlq", "generator-dlq", "trace-tap", "trace-bus-tap")
STACK_FUNCTIONS = ("api", "authorizer", "generator")
STACK_RULES = ("persisted", "trace-tap")


def prefix_names(prefix: str) -> list[tuple[str, str, int]]:
    """(what, name, AWS limit) for every name built from the prefix alone."""
    return [
        ("S3 bucket prefix of the archive", f"{prefix}-archive-", S3_BUCKET_PREFIX_MAX),
        ("S3 bucket prefix of the web app", f"{prefix}-web-", S3_BUCKET_PREFIX_MAX),
        *[(f"Lambda function name ({fn})", f"{prefix}-{fn}", LAMBDA_NAME_MAX) for fn in ("authorizer", "generator")],
        ("SQS queue name", f"{prefix}-persisted-target-dlq", SQS_NAME_MAX),
        ("SQS queue name", f"{prefix}-persisted-events-dlq", SQS_NAME_MAX),
        ("EventBridge Scheduler schedule name", f"{prefix}-generator", SCHEDULE_NAME_MAX),
        ("EventBridge rule name", f"{prefix}-persisted", EVENT_RULE_NAME_MAX),
        ("Cognito domain prefix", f"{prefix}-" + "x" * (RANDOM_DOMAIN_SUFFIX - 1), COGNITO_DOMAIN_MAX),
    ]


def consumer_names(
    prefix: str, name: str, *, handler: bool = True, source: str = "topic", ordering: str = "standard"
) -> list[tuple[str, str, int]]:
    """(what, name, AWS limit) for every name built from a consumer's name."""
    queue = f"{prefix}-{name}"
    # A topic consumer's queues on a FIFO topic are FIFO: ".fifo" counts against SQS's 80 characters.
    end = FIFO_SUFFIX if ordering == "fifo" and source == "topic" else ""
    room = SQS_NAME_MAX if end else SQS_CONSUMER_QUEUE_MAX  # a standard stack's names keep room for ".fifo"
    found = [
        ("SQS queue name", queue + end, room),
        ("SQS queue name", f"{queue}-dlq{end}", room),
        ("SQS queue name", f"{queue}-sub-dlq{end}", room),
    ]
    if source == "bus":
        found.append(("EventBridge rule name", queue, EVENT_RULE_NAME_MAX))
    if handler:
        found += [
            ("Lambda function name", queue, LAMBDA_NAME_MAX),
            ("log group name", f"/aws/lambda/{queue}", LOG_GROUP_NAME_MAX),
            (
                "IAM role name",
                CONSUMER_ROLE_LOGICAL.format(name=name) + "-" + "x" * (AUTONAME_SUFFIX - 1),
                IAM_ROLE_NAME_MAX,
            ),
            *[("alarm name", f"{prefix}-" + slug.format(name=name), ALARM_NAME_MAX) for slug in CONSUMER_ALARM_SLUGS],
        ]
    return found


def _check_lengths(names: list[tuple[str, str, int]], key: str, value: str) -> None:
    for what, built, limit in names:
        if len(built) > limit:
            allowed = f"AWS allows at most {limit}"
            if limit == SQS_CONSUMER_QUEUE_MAX:
                allowed = f"at most {limit} fit (SQS allows {SQS_NAME_MAX}, and a FIFO stack appends {FIFO_SUFFIX})"
            raise TopologyError(
                f"{key} {value!r} is too long: it makes the {what} {built!r} {len(built)} characters, and {allowed}"
            )


def check_prefix(prefix: Any) -> str:
    """The stack's name prefix, or TopologyError naming fanout:prefix and the limit it breaks."""
    if not isinstance(prefix, str) or not re.match(r"^[a-z][a-z0-9-]{1,30}$", prefix):
        raise TopologyError(f"{NAMESPACE}:prefix must be 2-31 lowercase letters, digits or '-', got {prefix!r}")
    _check_lengths(prefix_names(prefix), f"{NAMESPACE}:prefix", prefix)
    return prefix


def check_consumer_name(
    prefix: str,
    name: Any,
    *,
    handler: bool = True,
    source: str = "topic",
    where: str = "consumer name",
    ordering: str = "standard",
) -> str:
    """A consumer name that is valid and fits every AWS name built from it with this prefix.

    Raises TopologyError with one line naming `where`, the name and the limit it breaks. Used for
    `fanout:consumers` entries and by `fanout new-consumer` before it writes anything.
    """
    if not isinstance(name, str) or not CONSUMER_NAME.match(name):
        raise TopologyError(f"{where} must be {CONSUMER_NAME_RULE}, got {name!r}")
    _check_lengths(consumer_names(prefix, name, handler=handler, source=source, ordering=ordering), where, name)
    return name


@dataclass(frozen=True)
class NameUse:
    """A consumer name in use and the SQS queues it holds: what no new consumer may take."""

    name: str
    where: str  # one phrase for the refusal: "declared in Pulumi.dev.yaml", "subscribed with `fanout subscribe`"
    queues: tuple[str, ...] = ()


def stack_queue_names(prefix: str) -> set[str]:
    return {f"{prefix}-{q}" for q in STACK_QUEUES}


def consumer_queue_names(prefix: str, name: str) -> tuple[str, ...]:
    """The SQS queues a declared consumer makes (the subscription DLQ is made on AWS only)."""
    return (f"{prefix}-{name}", f"{prefix}-{name}-dlq", f"{prefix}-{name}-sub-dlq")


def subscribed_queue_names(name: str) -> tuple[str, ...]:
    """The SQS queues `fanout subscribe NAME` makes: NAME and its DLQ (the contract names the queue NAME)."""
    return (name, f"{name}-dlq")


def name_problem(
    prefix: str,
    name: str,
    queues: tuple[str, ...],
    uses: list[NameUse],
    *,
    handler: bool = False,
    source: str = "topic",
) -> str | None:
    """Why `name`, making `queues`, cannot be a new consumer beside `uses`; None when it can.

    One namespace, whatever adds the name or the ones in use (stack config, `fanout new-consumer`,
    `fanout subscribe`), in either order: no two consumers share a name or any queue name, and no
    consumer takes a name the stack builds for itself (trace taps, `fanout tail` queues, the bus's DLQs,
    the api/authorizer/generator functions, the bus's rules).
    """
    for use in uses:
        if use.name == name:
            return f"consumer name {name!r} is taken: {use.where}"
    own = stack_queue_names(prefix)
    for queue in queues:
        if queue.startswith(TAIL_QUEUE_PREFIX):
            return f"consumer name {name!r} would make the queue {queue!r}, a name kept for `fanout tail`'s queues"
        if queue in own:
            return f"consumer name {name!r} would make the queue {queue!r}, one of the stack's own queues"
        for use in uses:
            if queue in use.queues:
                return (
                    f"consumer name {name!r} would make the queue {queue!r}, "
                    f"which belongs to consumer {use.name!r} ({use.where})"
                )
    if handler and name in STACK_FUNCTIONS:
        return f"consumer name {name!r} would make the function {prefix}-{name}, one of the stack's own functions"
    if source == "bus" and name in STACK_RULES:
        return f"consumer name {name!r} would make the bus rule {prefix}-{name}, one of the stack's own rules"
    return None


@dataclass(frozen=True)
class Consumer:
    """An SQS queue (with its own DLQ) subscribed to the topic, optionally with a handler."""

    name: str
    handler: str | None = None  # "module:function", e.g. "handlers.persister:handler"
    batch_size: int = 10
    batching_window_seconds: int = 0
    max_receive_count: int = 3
    timeout_seconds: int = 30
    memory_mb: int = 256
    max_concurrency: int = 2
    filter_policy: dict[str, Any] | None = None
    filter_policy_scope: str = "MessageAttributes"
    environment: dict[str, str] = field(default_factory=dict)
    # Where the queue's messages come from: the SNS topic (raw CloudEvents, filtered by
    # filter_policy) or the EventBridge bus (EventBridge events whose `detail` is the
    # CloudEvent, matched by event_pattern).
    source: str = "topic"
    event_pattern: dict[str, Any] | None = None
    # Powertools Idempotency keyed on (consumer, event id), on the idempotency table.
    idempotent: bool = False

    @property
    def visibility_timeout_seconds(self) -> int:
        # AWS guidance: at least six times the function timeout, so retries don't overlap.
        return 6 * self.timeout_seconds


@dataclass(frozen=True)
class Generator:
    """The scheduled producer of synthetic events."""

    enabled: bool = True
    schedule: str = "rate(5 minutes)"
    users: tuple[str, ...] = ("demo-user",)
    count_per_run: int = 5


ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
SUBSCRIBER_KEYS = ("accounts", "organizationId")


@dataclass(frozen=True)
class Subscribers:
    """Other AWS accounts, and/or one AWS Organization, allowed to subscribe (`fanout:subscribers`).

    They may `sns:Subscribe` to the topic with protocol sqs or lambda and manage rules they create
    on the bus; nothing else. Empty: no other account.
    """

    accounts: tuple[str, ...] = ()
    organization_id: str | None = None

    def __bool__(self) -> bool:
        return bool(self.accounts or self.organization_id)


def parse_subscribers(raw: Any) -> Subscribers:
    where = f"{NAMESPACE}:subscribers"
    if raw is None or raw == {}:
        return Subscribers()
    if not isinstance(raw, dict):
        raise TopologyError(
            f'{where} must be a mapping like {{"accounts": ["123456789012"], "organizationId": "o-..."}}'
        )
    refuse_unknown(raw, SUBSCRIBER_KEYS, f"{where}.")
    accounts = raw.get("accounts", [])
    if not isinstance(accounts, list):
        raise TopologyError(f"{where}.accounts must be a list of 12-digit AWS account ids")
    for account in accounts:
        if isinstance(account, int) and not isinstance(account, bool):
            # YAML reads an unquoted id as a number and drops its leading zeros.
            raise TopologyError(f"{where}.accounts: quote the account id {account} (YAML drops leading zeros)")
        if not isinstance(account, str) or not ACCOUNT_ID.match(account):
            raise TopologyError(f"{where}.accounts: {account!r} is not a 12-digit AWS account id")
    dupes = sorted({a for a in accounts if accounts.count(a) > 1})
    if dupes:
        raise TopologyError(f"{where}.accounts lists {', '.join(dupes)} more than once")
    org = raw.get("organizationId")
    if org is not None and (not isinstance(org, str) or not ORGANIZATION_ID.match(org)):
        raise TopologyError(
            f"{where}.organizationId must look like o-abc123defg (o- and 10-32 letters/digits), got {org!r}"
        )
    return Subscribers(tuple(accounts), org)


@dataclass(frozen=True)
class Auth:
    """How tokens are verified. HS256 is for the local stack only."""

    algorithms: tuple[str, ...] = ("RS256",)
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    roles_claim: str = "Role"
    cache_ttl_seconds: int = 300


@dataclass(frozen=True)
class Topology:
    stack: str
    prefix: str
    consumers: tuple[Consumer, ...]
    generator: Generator
    auth: Auth
    subscribers: Subscribers = Subscribers()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    ordering: str = "standard"

    @property
    def fifo(self) -> bool:
        return self.ordering == "fifo"

    def _fifo_name(self, name: str) -> str:
        return name + FIFO_SUFFIX if self.fifo else name

    @property
    def topic_name(self) -> str:
        return self._fifo_name(f"{self.prefix}-data-events")

    def is_fifo_consumer(self, consumer: Consumer) -> bool:
        """Topic consumers' queues follow the topic; the bus is not ordered, its consumers' queues are standard."""
        return self.fifo and consumer.source == "topic"

    @property
    def table_name(self) -> str:
        return f"{self.prefix}-data"

    @property
    def idempotency_table_name(self) -> str:
        return f"{self.prefix}-idempotency"

    @property
    def event_bus_name(self) -> str:
        return f"{self.prefix}-bus"

    @property
    def archive_bucket_name(self) -> str:
        """The S3 bucket of the event archive; consumer handlers find it as ARCHIVE_BUCKET.

        Locally this is the bucket's name. S3 names are global, so on AWS the Pulumi program
        may add a unique suffix and pass the real name in ARCHIVE_BUCKET.
        """
        return f"{self.prefix}-archive"

    def queue_name(self, consumer: Consumer) -> str:
        name = f"{self.prefix}-{consumer.name}"
        return name + FIFO_SUFFIX if self.is_fifo_consumer(consumer) else name

    def dlq_name(self, consumer: Consumer) -> str:
        name = f"{self.prefix}-{consumer.name}-dlq"
        return name + FIFO_SUFFIX if self.is_fifo_consumer(consumer) else name

    def subscription_dlq_name(self, consumer: Consumer) -> str:
        """The SNS subscription's DLQ (what SNS could not deliver); FIFO on a FIFO topic, as SNS requires."""
        name = f"{self.prefix}-{consumer.name}-sub-dlq"
        return name + FIFO_SUFFIX if self.is_fifo_consumer(consumer) else name

    def name_uses(self) -> list[NameUse]:
        """The declared consumers' names and queues, for the one namespace of consumer names."""
        where = f"declared in Pulumi.{self.stack}.yaml (fanout:consumers)"
        return [NameUse(c.name, where, consumer_queue_names(self.prefix, c.name)) for c in self.consumers]

    def consumer(self, name: str) -> Consumer:
        for c in self.consumers:
            if c.name == name:
                return c
        raise KeyError(name)


def config_int(raw: dict[str, Any], key: str, default: int, lo: int, hi: int, where: str) -> int:
    """An integer config value within [lo, hi]; the error names the key (booleans are not integers)."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise TopologyError(f"{where}.{key} must be an integer from {lo} to {hi}, got {value!r}")
    return value


def _consumer(raw: Any, index: int) -> Consumer:
    where = f"{NAMESPACE}:consumers[{index}]"
    if not isinstance(raw, dict):
        raise TopologyError(f"{where} must be a mapping")
    refuse_unknown(raw, CONSUMER_KEYS, f"{where}.")
    name = raw.get("name")
    if not isinstance(name, str) or not CONSUMER_NAME.match(name):
        raise TopologyError(f"{where}.name must be {CONSUMER_NAME_RULE}, got {name!r}")
    try:
        return _consumer_fields(raw, name, where)
    except TopologyError as exc:
        # Name the consumer too: "fanout:consumers[2]" alone sends the reader counting entries.
        raise TopologyError(f"consumer {name!r}: {exc}") from None


def _consumer_fields(raw: dict[str, Any], name: str, where: str) -> Consumer:
    handler = raw.get("handler")
    if handler is not None and (not isinstance(handler, str) or not re.match(r"^handlers\.\w+:\w+$", handler)):
        raise TopologyError(f"{where}.handler must look like 'handlers.module:function', got {handler!r}")
    window = config_int(raw, "batchingWindowSeconds", 0, 0, 300, where)
    # SQS event source mappings take more than 10 records only with a batching window.
    batch = config_int(raw, "batchSize", 10, 1, 100 if window else 10, where)
    policy = raw.get("filterPolicy")
    if policy is not None and not isinstance(policy, dict):
        raise TopologyError(f"{where}.filterPolicy must be a mapping")
    scope = raw.get("filterPolicyScope", "MessageAttributes")
    if scope not in FILTER_SCOPES:
        raise TopologyError(f"{where}.filterPolicyScope must be one of {', '.join(FILTER_SCOPES)}")
    env = raw.get("environment", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise TopologyError(f"{where}.environment must map names to strings")
    source = raw.get("source", "topic")
    if source not in SOURCES:
        raise TopologyError(f"{where}.source must be one of {', '.join(SOURCES)}, got {source!r}")
    pattern = raw.get("eventPattern")
    if source == "bus":
        if pattern is None:
            raise TopologyError(f"{where}.eventPattern is required with source: bus")
        check_event_pattern(pattern, f"{where}.eventPattern")
        for key in ("filterPolicy", "filterPolicyScope"):
            if key in raw:
                raise TopologyError(f"{where}.{key} applies to topic consumers; a bus consumer uses eventPattern")
    elif pattern is not None:
        raise TopologyError(f"{where}.eventPattern applies to source: bus only; a topic consumer uses filterPolicy")
    idempotent = raw.get("idempotent", False)
    if not isinstance(idempotent, bool):
        raise TopologyError(f"{where}.idempotent must be true or false, got {idempotent!r}")
    return Consumer(
        name=name,
        handler=handler,
        batch_size=batch,
        batching_window_seconds=window,
        max_receive_count=config_int(raw, "maxReceiveCount", 3, 1, 1000, where),
        timeout_seconds=config_int(raw, "timeoutSeconds", 30, 1, 900, where),
        memory_mb=config_int(raw, "memoryMb", 256, 128, 10240, where),
        max_concurrency=config_int(raw, "maxConcurrency", 2, 2, 1000, where),
        filter_policy=policy,
        filter_policy_scope=scope,
        environment=dict(env),
        source=source,
        event_pattern=pattern,
        idempotent=idempotent,
    )


def check_event_pattern(pattern: Any, where: str) -> None:
    """Refuse what EventBridge would refuse at PutRule: the pattern is a non-empty mapping whose
    leaves are non-empty lists (`{"detail-type": ["x"]}`, `{"detail": {"subject": [...]}}`)."""
    if not isinstance(pattern, dict) or not pattern:
        raise TopologyError(f"{where} must be a non-empty mapping (EventBridge pattern syntax)")
    for key, value in pattern.items():
        if not isinstance(key, str) or not key:
            raise TopologyError(f"{where} has a key that is not a non-empty string: {key!r}")
        if isinstance(value, dict):
            check_event_pattern(value, f"{where}.{key}")
        elif not isinstance(value, list) or not value:
            raise TopologyError(f"{where}.{key} must be a non-empty list of values or a nested mapping")


DEFAULT_PERSISTER = {
    "name": "persister",
    "handler": "handlers.persister:handler",
    "filterPolicy": {"type": [GENERATED_TYPE]},
}


def from_config(stack: str, config: dict[str, Any]) -> Topology:
    """Build the topology from the `fanout:` config of a stack (keys without the namespace)."""
    refuse_unknown(config, KNOWN_KEYS, f"{NAMESPACE}:")
    prefix = check_prefix(config.get("prefix", f"fanout-{stack}"))
    ordering = config.get("ordering", "standard")
    if ordering not in ORDERINGS:
        raise TopologyError(f"{NAMESPACE}:ordering must be one of {', '.join(ORDERINGS)}, got {ordering!r}")
    raw_consumers = config.get("consumers", [])
    if not isinstance(raw_consumers, list):
        raise TopologyError(f"{NAMESPACE}:consumers must be a list")
    consumers = [_consumer(c, i) for i, c in enumerate(raw_consumers)]
    if not any(c.name == "persister" for c in consumers):
        consumers.insert(0, _consumer(DEFAULT_PERSISTER, 0))
    for consumer in consumers:
        check_consumer_name(
            prefix,
            consumer.name,
            handler=consumer.handler is not None,
            source=consumer.source,
            where=f"{NAMESPACE}:consumers name",
            ordering=ordering,
        )
    for consumer in consumers:
        if ordering == "fifo" and consumer.source == "topic" and consumer.batching_window_seconds:
            raise TopologyError(
                f"consumer {consumer.name!r}: batchingWindowSeconds must be 0 with {NAMESPACE}:ordering fifo "
                "(Lambda has no batching window for FIFO queues, and takes at most 10 records a batch)"
            )
    names = [c.name for c in consumers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise TopologyError(f"{NAMESPACE}:consumers declares {', '.join(dupes)} more than once")
    declared: list[NameUse] = []
    for consumer in consumers:
        problem = name_problem(
            prefix,
            consumer.name,
            consumer_queue_names(prefix, consumer.name),
            declared,
            handler=consumer.handler is not None,
            source=consumer.source,
        )
        if problem:
            raise TopologyError(f"{NAMESPACE}:consumers: {problem}")
        declared.append(NameUse(consumer.name, "declared too", consumer_queue_names(prefix, consumer.name)))

    gen = config.get("generator", {}) or {}
    if not isinstance(gen, dict):
        raise TopologyError(f"{NAMESPACE}:generator must be a mapping")
    refuse_unknown(gen, GENERATOR_KEYS, f"{NAMESPACE}:generator.")
    users = gen.get("users", list(Generator.users))
    if not isinstance(users, list) or not users or not all(isinstance(u, str) and u for u in users):
        raise TopologyError(f"{NAMESPACE}:generator.users must be a non-empty list of user ids")
    schedule = gen.get("schedule", Generator.schedule)
    try:
        # What `make run` runs locally, and EventBridge Scheduler accepts: refused now, before anything starts.
        schedules.check(schedule if isinstance(schedule, str) else repr(schedule))
    except schedules.ScheduleError as exc:
        raise TopologyError(f"{NAMESPACE}:generator.schedule: {exc}") from None
    generator = Generator(
        enabled=bool(gen.get("enabled", True)),
        schedule=schedule,
        users=tuple(users),
        count_per_run=config_int(gen, "countPerRun", 5, 1, 1000, f"{NAMESPACE}:generator"),
    )

    tok = config.get("token", {}) or {}
    if not isinstance(tok, dict):
        raise TopologyError(f"{NAMESPACE}:token must be a mapping")
    refuse_unknown(tok, TOKEN_KEYS, f"{NAMESPACE}:token.")
    algorithms = tuple(tok.get("algorithms", Auth.algorithms))
    allowed = {"HS256", "RS256", "ES256"}
    if not algorithms or set(algorithms) - allowed:
        raise TopologyError(f"{NAMESPACE}:token.algorithms must be a non-empty subset of {sorted(allowed)}")
    if "HS256" in algorithms and len(algorithms) > 1:
        # Mixing a shared secret with public keys invites algorithm-confusion attacks.
        raise TopologyError(f"{NAMESPACE}:token.algorithms cannot mix HS256 with asymmetric algorithms")
    auth = Auth(
        algorithms=algorithms,
        jwks_url=tok.get("jwksUrl"),
        issuer=tok.get("issuer"),
        audience=tok.get("audience"),
        roles_claim=tok.get("rolesClaim", Auth.roles_claim),
        cache_ttl_seconds=config_int(tok, "cacheTtlSeconds", 300, 0, 3600, f"{NAMESPACE}:token"),
    )
    subscribers = parse_subscribers(config.get("subscribers"))
    return Topology(stack, prefix, tuple(consumers), generator, auth, subscribers, raw=dict(config), ordering=ordering)


def yaml_problem(file: str, exc: Exception) -> str:
    """One line for a YAML error (PyYAML or ruamel.yaml): the file, the line and what is wrong there."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" line {mark.line + 1}" if mark is not None else ""
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{file} is not valid YAML:{where}: {what}"


def read_stack_config(stack: str, root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The `fanout:` keys of Pulumi.<stack>.yaml, namespace stripped."""
    import yaml  # the local runtime and CLI only; Lambda code never reads stack files

    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise TopologyError(f"no stack config {path.name} in {root}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TopologyError(yaml_problem(path.name, exc)) from None
    config = doc.get("config", {}) or {}
    ns = f"{NAMESPACE}:"
    return {k[len(ns) :]: v for k, v in config.items() if k.startswith(ns)}


def load(stack: str = "dev", root: Path = PROJECT_ROOT) -> Topology:
    config = read_stack_config(stack, root)
    try:
        return from_config(stack, config)
    except TopologyError as exc:
        raise TopologyError(f"Pulumi.{stack}.yaml: {exc}") from None
