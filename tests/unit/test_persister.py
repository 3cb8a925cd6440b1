"""The persister: SQS batch in, DynamoDB items and EventBridge announcements out, failures reported."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from unit_support import Aws, assert_valid, call_api, failures, sqs_event, sqs_record

from fanout_kit import DataGenerated, DataPersisted, events
from handlers import persister
from handlers.core import clients, store


def event(user: str = "alice", one: str = "one", two: str = "two", **kwargs: Any) -> dict[str, Any]:
    return events.build(
        DataGenerated.TYPE,
        source="fanout.test",
        subject=user,
        data={"informationOne": one, "informationTwo": two},
        **kwargs,
    )


def run(context: Any, *bodies: Any) -> tuple[dict[str, Any], list[str]]:
    """Invoke the persister; returns its answer and the batch's message ids in order."""
    batch = sqs_event(*bodies)
    return persister.handler(batch, context), [r["messageId"] for r in batch["Records"]]


def stored(aws: Aws) -> dict[str, dict[str, str]]:
    return {i["id"]["S"]: {k: v["S"] for k, v in i.items()} for i in aws.items()}


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the store's backoff delays instead of sleeping them."""
    delays: list[float] = []
    monkeypatch.setitem(store.write.__kwdefaults__, "sleep", delays.append)
    return delays


def wrap(monkeypatch: pytest.MonkeyPatch, service: str, method: str, fake: Callable[..., Any]) -> Any:
    """Replace one method of the handler's own (cached) client; `fake` gets the real method first."""
    client = clients.client(service)
    real = getattr(client, method)
    monkeypatch.setattr(client, method, lambda **kwargs: fake(real, **kwargs))
    return client


# ---------------------------------------------------------------- the happy path


def test_valid_batch_is_stored_and_announced_once_per_item(aws: Aws, context: Any) -> None:
    batch = [event("alice", "a1", "a2"), event("bob", "b1", "b2"), event("alice", "c1", "ünïcode 😀")]
    answer, _ = run(context, *batch)
    assert answer == {"batchItemFailures": []}
    items = stored(aws)
    assert set(items) == {e["id"] for e in batch}
    for e in batch:
        item = items[e["id"]]
        assert item["pk"] == f"USER#{e['subject']}"
        assert item["sk"] == f"DATA#{e['id']}"
        assert item["informationOne"] == e["data"]["informationOne"]
        assert item["informationTwo"] == e["data"]["informationTwo"]
        assert item["createdAt"] == e["time"]
    announced = aws.announced()
    assert len(announced) == len(batch)
    by_id = {a["detail"]["id"]: a for a in announced}
    assert set(by_id) == {e["id"] for e in batch}
    for e in batch:
        envelope = by_id[e["id"]]
        assert envelope["detail-type"] == "fanout.data.persisted.v1"
        assert envelope["source"] == "fanout.persister"
        detail = envelope["detail"]
        assert_valid("fanout.data.persisted.v1.json", detail)
        assert detail["subject"] == e["subject"]
        assert detail["data"] == {
            "id": e["id"],
            "informationOne": e["data"]["informationOne"],
            "informationTwo": e["data"]["informationTwo"],
            "createdAt": e["time"],
        }


def test_post_then_persist_then_read_back(aws: Aws, context: Any) -> None:
    body = {"informationOne": "hello", "informationTwo": "world"}
    posted = call_api(context, "POST", "/data", body=body, request_id="corr-77")
    (published,) = aws.published()
    answer, _ = run(context, published)
    assert answer == {"batchItemFailures": []}
    got = call_api(context, "GET", f"/data/{posted.body['id']}")
    assert got.status == 200
    assert got.body["informationOne"] == "hello" and got.body["informationTwo"] == "world"
    assert aws.items()[0]["correlationId"] == {"S": "corr-77"}
    assert aws.announced()[0]["detail"]["correlationid"] == "corr-77"


def test_large_batch_uses_25_per_write_and_10_per_put_events(
    aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[int] = []
    puts: list[int] = []

    def count_writes(real: Any, **kwargs: Any) -> Any:
        writes.append(sum(len(v) for v in kwargs["RequestItems"].values()))
        return real(**kwargs)

    def count_puts(real: Any, **kwargs: Any) -> Any:
        puts.append(len(kwargs["Entries"]))
        return real(**kwargs)

    wrap(monkeypatch, "dynamodb", "batch_write_item", count_writes)
    wrap(monkeypatch, "events", "put_events", count_puts)
    batch = [event(f"user-{i % 3}", f"one {i}", f"two {i}") for i in range(60)]
    answer, _ = run(context, *batch)
    assert answer == {"batchItemFailures": []}
    assert writes == [25, 25, 10]
    assert puts == [10] * 6
    assert len(aws.items()) == 60
    assert len(aws.announced()) == 60


# ---------------------------------------------------------------- poison messages


POISON = {
    "not-json": "this is not json",
    "empty": "",
    "json-array": "[1, 2, 3]",
    "truncated": '{"specversion": "1.0", ',
    "deeply-nested": "[" * 100_000,
    "missing-data": lambda: json.dumps({k: v for k, v in event().items() if k != "data"}),
    "extra-envelope-field": lambda: json.dumps({**event(), "unexpected": 1}),
    "data-field-too-long": lambda: json.dumps(
        {**event(), "data": {"informationOne": "x" * 1025, "informationTwo": "y"}}
    ),
    "data-extra-field": lambda: json.dumps({**event(), "data": {**event()["data"], "admin": True}}),
    "bad-id": lambda: json.dumps({**event(), "id": "not-an-id"}),
    "bad-time": lambda: json.dumps({**event(), "time": "yesterday"}),
    "empty-subject": lambda: json.dumps({**event(), "subject": ""}),
    "wrong-specversion": lambda: json.dumps({**event(), "specversion": "0.3"}),
    "unknown-type": lambda: json.dumps({**event(), "type": "fanout.data.deleted.v1"}),
    "persisted-type": lambda: json.dumps(
        events.build(
            DataPersisted.TYPE,
            source="fanout.persister",
            subject="alice",
            data={"id": event()["id"], "informationOne": "a", "informationTwo": "b", "createdAt": event()["time"]},
        )
    ),
    "sns-envelope-not-raw": lambda: json.dumps({"Type": "Notification", "Message": json.dumps(event())}),
}


@pytest.mark.parametrize("case", list(POISON))
def test_poison_message_fails_alone(aws: Aws, context: Any, case: str) -> None:
    poison = POISON[case]
    poison = poison() if callable(poison) else poison
    good = [event("alice", "g1", "g2"), event("bob", "g3", "g4")]
    answer, message_ids = run(context, good[0], poison, good[1])
    assert failures(answer) == {message_ids[1]}
    assert set(stored(aws)) == {e["id"] for e in good}
    assert {a["detail"]["id"] for a in aws.announced()} == {e["id"] for e in good}


def test_a_batch_of_only_poison_reports_every_message(aws: Aws, context: Any) -> None:
    answer, message_ids = run(context, "x", "y", "[]")
    assert failures(answer) == set(message_ids)
    assert aws.items() == []
    assert aws.announced() == []


# ---------------------------------------------------------------- duplicates


def test_duplicate_in_one_batch_leaves_one_item(aws: Aws, context: Any) -> None:
    e = event()
    other = event("bob")
    answer, _ = run(context, e, e, other, e)
    assert answer == {"batchItemFailures": []}
    assert sorted(stored(aws)) == sorted([e["id"], other["id"]])
    assert sorted(a["detail"]["id"] for a in aws.announced()) == sorted([e["id"], other["id"]])


def test_duplicate_across_batches_leaves_one_item(aws: Aws, context: Any) -> None:
    e = event()
    for _ in range(3):
        answer, _ = run(context, e)
        assert answer == {"batchItemFailures": []}
    assert list(stored(aws)) == [e["id"]]
    listed = call_api(context, "GET", "/data").body["items"]
    assert [i["id"] for i in listed] == [e["id"]]


def test_the_same_delivery_seen_through_two_queue_copies_leaves_one_item(aws: Aws, context: Any) -> None:
    # Each queue's copy has its own messageId; idempotency is on the event id, never the messageId.
    e = event()
    body = json.dumps(e)
    batch = {"Records": [sqs_record(body), sqs_record(body)]}
    assert persister.handler(batch, context) == {"batchItemFailures": []}
    assert len(aws.items()) == 1


# ---------------------------------------------------------------- DynamoDB throttling and UnprocessedItems


def unprocessed_first(calls: int, log: list[int]) -> Callable[..., Any]:
    """The first `calls` BatchWriteItem calls write only the first request and hand back the rest."""

    def fake(real: Any, **kwargs: Any) -> Any:
        ((table, requests),) = kwargs["RequestItems"].items()
        log.append(len(requests))
        if len(log) > calls or len(requests) == 1:
            return real(**kwargs)
        real(RequestItems={table: requests[:1]})
        return {"UnprocessedItems": {table: requests[1:]}}

    return fake


def test_unprocessed_items_are_retried_and_stored_once(
    aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch, no_sleep: list[float]
) -> None:
    calls: list[int] = []
    wrap(monkeypatch, "dynamodb", "batch_write_item", unprocessed_first(2, calls))
    batch = [event(f"u{i}", f"o{i}", f"t{i}") for i in range(5)]
    answer, _ = run(context, *batch)
    assert answer == {"batchItemFailures": []}
    assert calls == [5, 4, 3]  # each retry sends only what was left unprocessed
    assert len(no_sleep) == 2  # backed off before each retry
    assert set(stored(aws)) == {e["id"] for e in batch}
    assert len(aws.items()) == 5
    assert len(aws.announced()) == 5


def _throttle(client: Any, code: str = "ProvisionedThroughputExceededException") -> Exception:
    error = {"Error": {"Code": code, "Message": "slow down"}}
    if code == "ProvisionedThroughputExceededException":
        return client.exceptions.ProvisionedThroughputExceededException(error, "BatchWriteItem")
    return client.exceptions.ClientError(error, "BatchWriteItem")


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]
)
def test_throttle_is_retried(
    aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch, no_sleep: list[float], code: str
) -> None:
    calls: list[int] = []

    def fake(real: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= 2:
            raise _throttle(clients.client("dynamodb"), code)
        return real(**kwargs)

    wrap(monkeypatch, "dynamodb", "batch_write_item", fake)
    batch = [event("alice", "a", "b"), event("bob", "c", "d")]
    answer, _ = run(context, *batch)
    assert answer == {"batchItemFailures": []}
    assert len(calls) == 3
    assert len(no_sleep) == 2
    assert set(stored(aws)) == {e["id"] for e in batch}


def test_items_never_stored_are_reported_not_lost(
    aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch, no_sleep: list[float]
) -> None:
    """Bob's writes stay unprocessed on every attempt: exactly his messages come back as failures."""

    def fake(real: Any, **kwargs: Any) -> Any:
        ((table, requests),) = kwargs["RequestItems"].items()
        keep = [r for r in requests if r["PutRequest"]["Item"]["pk"]["S"] != "USER#bob"]
        stuck = [r for r in requests if r not in keep]
        if keep:
            real(RequestItems={table: keep})
        return {"UnprocessedItems": {table: stuck} if stuck else {}}

    wrap(monkeypatch, "dynamodb", "batch_write_item", fake)
    batch = [event("alice", "a", "1"), event("bob", "b", "2"), event("carol", "c", "3"), event("bob", "d", "4")]
    answer, message_ids = run(context, *batch)
    assert failures(answer) == {message_ids[1], message_ids[3]}
    assert set(stored(aws)) == {batch[0]["id"], batch[2]["id"]}
    # Nothing is announced for an item that was not stored.
    assert {a["detail"]["id"] for a in aws.announced()} == {batch[0]["id"], batch[2]["id"]}
    assert len(no_sleep) == 5  # six attempts, five backoffs
    assert all(0 <= d <= 2.0 for d in no_sleep)


def test_throttled_on_every_attempt_reports_the_whole_batch(
    aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch, no_sleep: list[float]
) -> None:
    def fake(real: Any, **kwargs: Any) -> Any:
        raise _throttle(clients.client("dynamodb"))

    wrap(monkeypatch, "dynamodb", "batch_write_item", fake)
    answer, message_ids = run(context, event("alice"), "poison", event("bob"))
    assert failures(answer) == set(message_ids)
    assert aws.items() == []
    assert aws.announced() == []


def test_a_non_throttle_error_fails_the_invocation_so_sqs_retries_the_whole_batch(
    aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch, no_sleep: list[float]
) -> None:
    def fake(real: Any, **kwargs: Any) -> Any:
        raise clients.client("dynamodb").exceptions.ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "BatchWriteItem"
        )

    wrap(monkeypatch, "dynamodb", "batch_write_item", fake)
    # Not swallowed: nothing is reported as done, so every message comes back (none is lost).
    with pytest.raises(Exception, match="AccessDenied"):
        run(context, event("alice"))
    assert no_sleep == []
    assert aws.announced() == []


# ---------------------------------------------------------------- PutEvents failures


def test_put_events_partial_failure_reports_exactly_those_records(
    aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = [event("alice", "a", "1"), event("bob", "b", "2"), event("carol", "c", "3")]
    refused_id = batch[1]["id"]
    attempts: list[int] = []

    def fake(real: Any, **kwargs: Any) -> Any:
        attempts.append(len(kwargs["Entries"]))
        ok = [e for e in kwargs["Entries"] if json.loads(e["Detail"])["id"] != refused_id]
        response = real(Entries=ok) if ok else {"Entries": []}
        results = iter(response["Entries"])
        entries = [
            next(results)
            if json.loads(e["Detail"])["id"] != refused_id
            else {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
            for e in kwargs["Entries"]
        ]
        return {"FailedEntryCount": sum(1 for e in entries if "ErrorCode" in e), "Entries": entries}

    wrap(monkeypatch, "events", "put_events", fake)
    answer, message_ids = run(context, *batch)
    assert failures(answer) == {message_ids[1]}
    # Stored all the same (the retry overwrites the same item); only the announcement is retried.
    assert set(stored(aws)) == {e["id"] for e in batch}
    assert attempts[0] == 3 and all(n == 1 for n in attempts[1:])
    assert sorted(a["detail"]["id"] for a in aws.announced()) == sorted([batch[0]["id"], batch[2]["id"]])


def test_put_events_transient_failure_is_retried_within_the_invocation(
    aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def fake(real: Any, **kwargs: Any) -> Any:
        calls.append(len(kwargs["Entries"]))
        if len(calls) == 1:
            _first, *rest = kwargs["Entries"]
            response = real(Entries=rest)
            return {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow"}, *response["Entries"]],
            }
        return real(**kwargs)

    wrap(monkeypatch, "events", "put_events", fake)
    batch = [event("alice"), event("bob")]
    answer, _ = run(context, *batch)
    assert answer == {"batchItemFailures": []}
    assert calls == [2, 1]
    assert sorted(a["detail"]["id"] for a in aws.announced()) == sorted(e["id"] for e in batch)


# ---------------------------------------------------------------- logging


def test_correlation_id_from_the_event_is_logged(aws: Aws, context: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="persister")  # the per-record line is DEBUG
    call_api(context, "POST", "/data", body={"informationOne": "a", "informationTwo": "b"}, request_id="req-xyz")
    (published,) = aws.published()
    caplog.clear()
    run(context, published)
    received = [r for r in caplog.records if r.name == "persister" and r.getMessage() == "event received"]
    assert len(received) == 1
    assert received[0].correlation_id == "req-xyz"
    assert received[0].event_id == published["id"]
