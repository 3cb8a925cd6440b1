"""The kit on FIFO queues: a failed record holds back the later records of its subject (message group)
in the batch, reported as failures without running; other subjects go on; standard batches unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from unit_support import Aws

from fanout_kit import kit
from fanout_kit.models import DataGenerated
from fanout_kit.testing import failures, new_event, sqs_event


def event(subject: str, one: str) -> DataGenerated:
    return new_event(DataGenerated, subject=subject, data={"informationOne": one, "informationTwo": "x"})


def consumer(fail_on: str) -> tuple[kit.Consumer, list[str]]:
    ran: list[str] = []

    @kit.consumer(DataGenerated, name="fifo-test")
    def handler(e: DataGenerated) -> None:
        ran.append(e.data.information_one)
        if e.data.information_one == fail_on:
            raise RuntimeError("downstream said no")

    return handler, ran


def ids(batch: dict[str, Any], *positions: int) -> set[str]:
    return {batch["Records"][i]["messageId"] for i in positions}


def interleaved() -> list[DataGenerated]:
    # alice: a1 a2 a3, bob: b1 b2, interleaved as published.
    return [event("alice", "a1"), event("bob", "b1"), event("alice", "a2"), event("bob", "b2"), event("alice", "a3")]


def test_a_failed_record_holds_back_its_subjects_later_records_only(context: Any) -> None:
    handler, ran = consumer(fail_on="a2")
    batch = sqs_event(*interleaved(), fifo=True)
    assert failures(handler(batch, context)) == ids(batch, 2, 4)  # a2 failed, a3 held back
    assert ran == ["a1", "b1", "a2", "b2"]  # a3 never ran; bob's events all did


def test_an_invalid_record_holds_back_its_subject_too(context: Any) -> None:
    handler, ran = consumer(fail_on="none")
    events = interleaved()
    poison = {**events[2].to_dict(), "data": {"informationOne": "missing two"}}
    batch = sqs_event(events[0], events[1], poison, events[3], events[4], fifo=True)
    assert failures(handler(batch, context)) == ids(batch, 2, 4)
    assert ran == ["a1", "b1", "b2"]


def test_the_same_batch_from_a_standard_queue_fails_only_the_failed_record(context: Any) -> None:
    handler, ran = consumer(fail_on="a2")
    batch = sqs_event(*interleaved())
    assert failures(handler(batch, context)) == ids(batch, 2)
    assert ran == ["a1", "b1", "a2", "b2", "a3"]


def test_a_bulk_consumer_holds_back_the_subject_of_a_record_it_could_not_complete(context: Any) -> None:
    got: list[list[str]] = []

    @kit.bulk_consumer(DataGenerated, name="fifo-bulk")
    def handler(batch: list[DataGenerated]) -> set[str]:
        got.append([e.data.information_one for e in batch])
        return {e.id for e in batch if e.data.information_one == "b1"}

    events = interleaved()
    batch = sqs_event(*events, fifo=True)
    # b1 was not stored: b2 goes back with it, so bob's events are retried in order; alice's all stand.
    assert failures(handler(batch, context)) == ids(batch, 1, 3)
    assert got == [["a1", "b1", "a2", "b2", "a3"]]


def test_a_bulk_consumer_never_flushes_records_behind_an_invalid_one_of_their_subject(context: Any) -> None:
    got: list[list[str]] = []

    @kit.bulk_consumer(DataGenerated, name="fifo-bulk")
    def handler(batch: list[DataGenerated]) -> set[str]:
        got.append([e.data.information_one for e in batch])
        return set()

    events = interleaved()
    batch = sqs_event(events[0], "poison-for-alice", events[2], events[1], fifo=True)
    batch["Records"][1]["attributes"]["MessageGroupId"] = "alice"
    assert failures(handler(batch, context)) == ids(batch, 1, 2)
    assert got == [["a1", "b1"]]


def test_a_bulk_consumer_on_a_standard_queue_retries_only_what_it_reports(context: Any) -> None:
    @kit.bulk_consumer(DataGenerated, name="fifo-bulk")
    def handler(batch: list[DataGenerated]) -> set[str]:
        return {e.id for e in batch if e.data.information_one == "b1"}

    batch = sqs_event(*interleaved())
    assert failures(handler(batch, context)) == ids(batch, 1)


def test_an_idempotent_consumer_stays_idempotent_on_a_fifo_queue(
    aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FANOUT_IDEMPOTENT", "true")
    kit._reset()
    handler, ran = consumer(fail_on="a2")
    events = interleaved()
    batch = sqs_event(*events, fifo=True)
    assert failures(handler(batch, context)) == ids(batch, 2, 4)
    # The retry SQS makes: alice's group again from a2, which now succeeds; a1 redelivered runs no more.
    handler_ok, ran_ok = consumer(fail_on="none")
    assert failures(handler_ok(sqs_event(events[0], events[2], events[4], fifo=True), context)) == set()
    assert ran == ["a1", "b1", "a2", "b2"] and ran_ok == ["a2", "a3"]


def test_a_fifo_batch_failing_whole_is_reported_not_raised(context: Any) -> None:
    handler, ran = consumer(fail_on="a1")
    batch = sqs_event(event("alice", "a1"), event("alice", "a2"), fifo=True)
    assert failures(handler(batch, context)) == ids(batch, 0, 1)
    assert ran == ["a1"]
