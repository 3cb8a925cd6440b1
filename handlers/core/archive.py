"""The event archive's layout in S3: newline-delimited JSON, partitioned by the events' date.

One object per consumer batch and day: `events/dt=YYYY-MM-DD/<first id>-<digest>.ndjson`, a
line per event (the CloudEvent as published), sorted by id. S3 bills a PUT per object ($5 per
million), so a batch of 100 events costs one PUT instead of 100. The key is a function of the
batch's events alone (its smallest id, then a digest of all its ids): a batch retried as it was
rewrites the same object. A replayed or redelivered event that arrives in another batch is
written again in that batch's object; readers deduplicate by event id (`fanout/replay.py`), so
what a replay reads holds each event once, and an event is never lost: a batch whose object
could not be written is retried whole. The date is the event's own `time`, so a time window
maps to a few partitions; ULIDs sort by time, so listings come out roughly in order. Objects of
the older one-per-event layout (`<event id>.ndjson`) read the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

PREFIX = "events/"
CONTENT_TYPE = "application/x-ndjson"


def day(event: dict[str, Any]) -> str:
    # `time` passed schema validation, so it starts with YYYY-MM-DD.
    return str(event["time"][:10])


def partition_prefix(date: str) -> str:
    return f"{PREFIX}dt={date}/"


def check_id(event_id: Any) -> str:
    # Ids are ULIDs once validated; anything else must not choose its own path in the bucket.
    if not isinstance(event_id, str) or not event_id or not (event_id.isascii() and event_id.isalnum()):
        raise ValueError(f"an archived event id must be letters and digits, got {event_id!r}")
    return event_id


def object_key(events: Iterable[dict[str, Any]]) -> str:
    """Where events of one day are archived together: a function of their date and ids only."""
    unique = {check_id(e["id"]): e for e in events}
    if not unique:
        raise ValueError("an archive object holds at least one event")
    days = {day(e) for e in unique.values()}
    if len(days) != 1:
        raise ValueError(f"an archive object holds events of one day, got {', '.join(sorted(days))}")
    ids = sorted(unique)
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    return f"{partition_prefix(days.pop())}{ids[0]}-{digest}.ndjson"


def to_ndjson(batch: Iterable[dict[str, Any]]) -> bytes:
    """One compact JSON event per line, one line per id, sorted by id: the same events give the same bytes."""
    unique = {e["id"]: e for e in batch}
    lines = (json.dumps(unique[i], separators=(",", ":"), ensure_ascii=False) for i in sorted(unique))
    return ("\n".join(lines) + "\n").encode()


def from_ndjson(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def write(s3: Any, bucket: str, batch: Iterable[dict[str, Any]]) -> dict[str, Exception]:
    """Archive the batch: one object per day its events fall on (a duplicate in the batch is written once).

    Returns the ids of the events that are not archived, with the error: every event of an object
    that could not be written (the caller retries them), or an event whose id cannot name an object.
    """
    failed: dict[str, Exception] = {}
    by_day: defaultdict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for event in batch:
        try:
            by_day[day(event)][check_id(event["id"])] = event
        except (ValueError, KeyError, TypeError) as exc:
            failed[str(event.get("id"))] = exc
    for events in by_day.values():
        try:
            s3.put_object(
                Bucket=bucket,
                Key=object_key(events.values()),
                Body=to_ndjson(events.values()),
                ContentType=CONTENT_TYPE,
            )
        except Exception as exc:  # any failure: the events stay on the queue and come back
            failed.update(dict.fromkeys(events, exc))
    return failed
