"""SQS consumer: writes every event it receives to S3 as newline-delimited JSON.

A consumer-kit user (fanout_kit). Per record: the kit validates the
CloudEvent (a poison message fails alone and reaches the DLQ after maxReceiveCount, as
with the persister). Per batch: one object per day its events fall on (handlers/core/archive.py),
one S3 PUT for up to the consumer's batch size of events; replay reads each event id once, so a
redelivered or replayed event written again in a later batch is not replayed twice. Only records
whose object could not be written are reported as batch item failures, and come back.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from fanout_kit import CloudEvent, bulk_consumer
from handlers.core import archive
from handlers.core.clients import client
from handlers.core.settings import archive_bucket


# No types: every published fanout event type is archived; unknown or invalid ones fail validation in the kit.
@bulk_consumer(name="archive")
def handler(batch: list[CloudEvent]) -> set[str]:
    """Write the batch's events, one object per day; return the ids of the events to retry."""
    failed = archive.write(client("s3"), archive_bucket(), [event.to_dict() for event in batch])
    if failed:
        first = next(iter(failed.values()))
        handler.logger.warning(
            f"{len(failed)} events not archived ({type(first).__name__}: {first}); their records will be retried",
            extra={"event_ids": sorted(failed)},
        )
    written = len({event.id for event in batch}) - len(failed)
    if written:
        handler.metrics.add_metric(name="EventsArchived", unit=MetricUnit.Count, value=written)
    return set(failed)
