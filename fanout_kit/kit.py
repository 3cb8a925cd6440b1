"""The consumer kit: one typed function becomes an SQS-batch Lambda handler.

    from fanout_kit.kit import consumer
    from fanout_kit.models import DataGenerated

    @consumer(DataGenerated)
    def handler(event: DataGenerated) -> None:
        ...

What the kit does for every record, so a consumer does not:
- reads both shapes a queue can hold: the CloudEvent itself (topic subscription, raw delivery)
  and an EventBridge event with the CloudEvent in `detail` (bus consumers);
- validates it against its schema (schemas/) and hands the function a typed model;
- runs each record on Powertools' BatchProcessor: a failing record becomes a batch item
  failure without holding back the others, reaches the DLQ after maxReceiveCount, and a batch
  that fails whole is reported, never raised; each failure is one log line, no traceback for
  an invalid message;
- puts the event id and correlation id in every log line written while the record runs
  (the kit's `logger`, and any Powertools Logger of the same service);
- counts each outcome (EventsProcessed, EventsInvalid, EventsFailed, EventsDuplicate);
- from a FIFO queue (records with a message group id: the subject, on a `fanout:ordering: fifo`
  stack), keeps each subject in order: a failing record holds back the later records of its
  subject in the batch, reported as failures without running, while other subjects go on;
- with FANOUT_IDEMPOTENT=true (the consumer's `idempotent: true` in the stack config), runs
  the function once per (consumer, event id), on Powertools Idempotency over the idempotency table.

Bulk consumers (the persister: 25 items a BatchWriteItem) use `bulk_consumer`: the function gets
the batch's valid events at once and returns the ids of those it could not complete.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from fanout_kit import events, observability
from fanout_kit.batch import BulkSqsFifoProcessor, BulkSqsProcessor, FifoSqsProcessor, group_id, is_fifo_batch
from fanout_kit.events import cloudevent_of
from fanout_kit.models import CloudEvent

E = TypeVar("E", bound=CloudEvent)
# The `outcome` of a record's failure line: a filter for Logs Insights, and how `make run` knows the
# line is one it reports itself (as "attempt N of M failed", with the DLQ on the last one).
FAILED = "failed"
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def consumer_name(default: str) -> str:
    """The consumer's name as the stack config spells it (FANOUT_CONSUMER), else the module's."""
    return os.environ.get("FANOUT_CONSUMER", "").strip() or default


def idempotent_enabled() -> bool:
    return os.environ.get("FANOUT_IDEMPOTENT", "").strip().lower() in ("1", "true")


class _Kit(Generic[E]):
    """What both kinds of consumer share: name, logger, metrics, tracer, parsing, logging of outcomes."""

    def __init__(self, fn: Callable[..., Any], types: tuple[type[E], ...], name: str | None) -> None:
        self.function = fn
        self.types = types
        self.name = name or consumer_name(fn.__module__.rsplit(".", 1)[-1])
        self.logger = logger_for(self.name)
        self.metrics = observability.metrics(self.name)
        self.tracer = observability.tracer(self.name)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]  # the subclasses are the callables

    def _parse(self, record: SQSRecord) -> E:
        try:
            event = events.parse(record.body, *self.types)
        except events.InvalidEvent as exc:
            self.metrics.add_metric(name="EventsInvalid", unit=MetricUnit.Count, value=1)
            # One line, no traceback: an invalid message is the sender's problem, and it comes back
            # maxReceiveCount times before the DLQ takes it.
            self.logger.warning(
                "invalid event; reported as a batch item failure",
                extra={"message_id": record.message_id, "error": str(exc), **_receive_count(record), "outcome": FAILED},
            )
            raise
        return event  # type: ignore[return-value]  # parse checked it is one of self.types

    def _held_back(self, record: SQSRecord) -> None:
        self.metrics.add_metric(name="EventsHeldBack", unit=MetricUnit.Count, value=1)
        self.logger.info(
            "held back behind a failed event of its subject; reported as a batch item failure",
            extra={"message_id": record.message_id, "message_group_id": group_id(record.raw_event)},
        )

    def _wrap(self, run: LambdaHandler) -> LambdaHandler:
        def logged(event: dict[str, Any], context: Any) -> dict[str, Any]:
            # One INFO line per batch, not per record (CloudWatch Logs bills every byte ingested); it names
            # each event, so `fanout trace --aws` still sees every attempt. Per-record lines are DEBUG.
            self.logger.info("events received", extra={"event_ids": _event_ids(event)})
            return run(event, context)

        wrapped: LambdaHandler = self.logger.inject_lambda_context(
            self.metrics.log_metrics(self.tracer.capture_lambda_handler(logged))
        )
        return wrapped


def _event_ids(event: dict[str, Any]) -> list[str]:
    """The event ids a batch's records carry, read before validation (invalid records have none)."""
    found = (cloudevent_of(str(record.get("body") or "")) for record in event.get("Records") or [])
    return [doc["id"] for doc in found if doc is not None]


def _receive_count(record: SQSRecord) -> dict[str, Any]:
    count = record.attributes.approximate_receive_count
    return {"receive_count": int(count)} if count else {}


def _event_keys(event: CloudEvent, record: SQSRecord) -> dict[str, Any]:
    return {"event_id": event.id, "correlation_id": event.correlation_id, "message_id": record.message_id}


class Consumer(_Kit[E]):
    """A Lambda handler for SQS batches around a function of one typed event."""

    def __init__(self, fn: Callable[[E], Any], types: tuple[type[E], ...], name: str | None = None) -> None:
        super().__init__(fn, types, name)
        self._handler = self._wrap(self._run)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return self._handler(event, context)

    def _run(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        # Defaults would raise when every record fails and log a traceback per record; the kit does neither.
        processor: BatchProcessor = (
            FifoSqsProcessor(held_back=self._held_back)
            if is_fifo_batch(event)
            else BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        )
        once = _idempotent_runner(self.name, context) if idempotent_enabled() else None
        return dict(
            process_partial_response(
                event=event,
                record_handler=functools.partial(self._record, once=once),
                processor=processor,
                context=context,
            )
        )

    def _record(self, record: SQSRecord, once: Callable[..., Any] | None = None) -> None:
        typed = self._parse(record)
        keys = _event_keys(typed, record)
        self.logger.append_keys(**keys)
        # DEBUG: a line per record at INFO would cost more in CloudWatch Logs than the record's queue.
        self.logger.debug("event received")
        try:
            if once is None:
                self.function(typed)
            elif not once(typed, self.function):
                self.metrics.add_metric(name="EventsDuplicate", unit=MetricUnit.Count, value=1)
                self.logger.info("event already processed; skipped")
                return
        except Exception as exc:
            self.metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=1)
            # One log record (Powertools puts the traceback in one JSON field). Whether SQS retries the
            # record or moves it to the DLQ depends on the queue's maxReceiveCount, which the kit cannot see.
            self.logger.warning(
                f"{self.name} failed: {type(exc).__name__}: {exc}",
                exc_info=True,
                extra={**_receive_count(record), "outcome": FAILED},
            )
            raise
        finally:
            self.logger.remove_keys(keys)
        self.metrics.add_metric(name="EventsProcessed", unit=MetricUnit.Count, value=1)
        self.logger.debug("event processed")


class BulkConsumer(_Kit[E]):
    """A Lambda handler for SQS batches around a function of all the batch's valid events at once.

    The function returns the ids of the events it could not complete; their records are retried.
    """

    def __init__(
        self, fn: Callable[[list[E]], Iterable[str]], types: tuple[type[E], ...], name: str | None = None
    ) -> None:
        super().__init__(fn, types, name)
        self._handler = self._wrap(self._run)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return self._handler(event, context)

    def _flush(self, batch: list[tuple[SQSRecord, E]]) -> set[str]:
        # An exception here fails the invocation: SQS retries the whole batch and nothing is lost.
        failed_ids = set(self.function([e for _, e in batch]) or ())
        failed = {r.message_id for r, e in batch if e.id in failed_ids}
        self.metrics.add_metric(name="EventsProcessed", unit=MetricUnit.Count, value=len(batch) - len(failed))
        if failed:
            self.metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=len(failed))
        return failed

    def _record(self, record: SQSRecord) -> E:
        typed = self._parse(record)
        self.logger.debug("event received", extra=_event_keys(typed, record))
        return typed

    def _run(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        processor: BatchProcessor = (
            BulkSqsFifoProcessor(flush=self._flush, held_back=self._held_back)
            if is_fifo_batch(event)
            else BulkSqsProcessor(flush=self._flush, raise_on_entire_batch_failure=False)
        )
        return dict(
            process_partial_response(event=event, record_handler=self._record, processor=processor, context=context)
        )


def consumer(*types: type[E], name: str | None = None) -> Callable[[Callable[[E], Any]], Consumer[E]]:
    """Decorate `fn(event)` into a Lambda handler; no types means every fanout event type."""
    return lambda fn: Consumer(fn, types, name)


def bulk_consumer(
    *types: type[E], name: str | None = None
) -> Callable[[Callable[[list[E]], Iterable[str]]], BulkConsumer[E]]:
    """Decorate `fn(events) -> ids not completed` into a Lambda handler."""
    return lambda fn: BulkConsumer(fn, types, name)


@functools.cache
def logger_for(service: str) -> Logger:
    return Logger(service=service)


def _idempotent_runner(name: str, context: Any) -> Callable[[CloudEvent, Callable[[Any], Any]], bool]:
    """Run a function once per (consumer, event id); the runner returns False when it had run before."""
    run, config = _idempotency(name)
    if context is not None:
        # An invocation that dies mid-record lets its in-progress record expire with the invocation.
        config.register_lambda_context(context)

    def once(event: CloudEvent, fn: Callable[[Any], Any]) -> bool:
        ran: list[bool] = []

        def action() -> None:
            ran.append(True)
            fn(event)

        run(key={"consumer": name, "id": event.id}, action=action)
        return bool(ran)

    return once


@functools.cache
def _idempotency(name: str) -> tuple[Callable[..., Any], Any]:
    # Imported on first use: only idempotent consumers pay for it.
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    table = os.environ.get("IDEMPOTENCY_TABLE_NAME", "").strip()
    if not table:
        raise RuntimeError("environment variable IDEMPOTENCY_TABLE_NAME is not set (an idempotent consumer needs it)")
    # Powertools builds its own DynamoDB client from boto3's standard settings (endpoint, region).
    layer = DynamoDBPersistenceLayer(table_name=table)
    # Keyed on the producer's event id, never the SQS message id: each queue's copy has its own.
    config = IdempotencyConfig(event_key_jmespath="[consumer, id]", raise_on_no_idempotency_key=True)

    @idempotent_function(data_keyword_argument="key", persistence_store=layer, config=config)  # type: ignore[untyped-decorator]
    def run(key: dict[str, str], action: Callable[[], Any]) -> bool:
        action()
        return True

    return run, config


def _reset() -> None:
    """Forget cached idempotency runners (tests that change the environment)."""
    _idempotency.cache_clear()
