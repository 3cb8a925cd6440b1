"""boto3 clients built once per container, configured only through boto3's standard settings.

AWS_ENDPOINT_URL, AWS_REGION and credentials come from the environment, so the same
code talks to AWS or to the local emulated endpoint without an `if local:` branch.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

_lock = threading.Lock()


@functools.cache
def _config() -> Any:
    from botocore.config import Config

    # Standard retry mode backs off on throttling; connect/read timeouts keep a stuck call from eating the
    # whole function timeout. Pool size covers the local runtime's concurrent threads.
    return Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=3,
        read_timeout=10,
        max_pool_connections=50,
    )


@functools.cache
def _client(service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service, config=_config())


def client(service: str) -> Any:
    # Session creation is not thread-safe; the local runtime calls handlers from several threads.
    with _lock:
        return _client(service)


def warm(*services: str) -> None:
    """Build clients during the init phase (boosted CPU on Lambda, once per container), not on the first request.

    Skipped when no region is configured (e.g. a bare import in a tool), where creation would fail.
    """
    if os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
        for service in services:
            client(service)


def reset() -> None:
    """Forget built clients (tests that change the environment)."""
    with _lock:
        _client.cache_clear()
