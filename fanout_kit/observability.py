"""Metrics and Tracer for a handler, each paid for only when used.

Tracer() loads aws_xray_sdk (about a quarter of a second of cold start), so it is built
only where tracing is on; elsewhere a no-op stand-in keeps the same decorators. Handlers
use tracing only through Powertools, so the backend can move to OpenTelemetry later.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("1", "true")


class _NoTracer:
    """Same decorator surface as Powertools Tracer, doing nothing."""

    def capture_lambda_handler(self, fn: F | None = None, **_: Any) -> Any:
        return fn if fn is not None else (lambda f: f)

    def capture_method(self, fn: F | None = None, **_: Any) -> Any:
        return fn if fn is not None else (lambda f: f)

    def put_annotation(self, key: str, value: Any) -> None:
        return None


class _NoMetrics:
    """Same surface as Powertools Metrics, recording nothing.

    Used where POWERTOOLS_METRICS_DISABLED is set (the local runtime, tests): a disabled Powertools
    Metrics still accumulates metrics in memory and prints them once 100 have piled up.
    """

    def add_metric(self, **_: Any) -> None:
        return None

    def log_metrics(self, fn: F | None = None, **_: Any) -> Any:
        return fn if fn is not None else (lambda f: f)


def metrics(service: str) -> Any:
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if is_metrics_disabled():
        return _NoMetrics()
    from aws_lambda_powertools import Metrics

    return Metrics(namespace="fanout", service=service)


def tracer(service: str) -> Any:
    if not tracing_enabled():
        return _NoTracer()
    from aws_lambda_powertools import Tracer

    return Tracer(service=service)
