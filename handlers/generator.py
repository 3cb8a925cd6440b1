"""Scheduled producer: publishes synthetic, realistic fanout.data.generated.v1 events.

EventBridge Scheduler invokes it with {"count"?, "users"?, "seed"?}; the local runtime's
scheduler and `fanout generate` call the same function. With a seed, the data is
deterministic (ids and times are still new, as every event's must be).
"""

from __future__ import annotations

import random
from typing import Any

from aws_lambda_powertools import Logger

from fanout_kit import Data, DataGenerated
from handlers.core import clients, publisher
from handlers.core.settings import generator_count, generator_users

logger = Logger(service="generator")
clients.warm("sns")

SITES = ("warehouse-1", "warehouse-2", "store-berlin", "store-lyon", "plant-porto", "dock-rotterdam")
READINGS = (
    ("temperature", "°C", 2.0, 31.0),
    ("humidity", "%", 20.0, 90.0),
    ("pallets in stock", "pallets", 0, 480),
    ("orders packed", "orders", 0, 1200),
    ("energy use", "kWh", 3.0, 250.0),
)
MAX_COUNT = 10_000


def synthesize(count: int, users: list[str] | tuple[str, ...], seed: int | None = None) -> list[DataGenerated]:
    rng = random.Random(seed)  # noqa: S311 (synthetic data, not secrets)
    batch = []
    for _ in range(count):
        name, unit, lo, hi = rng.choice(READINGS)
        value = rng.uniform(lo, hi)
        shown = f"{value:.1f}" if isinstance(lo, float) else f"{round(value)}"
        batch.append(
            DataGenerated.new(
                source="fanout.generator",
                subject=rng.choice(list(users)),
                data=Data(information_one=f"{name} at {rng.choice(SITES)}", information_two=f"{shown} {unit}"),
            )
        )
    return batch


def generate(count: int, users: list[str] | tuple[str, ...], seed: int | None = None) -> list[str]:
    """Publish `count` events for `users`; returns their ids."""
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be an integer from 1 to {MAX_COUNT}")
    # A bare string is a sequence too: "alice" would otherwise become the users a, l, i, c, e.
    if isinstance(users, str) or not users or not all(isinstance(u, str) and u.strip() for u in users):
        raise ValueError("users must be a non-empty list of user ids")
    batch = synthesize(count, users, seed)
    publisher.publish_batch(batch)
    return [e.id for e in batch]


@logger.inject_lambda_context
def handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    event = event or {}
    ids = generate(event.get("count", generator_count()), event.get("users") or generator_users(), event.get("seed"))
    logger.info("generated", extra={"count": len(ids)})
    return {"published": len(ids), "ids": ids}
