"""SQS consumer: stores each user's data in DynamoDB, then announces it on the EventBridge bus.

Per record: parse and validate the CloudEvent (a poison message fails alone). Per batch:
one BatchWriteItem per 25 items, one PutEvents per 10. Only the records that could not be
stored or announced are reported as batch item failures, so SQS retries just those and
moves them to the DLQ after maxReceiveCount. Idempotent by event id: the item key is the id.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from handlers.core import bus, clients, events, observability, store
from handlers.core.batch import BulkSqsProcessor

logger = Logger(service="persister")
metrics = observability.metrics("persister")
tracer = observability.tracer("persister")
clients.warm("dynamodb", "events")


def parse(record: SQSRecord) -> dict[str, Any]:
    event = events.parse(record.body, expected_type=events.GENERATED)
    # Carry the API request's correlation id into this function's logs.
    logger.info(
        "event received",
        extra={
            "event_id": event["id"],
            "correlation_id": event.get("correlationid"),
            "message_id": record.message_id,
        },
    )
    return event


def to_record(event: dict[str, Any]) -> store.Record:
    return store.Record(
        user=event["subject"],
        id=event["id"],
        information_one=event["data"]["informationOne"],
        information_two=event["data"]["informationTwo"],
        created_at=event["time"],
        correlation_id=event.get("correlationid"),
    )


def persisted_event(record: store.Record) -> dict[str, Any]:
    # Same id as the source event: consumers of the bus can dedupe on (source, id).
    return events.build(
        events.PERSISTED,
        source="fanout.persister",
        subject=record.user,
        data=record.to_api(),
        event_id=record.id,
        correlation_id=record.correlation_id,
    )


@tracer.capture_method
def flush(batch: list[tuple[SQSRecord, dict[str, Any]]]) -> set[str]:
    """Store and announce the batch's valid events; return the message ids to retry."""
    records = {m.message_id: to_record(e) for m, e in batch}
    unstored = store.write(list(records.values()))
    failed = {mid for mid, r in records.items() if (r.user, r.id) in unstored}
    stored = {(r.user, r.id): r for mid, r in records.items() if mid not in failed}
    unannounced = bus.put([persisted_event(r) for r in stored.values()])
    # A record stored but not announced is retried whole: the write is idempotent, the announcement is not lost.
    failed |= {mid for mid, r in records.items() if r.id in unannounced}
    metrics.add_metric(name="ItemsPersisted", unit=MetricUnit.Count, value=len(stored) - len(unannounced))
    if failed:
        metrics.add_metric(name="ItemsRetried", unit=MetricUnit.Count, value=len(failed))
        logger.warning("records not completed; reported for retry", extra={"message_ids": sorted(failed)})
    return failed


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    processor = BulkSqsProcessor(flush=flush, raise_on_entire_batch_failure=False, logger=logger)
    return process_partial_response(event=event, record_handler=parse, processor=processor, context=context)
