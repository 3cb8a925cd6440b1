"""Replay from the archive: window parsing, partitions read, filtering, dedupe, same ids re-published."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from unit_support import BUCKET, Aws, sqs_event

from fanout import replay
from fanout_kit import DataGenerated, DataPersisted, events
from handlers import archive, generator
from handlers.core import publisher


def at(text: str) -> datetime:
    return replay.parse_time(text)


def event(time: str, event_type: str = DataGenerated.TYPE) -> dict[str, Any]:
    data: dict[str, str] = {"informationOne": "a", "informationTwo": "b"}
    if event_type == DataPersisted.TYPE:
        data = {"id": "01JDQ8Z3X4M5N6P7Q8R9S0T1V2", **data, "createdAt": time}
    return events.build(event_type, source="fanout.test", subject="alice", data=data, time=time)


def archive_batches(context: Any, *batches: list[dict[str, Any]]) -> None:
    for batch in batches:
        assert archive.handler(sqs_event(*batch), context) == {"batchItemFailures": []}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T12:00:00Z", "2026-01-31T12:00:00+00:00"),
        ("2026-01-31T12:00:00.250Z", "2026-01-31T12:00:00.250000+00:00"),
        ("2026-01-31T13:00:00+01:00", "2026-01-31T12:00:00+00:00"),
        ("2026-01-31T12:00", "2026-01-31T12:00:00+00:00"),
        ("2026-01-31", "2026-01-31T00:00:00+00:00"),
    ],
)
def test_times_are_iso_8601_and_utc_by_default(text: str, expected: str) -> None:
    assert at(text).isoformat() == expected


@pytest.mark.parametrize("text", ["yesterday", "", "2026-13-01", "31/01/2026"])
def test_a_bad_time_names_the_option(text: str) -> None:
    with pytest.raises(replay.ReplayError, match="--since"):
        replay.parse_time(text, name="--since")


def test_a_window_reads_only_its_days() -> None:
    assert replay.days(at("2026-01-30T23:00:00Z"), at("2026-02-01T00:00:00Z")) == ["2026-01-30", "2026-01-31"]
    assert replay.days(at("2026-01-30T10:00:00Z"), at("2026-01-30T11:00:00Z")) == ["2026-01-30"]


def test_replay_publishes_the_window_once_per_id_oldest_first(s3: Any, context: Any) -> None:
    before, first, second, edge, later = (
        event("2026-03-01T09:59:59.999Z"),
        event("2026-03-01T10:00:00.000Z"),
        event("2026-03-02T08:00:00.000Z"),
        event("2026-03-02T12:00:00.000Z"),
        event("2026-03-03T00:00:00.000Z"),
    )
    # The same events archived twice in different batches (a redelivery, an earlier replay).
    archive_batches(context, [before, first, second], [first, edge, later], [second])
    published: list[list[dict[str, Any]]] = []
    count = replay.replay(s3, BUCKET, at("2026-03-01T10:00:00Z"), at("2026-03-02T12:00:00Z"), publish_into(published))
    flat = [e for chunk in published for e in chunk]
    # since is inclusive, until exclusive; each id once; the events exactly as archived.
    assert count == 2 and flat == [first, second]


def test_replay_filters_by_type(s3: Any, context: Any) -> None:
    generated, persisted = event("2026-04-01T10:00:00.000Z"), event("2026-04-01T10:00:01.000Z", DataPersisted.TYPE)
    archive_batches(context, [generated, persisted])
    published: list[list[dict[str, Any]]] = []
    window = (at("2026-04-01"), at("2026-04-02"))
    assert replay.replay(s3, BUCKET, *window, publish_into(published), DataPersisted.TYPE) == 1
    assert published == [[persisted]]


def test_replayed_events_reach_the_topic_with_their_ids(s3: Any, aws: Aws, context: Any) -> None:
    source = [e.to_dict() for e in generator.synthesize(23, ["alice", "bob"], seed=9)]
    archive_batches(context, source[:10], source[10:])
    today = datetime.now(UTC).date().isoformat()
    window = (at(today), at(f"{today}T23:59:59.999Z"))
    assert replay.replay(s3, BUCKET, *window, publisher.publish_batch) == 23
    published = aws.published()
    assert sorted(json.dumps(e, sort_keys=True) for e in published) == sorted(
        json.dumps(e, sort_keys=True) for e in source
    )


def test_an_empty_or_reversed_window(s3: Any) -> None:
    assert replay.replay(s3, BUCKET, at("2020-01-01"), at("2020-01-02"), publish_into([])) == 0
    with pytest.raises(replay.ReplayError, match="until"):
        replay.replay(s3, BUCKET, at("2020-01-02"), at("2020-01-01"), publish_into([]))


def test_the_bus_archive_replay_is_started_on_eventbridge(aws: Aws) -> None:
    bus_arn = aws.events.describe_event_bus(Name=aws.bus)["Arn"]
    archive_arn = aws.events.create_archive(ArchiveName="persisted", EventSourceArn=bus_arn)["ArchiveArn"]
    name = replay.start_bus_replay(aws.events, archive_arn, bus_arn, at("2026-01-01"), at("2026-01-02"))
    assert name == "fanout-20260101T000000-20260102T000000"
    described = aws.events.describe_replay(ReplayName=name)
    assert described["EventSourceArn"] == archive_arn and described["Destination"]["Arn"] == bus_arn


def publish_into(sink: list[list[dict[str, Any]]]) -> Any:
    def publish(batch: list[dict[str, Any]]) -> int:
        sink.append(list(batch))
        return len(batch)

    return publish
