"""SQS batches: validate each record, then write the good ones in bulk, report the rest.

Powertools' BatchProcessor handles one record at a time; writing with BatchWriteItem
and PutEvents needs the whole batch. This processor runs the per-record step through
Powertools, then a bulk `flush` over the successes, and marks as failed every record
the flush could not complete, so `process_partial_response` reports exactly those.

FIFO queues (records carry `attributes.MessageGroupId`, the event's subject): a failed record
holds back every later record of its message group in the batch, which are reported as failures
without being run, while other groups go on (Powertools' SqsFifoPartialProcessor with
skip_group_on_error). SQS then hands the group out again from the failed record, in order.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, cast

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, FailureResponse, SqsFifoPartialProcessor
from aws_lambda_powertools.utilities.batch.exceptions import SQSFifoMessageGroupCircuitBreakerError
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

# flush gets (record, per-record result) pairs and returns the message ids it could not complete.
Flush = Callable[[list[tuple[SQSRecord, Any]]], set[str]]
# Told of each record held back behind a failed record of its message group.
HeldBack = Callable[[SQSRecord], None]


class FlushFailed(Exception):
    """A record passed validation but its bulk write or announcement did not complete."""


class HeldBackFailure(Exception):
    """A record not run because an earlier record of its message group failed in this batch."""


def group_id(raw: Mapping[str, Any]) -> str | None:
    """The record's message group id: set on records from FIFO queues only."""
    value = (raw.get("attributes") or {}).get("MessageGroupId")
    return str(value) if value else None


def is_fifo_batch(event: Mapping[str, Any]) -> bool:
    """Whether the batch comes from a FIFO queue: its records carry a message group id.

    Read from the records, not from configuration, so a subscriber's own consumer of a FIFO
    queue keeps order without being told.
    """
    return any(group_id(r) for r in event.get("Records") or [] if isinstance(r, Mapping))


class FifoSqsProcessor(SqsFifoPartialProcessor):
    """Per message group: a failure holds back that group's later records only; no raise on a failed batch."""

    def __init__(self, held_back: HeldBack | None = None) -> None:
        super().__init__(skip_group_on_error=True)
        self.raise_on_entire_batch_failure = False
        self._held_back = held_back

    def failure_handler(self, record: Any, exception: Any) -> FailureResponse:
        if exception[0] is SQSFifoMessageGroupCircuitBreakerError and self._held_back is not None:
            self._held_back(record)
        return super().failure_handler(record, exception)


class _BulkFlush:
    """The bulk step after the per-record one; mixed into a Powertools processor."""

    _flush: Flush
    success_messages: list[Any]

    def _after_per_record(self, results: list[tuple[Any, ...]], fifo: bool) -> list[tuple[Any, ...]]:
        ok = [(SQSRecord(raw), result) for status, result, raw in results if status == "success"]
        if not ok:
            return results
        failed_ids = self._flush(ok)
        if not failed_ids:
            return results
        out = []
        # FIFO: a record after a failed one of its group is reported too, so the group is retried in order.
        failed_groups: set[str] = set()
        for entry in results:
            status, _, raw = entry
            group = group_id(raw) if fifo else None
            if status != "success" and group:
                failed_groups.add(group)
            held = group is not None and group in failed_groups
            if status == "success" and (raw["messageId"] in failed_ids or held):
                self.success_messages.remove(raw)
                entry = self._fail(raw, held and raw["messageId"] not in failed_ids)
                if group:
                    failed_groups.add(group)
            out.append(entry)
        return out

    def _fail(self, raw: dict[str, Any], held: bool) -> tuple[Any, ...]:
        try:
            if held:
                raise HeldBackFailure(f"message {raw['messageId']} waits for an earlier message of its group")
            raise FlushFailed(f"message {raw['messageId']} was not stored; it will be retried")
        except (FlushFailed, HeldBackFailure):
            # failure_handler is the Powertools processor's this is mixed into.
            return cast(tuple[Any, ...], self.failure_handler(SQSRecord(raw), sys.exc_info()))  # type: ignore[attr-defined]


class BulkSqsProcessor(_BulkFlush, BatchProcessor):
    def __init__(self, flush: Flush, **kwargs: Any) -> None:
        super().__init__(event_type=EventType.SQS, **kwargs)
        self._flush = flush

    def process(self) -> list[tuple[Any, ...]]:
        return self._after_per_record(super().process(), fifo=False)


class BulkSqsFifoProcessor(_BulkFlush, FifoSqsProcessor):
    """The bulk processor for FIFO queues: the per-record step holds back a failed record's group,
    and so does a record the flush could not complete (its group's later records go back too)."""

    def __init__(self, flush: Flush, held_back: HeldBack | None = None) -> None:
        super().__init__(held_back=held_back)
        self._flush = flush

    def process(self) -> list[tuple[Any, ...]]:
        return self._after_per_record(super().process(), fifo=True)

    def failure_handler(self, record: Any, exception: Any) -> FailureResponse:
        # Powertools records the failed group from the record being processed; the flush fails
        # records after that loop, so say which group this one is.
        group = group_id(record.raw_event) if hasattr(record, "raw_event") else None
        self._current_group_id = group  # type: ignore[assignment]  # Powertools types it as its initial None
        return super().failure_handler(record, exception)
