"""The consumer kit: a typed function becomes an SQS-batch handler (validation, partial failures, logs,
metrics, idempotency), reading both the topic's CloudEvents and the bus's EventBridge envelopes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from unit_support import Aws

from fanout_kit import kit
from fanout_kit.models import Data, DataGenerated, DataPersisted
from fanout_kit.testing import failures, new_event, sqs_event


def make(*types: Any, fail_on: str | None = None, name: str = "kit-test") -> tuple[kit.Consumer, list[Any]]:
    seen: list[Any] = []

    @kit.consumer(*types, name=name)
    def handler(event: Any) -> None:
        seen.append(event)
        if fail_on is not None and event.data.information_one == fail_on:
            raise RuntimeError("downstream said no")

    return handler, seen


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_the_function_gets_typed_events_from_both_shapes(context: Any) -> None:
    handler, seen = make(DataGenerated)
    topic, bus = new_event(DataGenerated, subject="alice"), new_event(DataGenerated, subject="bob")
    assert failures(handler(sqs_event(topic), context)) == set()
    assert failures(handler(sqs_event(bus, bus=True), context)) == set()
    assert seen == [topic, bus]
    assert isinstance(seen[0].data, Data) and seen[0].data.information_one == "one"


def test_a_bus_consumer_reads_persisted_events(context: Any) -> None:
    handler, seen = make(DataPersisted)
    event = new_event(DataPersisted, subject="carol")
    assert failures(handler(sqs_event(event, bus=True), context)) == set()
    assert seen[0].data.id == event.id and seen[0].source == "fanout.persister"


def test_invalid_and_failing_records_fail_alone(context: Any) -> None:
    handler, seen = make(DataGenerated, fail_on="boom")
    good = new_event(DataGenerated)
    failing = new_event(DataGenerated, data={"informationOne": "boom", "informationTwo": "x"})
    wrong_type = new_event(DataPersisted)
    bad = {**good.to_dict(), "data": {"informationOne": "missing two"}}
    batch = sqs_event(good, "not json", failing, wrong_type, bad)
    ids = [r["messageId"] for r in batch["Records"]]
    assert failures(handler(batch, context)) == set(ids[1:])
    assert [e.id for e in seen] == [good.id, failing.id]


def test_a_batch_failing_whole_is_reported_not_raised(context: Any) -> None:
    handler, _ = make(DataGenerated, fail_on="one")
    batch = sqs_event(new_event(DataGenerated), new_event(DataGenerated))
    assert failures(handler(batch, context)) == {r["messageId"] for r in batch["Records"]}


def test_a_mismatched_envelope_is_invalid(context: Any) -> None:
    handler, seen = make()
    event = new_event(DataGenerated)
    batch = sqs_event(event, bus=True)
    body = json.loads(batch["Records"][0]["body"])
    body["detail-type"] = "fanout.data.persisted.v1"
    batch["Records"][0]["body"] = json.dumps(body)
    assert failures(handler(batch, context)) == {batch["Records"][0]["messageId"]}
    assert seen == []


def test_every_log_line_names_event_and_correlation_id_and_failures_are_one_line(
    context: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
    name = "kit-logs"
    kit.logger_for.cache_clear()
    user_logger = kit.logger_for(name)

    @kit.consumer(DataGenerated, name=name)
    def handler(event: DataGenerated) -> None:
        user_logger.info("handling")
        if event.subject == "bob":
            raise ValueError("bob is not welcome")

    alice = new_event(DataGenerated, subject="alice", correlation_id="req-1")
    bob = new_event(DataGenerated, subject="bob", correlation_id="req-2")
    capsys.readouterr()
    handler(sqs_event(alice, bob, "garbage"), context)
    lines = log_lines(capsys)
    handling = [line for line in lines if line["message"] == "handling"]
    assert [(h["event_id"], h["correlation_id"]) for h in handling] == [(alice.id, "req-1"), (bob.id, "req-2")]
    failed = [line for line in lines if line["level"] == "WARNING"]
    assert len(failed) == 2
    assert failed[0]["message"] == "kit-logs failed: ValueError: bob is not welcome"
    assert failed[0]["event_id"] == bob.id
    # Retried or moved to the DLQ is the queue's to decide (maxReceiveCount): the line claims neither.
    assert all("retried" not in f["message"] and f["outcome"] == kit.FAILED for f in failed)
    assert failed[1]["message"].startswith("invalid event") and "exception" not in failed[1]
    assert "not JSON" in failed[1]["error"]
    # Keys of one record never leak into the next record's lines.
    assert all("event_id" not in line for line in lines if line["message"].startswith("invalid event"))


def test_a_metric_per_outcome(
    context: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "fanout")
    handler, _ = make(DataGenerated, fail_on="boom", name="kit-metrics")
    failing = new_event(DataGenerated, data={"informationOne": "boom", "informationTwo": "x"})
    # Powertools keeps one metric set per process; other handlers' leftovers are not this test's.
    handler.metrics.clear_metrics()
    capsys.readouterr()
    handler(sqs_event(new_event(DataGenerated), new_event(DataGenerated), failing, "garbage"), context)
    emf = [line for line in log_lines(capsys) if "_aws" in line]
    assert len(emf) == 1
    totals = {k: sum(v) if isinstance(v, list) else v for k, v in emf[0].items() if k.startswith("Events")}
    assert totals == {"EventsProcessed": 2.0, "EventsFailed": 1.0, "EventsInvalid": 1.0}


def test_idempotent_consumer_runs_once_per_event_id(aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANOUT_IDEMPOTENT", "true")
    kit._reset()
    handler, seen = make(DataGenerated, name="kit-once")
    event = new_event(DataGenerated)
    # Two copies in one batch (two queues' messages), then a redelivery: the function runs once.
    assert failures(handler(sqs_event(event, event), context)) == set()
    assert failures(handler(sqs_event(event, bus=True), context)) == set()
    assert [e.id for e in seen] == [event.id]
    # Another consumer's key is its own: the same event runs there too.
    other, other_seen = make(DataGenerated, name="kit-other")
    assert failures(other(sqs_event(event), context)) == set()
    assert len(other_seen) == 1
    assert aws.ddb.scan(TableName=aws.idempotency_table)["Count"] == 2


def test_idempotent_consumer_retries_a_failed_event(aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANOUT_IDEMPOTENT", "true")
    kit._reset()
    attempts: list[str] = []

    @kit.consumer(DataGenerated, name="kit-retry")
    def handler(event: DataGenerated) -> None:
        attempts.append(event.id)
        if len(attempts) == 1:
            raise RuntimeError("transient")

    event = new_event(DataGenerated)
    batch = sqs_event(event)
    assert failures(handler(batch, context)) == {batch["Records"][0]["messageId"]}
    assert failures(handler(sqs_event(event), context)) == set()
    assert failures(handler(sqs_event(event), context)) == set()
    assert attempts == [event.id, event.id]


def test_without_idempotency_a_redelivery_runs_again(context: Any) -> None:
    handler, seen = make(DataGenerated)
    event = new_event(DataGenerated)
    handler(sqs_event(event), context)
    handler(sqs_event(event), context)
    assert len(seen) == 2


def test_bulk_consumer_retries_only_what_it_reports(context: Any) -> None:
    got: list[list[str]] = []

    @kit.bulk_consumer(DataGenerated, name="kit-bulk")
    def handler(batch: list[DataGenerated]) -> set[str]:
        got.append([e.id for e in batch])
        return {batch[1].id}

    events = [new_event(DataGenerated) for _ in range(3)]
    batch = sqs_event(events[0], "poison", events[1], events[2])
    ids = [r["messageId"] for r in batch["Records"]]
    assert failures(handler(batch, context)) == {ids[1], ids[2]}
    assert got == [[e.id for e in events]]
