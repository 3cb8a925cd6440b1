"""Idempotency-Key support on Powertools idempotency, backed by DynamoDB.

The key hashed is (user, Idempotency-Key), so keys of different users never collide;
the body is the payload checked on reuse, so the same key with another body is refused.
Loaded lazily: only requests that carry the header pay its import time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from handlers.core.clients import client
from handlers.core.settings import idempotency_table_name

TTL_SECONDS = 24 * 3600


class KeyReused(Exception):
    """The key was used before with a different body."""


class KeyInProgress(Exception):
    """Another request with this key is still being handled."""


def valid_key(key: str) -> bool:
    """1 to 255 printable characters, as the contract says (HTTP already strips surrounding spaces)."""
    return 1 <= len(key) <= 255 and key.isprintable() and key == key.strip()


@functools.cache
def _runner() -> tuple[Callable[..., dict[str, Any]], Any]:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    layer = DynamoDBPersistenceLayer(table_name=idempotency_table_name(), boto3_client=client("dynamodb"))
    config = IdempotencyConfig(
        event_key_jmespath="[user, key]",
        payload_validation_jmespath="body",
        expires_after_seconds=TTL_SECONDS,
        raise_on_no_idempotency_key=True,
    )

    @idempotent_function(data_keyword_argument="request", persistence_store=layer, config=config)  # type: ignore[untyped-decorator]
    def run(request: dict[str, Any], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return action()

    return run, config


def once(
    user: str, key: str, body: dict[str, Any], action: Callable[[], dict[str, Any]], context: Any = None
) -> dict[str, Any]:
    """Run action once per (user, key) within 24 h; later calls return its first result."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    run, config = _runner()
    if context is not None:
        # Lets an interrupted request's in-progress record expire with the invocation.
        config.register_lambda_context(context)
    try:
        return run(request={"user": user, "key": key, "body": body}, action=action)
    except IdempotencyValidationError:
        raise KeyReused("Idempotency-Key was already used with a different body") from None
    except IdempotencyAlreadyInProgressError:
        raise KeyInProgress("a request with this Idempotency-Key is still in progress") from None
