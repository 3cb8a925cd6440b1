"""Every per-environment choice, typed, with defaults: the topology plus the keys only AWS needs.

The topology keys (prefix, consumers, generator, token) are shared with the local runtime and
parsed by `fanout.topology`. The rest live here, all in the `fanout:` namespace. Defaults depend
on one switch, `production` (true for the stack named `prd` unless set), so a stack file only
names what it changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fanout import topology as topo_keys
from fanout.topology import NAMESPACE, Topology, TopologyError, config_int, from_config, refuse_unknown

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
IDENTITY_MODES = ("cognito", "external", "hs256")
PRICE_CLASSES = ("PriceClass_100", "PriceClass_200", "PriceClass_All")
MFA_MODES = ("optional", "required")
THREAT_PROTECTION_MODES = ("off", "audit", "enforced")
WAF_KEYS = ("enabled", "rateLimitPer5Min", "blockDirectApi", "blockedAlarmThreshold")
# The API's routes as "METHOD /path": the keys of per-method throttles.
ROUTES = ("POST /data", "GET /data", "GET /data/{id}", "GET /openapi.json")

# The tag naming a resource's stack where a name cannot (KMS keys): infra/deploy_role.py relies on it.
STACK_TAG = "fanout-stack"
# Keys read as plain strings; every other key is JSON (numbers, booleans, mappings, lists).
STRING_KEYS = ("prefix", "alarmEmail", "logLevel", "apiStageName", "priceClass", "ordering")
# The known `fanout:` keys are listed once, in fanout/topology.py (add new keys there): a key in
# neither list is refused here and by the local runtime alike.
TOPOLOGY_KEYS = topo_keys.TOPOLOGY_KEYS
INFRA_KEYS = topo_keys.INFRA_KEYS


@dataclass(frozen=True)
class Throttle:
    rate_limit: float  # steady requests per second
    burst_limit: int


@dataclass(frozen=True)
class Network:
    enabled: bool = False
    cidr: str = "10.40.0.0/16"
    az_count: int = 2


@dataclass(frozen=True)
class Identity:
    mode: str  # cognito: the stack creates a user pool; external: trust token.issuer/jwksUrl; hs256: dev only
    domain_prefix: str | None = None  # Cognito hosted UI domain; a random suffix is added when unset
    client_id: str | None = None  # external mode: the web app's OIDC client
    authorize_url: str | None = None
    token_url: str | None = None
    logout_url: str | None = None
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    api_token: str = "access_token"  # external mode: which token the web app sends (Cognito: always id_token)
    mfa: str = "optional"  # cognito: TOTP offered to every user (optional) or demanded at sign-in (required)
    threat_protection: str = "off"  # cognito: off, audit or enforced (needs the Plus feature plan)


@dataclass(frozen=True)
class Waf:
    """AWS WAF in front of the CDN (and the API stage): per-client rate limits, blocked-request alarms."""

    enabled: bool = False
    rate_limit_per_5min: int = 1000  # requests per client IP in any 5 minutes, then 429 until it slows down
    block_direct_api: bool = False  # refuse requests to the execute-api URL that did not come through the CDN
    blocked_alarm_threshold: int = 100  # blocked requests in 5 minutes that raise an alarm


@dataclass(frozen=True)
class CustomDomain:
    """The web app's own names on the CDN, with an ACM certificate (in us-east-1) covering them."""

    names: tuple[str, ...]
    certificate_arn: str


@dataclass(frozen=True)
class Concurrency:
    """Lambda concurrency: the account's quota in the region and what is reserved for the API path."""

    account_limit: int = 1000  # AWS's default per account and region; new accounts often get 10
    api: int | None = None  # reserved executions for the api function; None: shares the unreserved pool
    authorizer: int | None = None


@dataclass(frozen=True)
class AlarmThresholds:
    api_5xx_per_5min: int = 5
    api_latency_p99_ms: int = 2000
    backlog_age_seconds: int = 300


@dataclass(frozen=True)
class Settings:
    stack: str
    topology: Topology
    production: bool
    log_retention_days: int
    log_level: str
    throttle: Throttle
    method_throttles: dict[str, Throttle]
    alarms: bool
    alarm_email: str | None
    thresholds: AlarmThresholds
    network: Network
    identity: Identity
    archive_retention_days: int
    api_stage_name: str
    manage_api_gateway_account: bool
    deletion_protection: bool
    point_in_time_recovery: bool
    price_class: str
    tracing_sdk: bool = False
    persisted_queue: bool = False  # the shared queue of every persisted event, for readers outside the stack
    waf: Waf = Waf()
    concurrency: Concurrency = Concurrency()
    # Problems that only `pulumi up` refuses (a placeholder alarm address): the offline plan lists them.
    deploy_warnings: tuple[str, ...] = ()
    custom_domain: CustomDomain | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def prefix(self) -> str:
        return self.topology.prefix

    @property
    def role_path(self) -> str:
        """The IAM path of every role the stack creates: the deploy role may manage roles there only."""
        return f"/{self.prefix}/"

    @property
    def tags(self) -> dict[str, str]:
        """Tags on what cannot be bounded by name (KMS keys): the deploy role's condition on them."""
        return {STACK_TAG: self.prefix}


def _key(name: str) -> str:
    return f"{NAMESPACE}:{name}"


def _bool(raw: dict[str, Any], key: str, default: bool, parent: str = "") -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise TopologyError(f"{_key(parent + key)} must be true or false, got {value!r}")
    return value


def _mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise TopologyError(f"{_key(key)} must be a mapping")
    return value


def _throttle(raw: Any, where: str, default: Throttle) -> Throttle:
    if not isinstance(raw, dict):
        raise TopologyError(f"{where} must be a mapping with rateLimit and burstLimit")
    rate = raw.get("rateLimit", default.rate_limit)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 10_000:
        raise TopologyError(f"{where}.rateLimit must be a number from 0 (exclusive) to 10000, got {rate!r}")
    return Throttle(float(rate), config_int(raw, "burstLimit", default.burst_limit, 1, 5000, where))


def from_raw(stack: str, raw: dict[str, Any], *, deploy: bool = False) -> Settings:
    """Settings from a stack's `fanout:` keys (namespace stripped); raises TopologyError naming the key.

    What would only stop a deploy (no real alarm address) is listed in `deploy_warnings`, and
    raised only with `deploy` (`pulumi up`/`preview`), so `make plan STACK=prd` still shows the plan.
    """
    refuse_unknown(raw, topo_keys.KNOWN_KEYS, f"{NAMESPACE}:")
    topology = from_config(stack, {k: raw[k] for k in TOPOLOGY_KEYS if k in raw})
    production = _bool(raw, "production", stack == "prd")

    retention = raw.get("logRetentionDays", 90 if production else 14)
    if retention not in LOG_RETENTION_DAYS:
        raise TopologyError(f"{_key('logRetentionDays')} must be one of {LOG_RETENTION_DAYS}, got {retention!r}")
    level = raw.get("logLevel", "INFO")
    if level not in LOG_LEVELS:
        raise TopologyError(f"{_key('logLevel')} must be one of {LOG_LEVELS}, got {level!r}")

    throttle_raw = _mapping(raw, "throttle")
    refuse_unknown(throttle_raw, ("rateLimit", "burstLimit", "methods"), f"{_key('throttle')}.")
    stage_default = Throttle(100.0, 200) if production else Throttle(20.0, 40)
    throttle = _throttle({k: v for k, v in throttle_raw.items() if k != "methods"}, _key("throttle"), stage_default)
    methods_raw = throttle_raw.get("methods", {"POST /data": {"rateLimit": throttle.rate_limit / 2}})
    if not isinstance(methods_raw, dict):
        raise TopologyError(f"{_key('throttle')}.methods must map 'METHOD /path' to limits")
    method_throttles = {}
    for route, limits in methods_raw.items():
        if route not in ROUTES:
            raise TopologyError(f"{_key('throttle')}.methods: {route!r} is not one of {', '.join(ROUTES)}")
        method_throttles[route] = _throttle(limits, f"{_key('throttle')}.methods[{route}]", throttle)

    email = raw.get("alarmEmail")
    if email is not None and (not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email)):
        raise TopologyError(f"{_key('alarmEmail')} must be an e-mail address, got {email!r}")
    alarms = _bool(raw, "alarms", production)
    deploy_problems = _alarm_address_problems(stack, email, alarms, production)
    if deploy_problems and deploy:
        raise TopologyError(deploy_problems[0])
    th = _mapping(raw, "alarmThresholds")
    refuse_unknown(th, ("api5xxPer5Min", "apiLatencyP99Ms", "backlogAgeSeconds"), f"{_key('alarmThresholds')}.")
    where = _key("alarmThresholds")
    thresholds = AlarmThresholds(
        api_5xx_per_5min=config_int(th, "api5xxPer5Min", 5, 1, 100_000, where),
        api_latency_p99_ms=config_int(th, "apiLatencyP99Ms", 2000, 50, 29_000, where),
        backlog_age_seconds=config_int(th, "backlogAgeSeconds", 300, 60, 1_209_600, where),
    )

    vpc = _mapping(raw, "vpc")
    refuse_unknown(vpc, ("enabled", "cidr", "azCount"), f"{_key('vpc')}.")
    cidr = vpc.get("cidr", Network.cidr)
    if not isinstance(cidr, str) or not re.fullmatch(r"\d+\.\d+\.\d+\.\d+/(1[6-9]|2[0-4])", cidr):
        raise TopologyError(f"{_key('vpc')}.cidr must be an IPv4 CIDR from /16 to /24, got {cidr!r}")
    network = Network(
        enabled=_bool(vpc, "enabled", False, "vpc."),
        cidr=cidr,
        az_count=config_int(vpc, "azCount", 2, 2, 3, _key("vpc")),
    )

    identity = _identity(_mapping(raw, "identity"), topology, production)

    stage = raw.get("apiStageName", "v1")
    if not isinstance(stage, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,64}", stage):
        raise TopologyError(f"{_key('apiStageName')} must be 1-64 letters, digits or '_', got {stage!r}")
    price = raw.get("priceClass", "PriceClass_100")
    if price not in PRICE_CLASSES:
        raise TopologyError(f"{_key('priceClass')} must be one of {PRICE_CLASSES}, got {price!r}")

    return Settings(
        stack=stack,
        topology=topology,
        production=production,
        log_retention_days=retention,
        log_level=level,
        throttle=throttle,
        method_throttles=method_throttles,
        alarms=alarms,
        alarm_email=email,
        thresholds=thresholds,
        network=network,
        identity=identity,
        archive_retention_days=config_int(raw, "archiveRetentionDays", 90 if production else 7, 1, 3650, NAMESPACE),
        api_stage_name=stage,
        manage_api_gateway_account=_bool(raw, "manageApiGatewayAccount", True),
        deletion_protection=_bool(raw, "deletionProtection", production),
        point_in_time_recovery=_bool(raw, "pointInTimeRecovery", production),
        price_class=price,
        # Off by default: Lambda's active tracing still records every invocation, while the X-Ray SDK
        # (in maintenance, support ends February 2027) adds about 210 ms to each cold start.
        tracing_sdk=_bool(raw, "tracingSdk", False),
        # Off by default: it keeps every user's persisted data for 4 days whether anyone reads it or not;
        # a bus consumer (source: bus) is the way to read persisted events.
        persisted_queue=_bool(raw, "persistedQueue", False),
        waf=_waf(_mapping(raw, "waf"), production),
        concurrency=_concurrency(raw, topology),
        deploy_warnings=tuple(deploy_problems),
        custom_domain=_custom_domain(raw.get("customDomain")),
        raw=dict(raw),
    )


# Domains that never receive mail (RFC 2606): an alarm address there is a placeholder.
PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")
PLACEHOLDER_TLDS = ("example", "invalid", "localhost", "test")


def is_placeholder_address(email: str) -> bool:
    domain = email.rpartition("@")[2].lower().rstrip(".")
    return domain.rsplit(".", 1)[-1] in PLACEHOLDER_TLDS or any(
        domain == d or domain.endswith("." + d) for d in PLACEHOLDER_DOMAINS
    )


def _alarm_address_problems(stack: str, email: str | None, alarms: bool, production: bool) -> list[str]:
    """Why alarms of this stack would reach no one: every alarm e-mails fanout:alarmEmail."""
    how = (
        f"set a real address: pulumi config set {_key('alarmEmail')} you@your-domain --stack {stack} "
        "(in CI: the GitHub environment's variable FANOUT_ALARM_EMAIL)"
    )
    if email is not None and is_placeholder_address(email):
        return [f"{_key('alarmEmail')} {email!r} is a placeholder that never receives mail; {how}"]
    if email is None and alarms and production:
        return [f"{_key('alarmEmail')} is not set but this production stack has alarms on; {how}"]
    return []


LAMBDA_UNRESERVED_MIN = 100  # Lambda keeps at least this much of the account's concurrency unreserved
# Service Quotas' code of Lambda's "Concurrent executions" quota (per account and region).
LAMBDA_CONCURRENCY_QUOTA = "L-B99A9384"


def _concurrency(raw: dict[str, Any], topology: Topology) -> Concurrency:
    """Reserved concurrency for the API path, refused when it (or the consumers) cannot fit the account.

    `accountConcurrency` is the quota the offline plan assumes; `pulumi preview`/`up` check the same
    again against the account's real quota (`check_concurrency` with what Service Quotas says).
    """
    limit = config_int(raw, "accountConcurrency", Concurrency.account_limit, 10, 1_000_000, NAMESPACE)
    reserved_raw = _mapping(raw, "reservedConcurrency")
    where = _key("reservedConcurrency")
    refuse_unknown(reserved_raw, ("api", "authorizer"), f"{where}.")
    reserved = {k: config_int(reserved_raw, k, 1, 1, limit, where) for k in ("api", "authorizer") if k in reserved_raw}
    concurrency = Concurrency(account_limit=limit, api=reserved.get("api"), authorizer=reserved.get("authorizer"))
    check_concurrency(topology, concurrency, limit, f"{_key('accountConcurrency')}")
    return concurrency


def check_concurrency(topology: Topology, concurrency: Concurrency, limit: int, source: str) -> None:
    """Raises TopologyError (one line) when the reservations or the consumers cannot fit `limit`.

    `source` says where the limit comes from: the config key, or the quota Service Quotas reported.
    """
    where = _key("reservedConcurrency")
    reserved = {k: v for k, v in (("api", concurrency.api), ("authorizer", concurrency.authorizer)) if v is not None}
    total = sum(reserved.values())
    # Lambda refuses a reservation that leaves less than 100 unreserved (Lambda developer guide,
    # "Configuring reserved concurrency"), so an account with a quota of 10 can reserve nothing.
    if total and total > limit - LAMBDA_UNRESERVED_MIN:
        raise TopologyError(
            f"{where} reserves {total} of the account's {limit} ({source}), but Lambda keeps "
            f"{LAMBDA_UNRESERVED_MIN} unreserved: reserve at most {max(limit - LAMBDA_UNRESERVED_MIN, 0)}, "
            "or raise the account's concurrency quota first"
        )
    # Consumers and the generator draw from the unreserved pool; the api and authorizer too, unless reserved.
    consumers = sum(c.max_concurrency for c in topology.consumers if c.handler) + 1
    unreserved_api = [fn for fn in ("api", "authorizer") if fn not in reserved]
    pool = limit - total
    if consumers + len(unreserved_api) > pool:
        starved = " and ".join(unreserved_api) or "consumers"
        raise TopologyError(
            f"{_key('consumers')} maxConcurrency adds up to {consumers - 1} (plus 1 for the generator), which "
            f"leaves the {starved} nothing of the account's {limit} concurrent executions "
            f"({source}): lower maxConcurrency, reserve concurrency for the API with "
            f"{where}, or raise the account's quota"
        )


def _identity(raw: dict[str, Any], topology: Topology, production: bool) -> Identity:
    auth = topology.auth
    default_mode = "hs256" if auth.algorithms == ("HS256",) else "external" if auth.jwks_url else "cognito"
    mode = raw.get("mode", default_mode)
    where = _key("identity")
    if mode not in IDENTITY_MODES:
        raise TopologyError(f"{where}.mode must be one of {IDENTITY_MODES}, got {mode!r}")
    if (mode == "hs256") != (auth.algorithms == ("HS256",)):
        raise TopologyError(f"{where}.mode hs256 goes with token.algorithms [HS256], and only with it")
    if mode == "hs256" and production:
        raise TopologyError("HS256 tokens are for development stacks only; use cognito or external in production")
    if mode == "external" and not (auth.jwks_url and auth.issuer):
        raise TopologyError(f"{where}.mode external needs {NAMESPACE}:token.jwksUrl and token.issuer")
    if mode == "external" and not auth.audience:
        # Without it, a token the issuer signed for any other application (with a roles claim) would pass.
        raise TopologyError(
            f"{NAMESPACE}:token.audience is required with {where}.mode external "
            "(the client id or API identifier your tokens carry in aud)"
        )
    for key in ("domainPrefix", "clientId", "authorizeUrl", "tokenUrl", "logoutUrl"):
        if key in raw and not isinstance(raw[key], str):
            raise TopologyError(f"{where}.{key} must be a string")
    domain = raw.get("domainPrefix")
    if domain is not None and not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", domain):
        raise TopologyError(f"{where}.domainPrefix must be lowercase letters, digits and '-', got {domain!r}")
    api_token = raw.get("apiToken", Identity.api_token)
    if api_token not in ("access_token", "id_token"):
        raise TopologyError(f"{where}.apiToken must be access_token or id_token, got {api_token!r}")
    scopes = raw.get("scopes", list(Identity.scopes))
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
        raise TopologyError(f"{where}.scopes must be a list of strings")
    mfa = raw.get("mfa", Identity.mfa)
    if mfa not in MFA_MODES:
        raise TopologyError(f"{where}.mfa must be one of {MFA_MODES}, got {mfa!r}")
    threats = raw.get("threatProtection", Identity.threat_protection)
    if threats not in THREAT_PROTECTION_MODES:
        raise TopologyError(f"{where}.threatProtection must be one of {THREAT_PROTECTION_MODES}, got {threats!r}")
    if mode != "cognito" and ("mfa" in raw or "threatProtection" in raw):
        raise TopologyError(f"{where}.mfa and threatProtection apply to mode cognito; your issuer enforces its own")
    return Identity(
        mode=mode,
        domain_prefix=domain,
        client_id=raw.get("clientId"),
        authorize_url=raw.get("authorizeUrl"),
        token_url=raw.get("tokenUrl"),
        logout_url=raw.get("logoutUrl"),
        scopes=tuple(scopes),
        api_token=api_token,
        mfa=mfa,
        threat_protection=threats,
    )


def _waf(raw: dict[str, Any], production: bool) -> Waf:
    where = _key("waf")
    refuse_unknown(raw, WAF_KEYS, f"{where}.")
    enabled = _bool(raw, "enabled", production, "waf.")
    if raw.get("blockDirectApi") is True and not enabled:
        raise TopologyError(f"{where}.blockDirectApi needs {where}.enabled: the web ACL is what blocks")
    return Waf(
        enabled=enabled,
        # AWS WAF's bounds for a rate-based rule over a 5-minute window.
        rate_limit_per_5min=config_int(raw, "rateLimitPer5Min", Waf.rate_limit_per_5min, 10, 2_000_000_000, where),
        # With the WAF on, the execute-api URL answers only the CDN (it cannot be disabled: it is the CDN's origin).
        block_direct_api=_bool(raw, "blockDirectApi", enabled, "waf."),
        blocked_alarm_threshold=config_int(
            raw, "blockedAlarmThreshold", Waf.blocked_alarm_threshold, 1, 1_000_000_000, where
        ),
    )


def _custom_domain(raw: Any) -> CustomDomain | None:
    if raw is None:
        return None
    where = _key("customDomain")
    if not isinstance(raw, dict) or set(raw) != {"names", "certificateArn"}:
        raise TopologyError(f"{where} must be a mapping with exactly names and certificateArn")
    names = raw["names"]
    # Exact names only: the first is the app's URL (sign-in redirects), a wildcard cannot be one.
    host = r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and re.fullmatch(host, n) for n in names):
        raise TopologyError(f"{where}.names must be a non-empty list of lowercase DNS names, got {names!r}")
    arn = raw["certificateArn"]
    # CloudFront reads viewer certificates from ACM in us-east-1 only, whatever the stack's region.
    if not isinstance(arn, str) or not re.fullmatch(
        r"arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[0-9a-f-]{36}", arn
    ):
        raise TopologyError(f"{where}.certificateArn must be an ACM certificate ARN in us-east-1, got {arn!r}")
    return CustomDomain(names=tuple(names), certificate_arn=arn)


def load(*, plan_only: bool = False) -> Settings:
    """Settings of the running Pulumi stack (`plan_only`: see from_raw)."""
    import pulumi

    config = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    # Every key of the namespace, known or not: pulumi.Config answers only for keys asked by name,
    # so an unknown one (a typo) would otherwise be ignored without a word.
    for key in sorted(_namespace_keys() | set(topo_keys.KNOWN_KEYS)):
        known_json = key in topo_keys.KNOWN_KEYS and key not in STRING_KEYS
        value = config.get_object(key) if known_json else config.get(key)
        if value is not None:
            raw[key] = value
    return from_raw(pulumi.get_stack(), raw, deploy=not plan_only)


def _namespace_keys() -> set[str]:
    """The `fanout:` config keys the language host passed (set explicitly or through PULUMI_CONFIG)."""
    from pulumi.runtime import config as runtime_config

    names = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{NAMESPACE}:"
    return {n[len(prefix) :] for n in names if n.startswith(prefix)}
