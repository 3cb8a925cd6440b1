"""SQS consumer: writes every event it receives to S3 as newline-delimited JSON.

A consumer-kit user (handlers/core/consumer.py). Per record: the kit validates the
CloudEvent (a poison message fails alone and reaches the DLQ after maxReceiveCount, as
with the persister). Per batch: one object per event date (normally one per batch), its
key derived from the event ids, so a retried or redelivered batch overwrites its own
object. Only records whose object could not be written are reported as batch item failures.
"""

from __future__ import annotations

from collections import defaultdict

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from handlers.core import archive
from handlers.core.clients import client
from handlers.core.consumer import bulk_consumer
from handlers.core.models import CloudEvent
from handlers.core.settings import archive_bucket


# No types: every published fanout event type is archived; unknown or invalid ones fail validation in the kit.
@bulk_consumer(name="archive")
def handler(batch: list[CloudEvent]) -> set[str]:
    """Write the batch's events, one object per date; return the ids of the events to retry."""
    by_day: dict[str, list[dict]] = defaultdict(list)
    for event in batch:
        raw = event.to_dict()
        by_day[archive.day(raw)].append(raw)
    s3, bucket = client("s3"), archive_bucket()
    failed: set[str] = set()
    for date, entries in sorted(by_day.items()):
        key = archive.object_key(date, (e["id"] for e in entries))
        try:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=archive.to_ndjson(entries),
                ContentType="application/x-ndjson",
            )
        except (ClientError, BotoCoreError):
            handler.logger.exception("archive object not written; its records will be retried", extra={"key": key})
            failed |= {e["id"] for e in entries}
            continue
        handler.metrics.add_metric(name="EventsArchived", unit=MetricUnit.Count, value=len(entries))
    return failed
