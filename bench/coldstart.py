"""Cold start proxy: what a fresh process pays to import a handler and build its clients, beside its floor.

Each figure is the median of N fresh interpreters (`-X importtime` would add its own overhead;
a perf_counter around the imports in a child process measures the same thing with less).
The environment is the deployed one: the X-Ray SDK off (Lambda's active tracing needs none; a stack
turns the SDK on with fanout:tracingSdk, at about 210 ms of cold start), a region set, so handlers
that build their clients at import do so here too.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# module -> the AWS clients it needs (its floor: boto3 plus these; PyJWT alone for the authorizer).
HANDLERS: dict[str, tuple[str, ...]] = {
    "handlers.authorizer": (),
    "handlers.api": ("sns", "dynamodb"),
    "handlers.persister": ("dynamodb", "events"),
    "handlers.generator": ("sns",),
}
TARGET_AUTHORIZER_MS = 100.0
TARGET_RATIO = 1.3

_TIMED = """
import time
t0 = time.perf_counter()
{body}
print((time.perf_counter() - t0) * 1000)
"""


def _env(tracing: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:bench",
        TABLE_NAME="bench",
        IDEMPOTENCY_TABLE_NAME="bench-idem",
        EVENT_BUS_NAME="bench",
        ARCHIVE_BUCKET="bench",
        CURSOR_SECRET="bench",
        JWT_ALGORITHMS="HS256",
        JWT_SECRET="bench-secret-that-is-long-enough-for-hs256-0123456789",
        POWERTOOLS_METRICS_NAMESPACE="fanout",
        PYTHONDONTWRITEBYTECODE="",
    )
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def _median_ms(body: str, runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _TIMED.format(body=body)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def handler_body(module: str, services: tuple[str, ...]) -> str:
    lines = [f"import {module}"]
    if services:
        lines.append("from handlers.core.clients import client")
        lines += [f"client({s!r})" for s in services]
    return "\n".join(lines)


def floor_body(services: tuple[str, ...]) -> str:
    if not services:
        return "import jwt"
    lines = ["import boto3"]
    lines += [f"boto3.session.Session().client({s!r})" for s in services]
    return "\n".join(lines)


def measure(runs: int = 15, tracing: bool = False) -> dict[str, Any]:
    env = _env(tracing)
    # Warm the OS page cache and the bytecode caches once, so the first sample is not an outlier.
    for module, services in HANDLERS.items():
        _median_ms(handler_body(module, services), 1, env)
    out: dict[str, Any] = {"runs": runs, "tracing": tracing, "handlers": {}}
    for module, services in HANDLERS.items():
        ms = _median_ms(handler_body(module, services), runs, env)
        floor = _median_ms(floor_body(services), runs, env)
        ratio = ms / floor if floor else None
        if services:
            met = ratio is not None and ratio <= TARGET_RATIO
            target = f"<= {TARGET_RATIO}x floor"
        else:
            met = ms < TARGET_AUTHORIZER_MS
            target = f"< {TARGET_AUTHORIZER_MS:.0f} ms"
        out["handlers"][module] = {
            "ms": ms,
            "floor_ms": floor,
            "floor": "PyJWT" if not services else "boto3 + " + ", ".join(services),
            "ratio": ratio,
            "target": target,
            "met": met,
        }
    return out
