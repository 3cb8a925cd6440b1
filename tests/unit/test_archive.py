"""The archive consumer: SQS batch in, one NDJSON object per batch and day in S3, failures reported."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from unit_support import BUCKET, Aws, assert_valid, failures, sqs_event, sqs_record

from fanout import replay
from fanout_kit import DataGenerated, events
from handlers import archive
from handlers.core import archive as layout
from handlers.core import clients


def event(user: str = "alice", time: str | None = None, **kwargs: Any) -> dict[str, Any]:
    return events.build(
        DataGenerated.TYPE,
        source="fanout.test",
        subject=user,
        data={"informationOne": "one", "informationTwo": "two"},
        time=time,
        **kwargs,
    )


def objects(s3: Any) -> dict[str, list[dict[str, Any]]]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {k: layout.from_ndjson(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in keys}


def test_a_batch_becomes_one_ndjson_object_in_its_date_partition(s3: Any, context: Any) -> None:
    batch = [event("alice", "2026-03-04T10:00:00.000Z"), event("bob", "2026-03-04T23:59:59.999Z"), event("ünï 😀")]
    batch[2]["time"] = "2026-03-04T12:00:00Z"
    assert archive.handler(sqs_event(*batch), context) == {"batchItemFailures": []}
    found = objects(s3)
    key = layout.object_key(batch)
    assert list(found) == [key]
    smallest = min(e["id"] for e in batch)
    assert key.startswith(f"events/dt=2026-03-04/{smallest}-") and key.endswith(".ndjson")
    # The lines are the CloudEvents exactly as received, sorted by id.
    assert found[key] == sorted(batch, key=lambda e: e["id"])
    for line in found[key]:
        assert_valid("fanout.data.generated.v1.json", line)
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentType"] == "application/x-ndjson"
    raw = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert raw.endswith("\n") and raw.count("\n") == 3 and "ünï 😀" in raw


def test_one_put_per_batch_not_per_event(s3: Any, context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 bills each PUT: a batch of 100 events of one day is one PUT (it was 100)."""
    client = clients.client("s3")
    real, puts = client.put_object, []

    def counted(**kwargs: Any) -> Any:
        puts.append(kwargs["Key"])
        return real(**kwargs)

    monkeypatch.setattr(client, "put_object", counted)
    batch = [event(time=f"2026-03-05T10:{i // 60:02d}:{i % 60:02d}.000Z") for i in range(100)]
    assert archive.handler(sqs_event(*batch), context) == {"batchItemFailures": []}
    assert len(puts) == 1
    (lines,) = objects(s3).values()
    assert {e["id"] for e in lines} == {e["id"] for e in batch}


def test_events_of_different_dates_go_to_their_own_partitions(s3: Any, context: Any) -> None:
    days = ["2026-01-31T23:59:59.999Z", "2026-02-01T00:00:00.000Z", "2026-02-01T08:00:00.000Z"]
    batch = [event(time=t) for t in days]
    assert archive.handler(sqs_event(*batch), context) == {"batchItemFailures": []}
    found = objects(s3)
    assert sorted(k.split("/")[1] for k in found) == ["dt=2026-01-31", "dt=2026-02-01"]
    for key, lines in found.items():
        assert all(key.split("/")[1] == f"dt={e['time'][:10]}" for e in lines)
    assert sorted(e["id"] for lines in found.values() for e in lines) == sorted(e["id"] for e in batch)


def test_replayed_and_redelivered_events_are_read_back_once(s3: Any, context: Any) -> None:
    """Replays and redeliveries in other batches, orders and company: replay reads each event once."""
    first = [event(time="2026-05-05T05:05:05.000Z") for _ in range(5)]
    archive.handler(sqs_event(*first), context)
    before = objects(s3)
    archive.handler(sqs_event(*reversed(first), first[0]), context)  # the batch retried: a duplicate inside
    assert objects(s3) == before  # the same events rewrite the same object
    later = [event(time="2026-05-05T06:00:00.000Z") for _ in range(3)]
    archive.handler(sqs_event(first[1], *later, first[3]), context)  # replayed among new events
    archive.handler(sqs_event(first[2]), context)  # alone
    archive.handler(sqs_event(*first, *later), context)  # the whole window again
    after = objects(s3)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing overwritten with less
    window = (replay.parse_time("2026-05-05"), replay.parse_time("2026-05-06"))
    read = [e["id"] for e in replay.archived(s3, BUCKET, *window)]
    assert sorted(read) == sorted(e["id"] for e in first + later)


def test_key_depends_on_the_date_and_ids_only() -> None:
    a, b = event(time="2026-01-01T10:00:00Z"), event(time="2026-01-01T11:00:00Z")
    same = {**a, "subject": "someone else", "data": {"informationOne": "x", "informationTwo": "y"}}
    assert layout.object_key([a, b]) == layout.object_key([b, same]) == layout.object_key([a, b, a])
    assert layout.object_key([a]) != layout.object_key([a, b])
    assert layout.object_key([a]).startswith(f"events/dt=2026-01-01/{a['id']}-")
    with pytest.raises(ValueError, match="letters and digits"):
        layout.object_key([{**a, "id": "../../escape"}])
    with pytest.raises(ValueError, match="one day"):
        layout.object_key([a, event(time="2026-01-02T00:00:00Z")])


def test_an_id_that_cannot_name_an_object_fails_alone(s3: Any) -> None:
    good = event(time="2026-06-02T00:00:00.000Z")
    failed = layout.write(s3, BUCKET, [good, {**event(time="2026-06-02T00:00:01.000Z"), "id": "../x"}])
    assert list(failed) == ["../x"] and "letters and digits" in str(failed["../x"])
    assert [e["id"] for lines in objects(s3).values() for e in lines] == [good["id"]]


def test_poison_records_fail_alone(s3: Any, context: Any) -> None:
    good = [event(time="2026-06-01T00:00:00.000Z"), event(time="2026-06-01T00:00:01.000Z")]
    bad_json = sqs_record("not json at all")
    bad_event = sqs_record(json.dumps({**good[0], "data": {"informationOne": "no second field"}}))
    unknown = sqs_record(json.dumps({**good[0], "type": "fanout.data.unknown.v9"}))
    records = [sqs_record(json.dumps(good[0])), bad_json, bad_event, sqs_record(json.dumps(good[1])), unknown]
    answer = archive.handler({"Records": records}, context)
    assert failures(answer) == {bad_json["messageId"], bad_event["messageId"], unknown["messageId"]}
    assert sorted(line["id"] for lines in objects(s3).values() for line in lines) == sorted(e["id"] for e in good)


def test_persisted_events_are_archived_too(s3: Any, context: Any) -> None:
    from handlers.core import store
    from handlers.persister import persisted_event

    record = store.Record("alice", event()["id"], "one", "two", "2026-07-07T07:07:07.000Z")
    persisted = persisted_event(record).to_dict()
    assert archive.handler(sqs_event(persisted), context) == {"batchItemFailures": []}
    (lines,) = objects(s3).values()
    assert lines == [persisted]


def test_a_failed_put_fails_only_that_days_events(s3: Any, context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = clients.client("s3")
    real = client.put_object

    def flaky(**kwargs: Any) -> Any:
        if "dt=2026-08-01" in kwargs["Key"]:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject")
        return real(**kwargs)

    monkeypatch.setattr(client, "put_object", flaky)
    ok, doomed = event(time="2026-08-02T00:00:00.000Z"), event(time="2026-08-01T00:00:00.000Z")
    batch = sqs_event(ok, doomed)
    answer = archive.handler(batch, context)
    assert failures(answer) == {batch["Records"][1]["messageId"]}
    assert [k.split("/")[1] for k in objects(s3)] == ["dt=2026-08-02"]


def test_a_whole_batch_failing_is_reported_not_raised(s3: Any, context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHIVE_BUCKET", "no-such-bucket")
    batch = sqs_event(event(), event())
    answer = archive.handler(batch, context)
    assert failures(answer) == {r["messageId"] for r in batch["Records"]}


def test_missing_bucket_setting_names_itself(aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIVE_BUCKET", raising=False)
    from handlers.core.settings import ConfigurationError, archive_bucket

    with pytest.raises(ConfigurationError, match="ARCHIVE_BUCKET"):
        archive_bucket()
