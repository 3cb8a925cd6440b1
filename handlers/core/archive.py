"""The event archive's layout in S3: newline-delimited JSON, partitioned by the events' date.

Keys are `events/dt=YYYY-MM-DD/<event id>.ndjson`, one object per event, its line the
CloudEvent as published. The key is a function of the event alone, so an event replayed or
redelivered any number of times, in whatever batch, lands where it already is: the archive
holds each event once, with no lookup and no state beside S3. (Objects named after a batch's
ids, as before, held a replayed event again in every new batch it came in.) The date is the
event's own `time`, so a time window maps to a few partitions; ULIDs sort by time, so listings
come out in order. Older objects with several lines stay readable (`from_ndjson`).

The price is one PUT per event instead of one per batch; the PUTs of a batch run in parallel.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

PREFIX = "events/"
CONTENT_TYPE = "application/x-ndjson"


def day(event: dict[str, Any]) -> str:
    # `time` passed schema validation, so it starts with YYYY-MM-DD.
    return str(event["time"][:10])


def partition_prefix(date: str) -> str:
    return f"{PREFIX}dt={date}/"


def object_key(event: dict[str, Any]) -> str:
    """Where an event is archived: a function of its date and id only."""
    event_id = event["id"]
    # Ids are ULIDs once validated; anything else must not choose its own path in the bucket.
    if not isinstance(event_id, str) or not (event_id.isascii() and event_id.isalnum()):
        raise ValueError(f"an archived event id must be letters and digits, got {event_id!r}")
    return f"{partition_prefix(day(event))}{event_id}.ndjson"


def to_ndjson(batch: Iterable[dict[str, Any]]) -> bytes:
    """One compact JSON event per line, one line per id, sorted by id: the same events give the same bytes."""
    unique = {e["id"]: e for e in batch}
    lines = (json.dumps(unique[i], separators=(",", ":"), ensure_ascii=False) for i in sorted(unique))
    return ("\n".join(lines) + "\n").encode()


def from_ndjson(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


PARALLEL_PUTS = 8  # a batch's PUTs at once; boto3 clients are thread-safe


def write(s3: Any, bucket: str, batch: Iterable[dict[str, Any]]) -> dict[str, Exception]:
    """Archive each event of the batch once (a duplicate in the batch is written once).

    Returns the ids of the events whose object could not be written, with the error; the
    others are archived. Writing an event that is already there rewrites the same bytes.
    """
    unique = {e["id"]: e for e in batch}
    if not unique:
        return {}

    def put(event: dict[str, Any]) -> None:
        s3.put_object(Bucket=bucket, Key=object_key(event), Body=to_ndjson([event]), ContentType=CONTENT_TYPE)

    failed: dict[str, Exception] = {}
    with ThreadPoolExecutor(max_workers=min(PARALLEL_PUTS, len(unique))) as pool:
        futures = {event_id: pool.submit(put, event) for event_id, event in unique.items()}
    for event_id, future in futures.items():
        error = future.exception()
        if error is not None:
            failed[event_id] = error  # type: ignore[assignment]
    return failed
