"""SQS consumer: stores each user's data in DynamoDB, then announces it on the EventBridge bus.

A consumer-kit user (fanout_kit). Per record: the kit validates the
CloudEvent (a poison message fails alone). Per batch: one BatchWriteItem per 25 items, one
PutEvents per 10. Only the records that could not be stored or announced are reported as
batch item failures, so SQS retries just those and moves them to the DLQ after
maxReceiveCount. Idempotent by event id: the item key is the id.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from fanout_kit import DataGenerated, DataPersisted, bulk_consumer
from handlers.core import bus, clients, store

clients.warm("dynamodb", "events")


def to_record(event: DataGenerated) -> store.Record:
    return store.Record(
        user=event.subject,
        id=event.id,
        information_one=event.data.information_one,
        information_two=event.data.information_two,
        created_at=event.time,
        correlation_id=event.correlation_id,
    )


def persisted_event(record: store.Record) -> DataPersisted:
    # Same id as the source event: consumers of the bus can dedupe on (source, id).
    return DataPersisted.new(
        source="fanout.persister",
        subject=record.user,
        data=record.to_api(),
        id=record.id,
        correlation_id=record.correlation_id,
    )


@bulk_consumer(DataGenerated, name="persister")
def handler(batch: list[DataGenerated]) -> set[str]:
    """Store and announce the batch's valid events; return the ids of those to retry."""
    records = {(r.user, r.id): r for r in map(to_record, batch)}
    unstored = store.write(list(records.values()))
    stored = [r for key, r in records.items() if key not in unstored]
    unannounced = bus.put([persisted_event(r) for r in stored])
    # A record stored but not announced is retried whole: the write is idempotent, the announcement is not lost.
    failed = {id_ for _, id_ in unstored} | set(unannounced)
    handler.metrics.add_metric(name="ItemsPersisted", unit=MetricUnit.Count, value=len(stored) - len(unannounced))
    if failed:
        handler.metrics.add_metric(name="ItemsRetried", unit=MetricUnit.Count, value=len(failed))
        handler.logger.warning("records not completed; reported for retry", extra={"event_ids": sorted(failed)})
    return failed
