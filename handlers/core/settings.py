"""Environment parsed once into typed settings; a missing variable names itself."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from dataclasses import dataclass


class ConfigurationError(RuntimeError):
    """The function's environment lacks something it needs."""


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def _optional(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


@dataclass(frozen=True)
class AuthSettings:
    algorithms: tuple[str, ...]
    secret: str | None
    secret_arn: str | None
    jwks_url: str | None
    issuer: str | None
    audience: str | None
    roles_claim: str


SUPPORTED_ALGORITHMS = frozenset({"HS256", "RS256", "ES256"})


@functools.cache
def auth_settings() -> AuthSettings:
    algorithms = tuple(a.strip() for a in _required("JWT_ALGORITHMS").split(",") if a.strip())
    # `none` (or anything unexpected) can never be switched on by configuration.
    unsupported = sorted(set(algorithms) - SUPPORTED_ALGORITHMS)
    if not algorithms or unsupported:
        raise ConfigurationError(f"JWT_ALGORITHMS must list only {sorted(SUPPORTED_ALGORITHMS)}, got {unsupported}")
    if "HS256" in algorithms and len(algorithms) > 1:
        # A shared secret beside public keys invites algorithm confusion.
        raise ConfigurationError("JWT_ALGORITHMS cannot mix HS256 with asymmetric algorithms")
    settings = AuthSettings(
        algorithms=algorithms,
        secret=_optional("JWT_SECRET"),
        secret_arn=_optional("JWT_SECRET_ARN"),
        jwks_url=_optional("JWKS_URL"),
        issuer=_optional("JWT_ISSUER"),
        audience=_optional("JWT_AUDIENCE"),
        roles_claim=_optional("ROLES_CLAIM") or "Role",
    )
    if settings.jwks_url and not settings.audience:
        # An issuer's keys sign tokens for every application it serves; without an audience a token
        # meant for any of them would be accepted here.
        raise ConfigurationError("JWKS_URL is set but JWT_AUDIENCE is not: the authorizer needs an audience")
    return settings


@functools.cache
def topic_arn() -> str:
    return _required("TOPIC_ARN")


@functools.cache
def table_name() -> str:
    return _required("TABLE_NAME")


@functools.cache
def idempotency_table_name() -> str:
    return _required("IDEMPOTENCY_TABLE_NAME")


@functools.cache
def event_bus_name() -> str:
    return _required("EVENT_BUS_NAME")


@functools.cache
def cursor_key() -> bytes:
    """The HMAC key that makes pagination cursors tamper-evident, read once per container.

    On AWS the secret lives in Secrets Manager (CURSOR_SECRET_ARN; a plaintext environment variable
    is readable by anyone with lambda:GetFunctionConfiguration). CURSOR_SECRET, the value itself,
    is for the local stack and tests.
    """
    arn = _optional("CURSOR_SECRET_ARN")
    secret = _secret_string(arn) if arn else _required("CURSOR_SECRET")
    # Derive a dedicated key so the raw secret is never used directly as a MAC key.
    return hmac.new(secret.encode(), b"fanout-cursor-v1", hashlib.sha256).digest()


def _secret_string(secret_id: str) -> str:
    from handlers.core import clients

    try:
        value = clients.client("secretsmanager").get_secret_value(SecretId=secret_id).get("SecretString")
    except Exception as exc:  # botocore's errors: name the variable, never the value
        raise ConfigurationError(f"cannot read the secret named by CURSOR_SECRET_ARN: {exc}") from exc
    if not value:
        raise ConfigurationError("the secret named by CURSOR_SECRET_ARN has no string value")
    return str(value)


def generator_users() -> tuple[str, ...]:
    return tuple(u.strip() for u in (_optional("GENERATOR_USERS") or "demo-user").split(",") if u.strip())


def generator_count() -> int:
    raw = _optional("GENERATOR_COUNT") or "5"
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"GENERATOR_COUNT must be an integer, got {raw!r}") from exc


def archive_bucket() -> str:
    # Read on every call (not cached): the unit tests point it at a fresh bucket per test.
    return _required("ARCHIVE_BUCKET")
