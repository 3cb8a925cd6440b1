"""The event archive's layout in S3: newline-delimited JSON, partitioned by the events' date.

Keys are `events/dt=YYYY-MM-DD/<first id>-<digest>.ndjson`. The date is the event's own
`time`, so a time window maps to a few partitions; the digest covers the sorted event ids,
so the same batch delivered again rewrites the same object instead of adding one. The
first (smallest) id leads the name because ULIDs sort by time, so listings come out in order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

PREFIX = "events/"


def day(event: dict[str, Any]) -> str:
    # `time` passed schema validation, so it starts with YYYY-MM-DD.
    return event["time"][:10]


def partition_prefix(date: str) -> str:
    return f"{PREFIX}dt={date}/"


def object_key(date: str, event_ids: Iterable[str]) -> str:
    ordered = sorted(set(event_ids))
    if not ordered:
        raise ValueError("an archive object holds at least one event")
    digest = hashlib.sha256("\n".join(ordered).encode()).hexdigest()[:24]
    return f"{partition_prefix(date)}{ordered[0]}-{digest}.ndjson"


def to_ndjson(batch: Iterable[dict[str, Any]]) -> bytes:
    """One compact JSON event per line, one line per id, sorted by id: the same events give the same bytes."""
    unique = {e["id"]: e for e in batch}
    lines = (json.dumps(unique[i], separators=(",", ":"), ensure_ascii=False) for i in sorted(unique))
    return ("\n".join(lines) + "\n").encode()


def from_ndjson(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]
