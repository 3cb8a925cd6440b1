"""Replay: read archived events of a time window back from S3 and publish them again, same ids.

The archive is partitioned by the events' date (events/dt=YYYY-MM-DD/), so a window reads
only its days' partitions. The archive writes one object per consumer batch, so an event
redelivered or replayed in another batch is in several objects: this module reads each id
once. Events keep their ids, so the persister (idempotent by id) rewrites the same items:
a replay restores what was lost and duplicates nothing.

On AWS the persisted stream also has an EventBridge archive; `start_bus_replay` replays it
onto the bus with StartReplay (EventBridge does the work; this only starts it).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from fanout import untrusted
from fanout.text import printable
from handlers.core import archive

Publish = Callable[[list[dict[str, Any]]], int]
Skip = Callable[[str], None]  # told each archive line replay passes over: "s3://bucket/key line N: why"
log = logging.getLogger("fanout.replay")
PUBLISH_CHUNK = 500  # events held in memory between publishes


class ReplayError(ValueError):
    pass


def parse_time(text: str, *, name: str = "time") -> datetime:
    """ISO 8601 to an aware UTC datetime; a time without an offset is UTC, a bare date is its midnight."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReplayError(
            f"{name} must be an ISO 8601 date or time such as 2026-01-31T12:00:00Z, got {text!r}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def days(since: datetime, until: datetime) -> list[str]:
    """The dt= partitions a [since, until) window touches."""
    first, last = since.date(), (until - timedelta(microseconds=1)).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _keys(s3: Any, bucket: str, day: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=archive.partition_prefix(day)):
        for obj in page.get("Contents", []):
            yield obj["Key"]


def _skip_to_log(line: str) -> None:
    log.warning("replay skipped %s", line)


def _events(body: bytes, where: str, skip: Skip) -> Iterator[tuple[dict[str, Any], datetime]]:
    """The events of one archive object with their times; each line that is not one is skipped and named.

    Anyone who can write to the bucket chooses these bytes: one bad line costs that line, never the rest.
    """
    from fanout_kit import events as cloudevents

    for n, line in enumerate(body.split(b"\n"), 1):
        if not line.strip():
            continue
        parsed = untrusted.parse(line)
        event = parsed.value
        if not parsed.ok:
            problem = parsed.problem
        elif not isinstance(event, dict):
            problem = f"a JSON {type(event).__name__}, not an event object"
        else:
            try:
                cloudevents.validate(event)
                when = parse_time(event["time"])
            except (cloudevents.InvalidEvent, ReplayError) as exc:
                problem = f"not a valid event ({str(exc)[:200]})"
            else:
                yield event, when
                continue
        skip(printable(f"{where} line {n}: {problem}"))


def archived(
    s3: Any,
    bucket: str,
    since: datetime,
    until: datetime,
    event_type: str | None = None,
    skip: Skip = _skip_to_log,
) -> Iterator[dict[str, Any]]:
    """Each archived event with since <= time < until (and of event_type), once per id, day by day.

    A line that is not a valid event is passed over: `skip` is told where and why, in one line."""
    seen: set[str] = set()
    for day in days(since, until):
        found: dict[str, dict[str, Any]] = {}
        for key in _keys(s3, bucket, day):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            for event, when in _events(body, f"s3://{bucket}/{key}", skip):
                if event["id"] in seen or (event_type and event.get("type") != event_type):
                    continue
                if since <= when < until:
                    found[event["id"]] = event
        seen |= set(found)
        # Oldest first, so consumers see a replay in the order the events happened.
        yield from sorted(found.values(), key=lambda e: (e["time"], e["id"]))


def replay(
    s3: Any,
    bucket: str,
    since: datetime,
    until: datetime,
    publish: Publish,
    event_type: str | None = None,
    skip: Skip = _skip_to_log,
) -> int:
    """Publish the window's archived events again; returns how many. Archive lines that are not
    valid events are passed over, each named to `skip` in one line."""
    if until <= since:
        raise ReplayError("--until must be after --since")
    total, chunk = 0, []
    for event in archived(s3, bucket, since, until, event_type, skip):
        chunk.append(event)
        if len(chunk) >= PUBLISH_CHUNK:
            total += publish(chunk)
            chunk = []
    if chunk:
        total += publish(chunk)
    return total


def start_bus_replay(
    events: Any, archive_arn: str, bus_arn: str, since: datetime, until: datetime, name: str | None = None
) -> str:
    """Start an EventBridge replay of the bus archive's window onto the bus; returns the replay's name."""
    if until <= since:
        raise ReplayError("--until must be after --since")
    replay_name = name or f"fanout-{since:%Y%m%dT%H%M%S}-{until:%Y%m%dT%H%M%S}"
    if not re.fullmatch(r"[.\-_A-Za-z0-9]{1,64}", replay_name):
        raise ReplayError(f"replay name {replay_name!r} is not a valid EventBridge replay name")
    events.start_replay(
        ReplayName=replay_name,
        EventSourceArn=archive_arn,
        EventStartTime=since,
        EventEndTime=until,
        Destination={"Arn": bus_arn},
    )
    return replay_name


def to_queue(sqs: Any, queue_url: str, accepts: Callable[[dict[str, Any]], bool] | None = None) -> Publish:
    """A publish function that delivers to one consumer's queue as the topic would (raw body, type/subject
    attributes), skipping what its filter refuses: `replay --consumer` re-delivers to that consumer alone."""
    from fanout_kit import events as cloudevents
    from fanout_kit import ids
    from handlers.core import charset, publisher

    # A FIFO queue (a topic consumer's on a fifo stack): group by subject, deduplicate within this run only.
    fifo, run = publisher.is_fifo(queue_url), ids.new_id()

    def publish(batch: list[dict[str, Any]]) -> int:
        chosen = [e for e in batch if accepts is None or accepts(e)]
        sent = 0
        for start in range(0, len(chosen), 10):
            entries = [
                {
                    "Id": str(i),
                    # What SQS accepts, as the publisher writes it for the topic.
                    "MessageBody": charset.sqs_json(e),
                    "MessageAttributes": cloudevents.sns_attributes(e),
                    **publisher.ordering_fields(e, fifo, run),
                }
                for i, e in enumerate(chosen[start : start + 10])
            ]
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            if response.get("Failed"):
                raise ReplayError(f"{len(response['Failed'])} events could not be sent to {queue_url}")
            sent += len(response.get("Successful", []))
        return sent

    return publish


def filter_matcher(policy: dict[str, Any] | None, scope: str = "MessageAttributes") -> Callable[[dict[str, Any]], bool]:
    """Whether the topic would deliver an event to a subscription with this filter policy."""
    if not policy:
        return lambda _e: True
    from moto.sns.utils import FilterPolicyMatcher  # the local emulator's own matcher

    from fanout_kit import events as cloudevents

    matcher = FilterPolicyMatcher(policy, scope)

    def accepts(event: dict[str, Any]) -> bool:
        sent = cloudevents.sns_attributes(event)
        attrs = {k: {"Type": v["DataType"], "Value": v["StringValue"]} for k, v in sent.items()}
        return bool(matcher.matches(attrs, json.dumps(event)))

    return accepts
