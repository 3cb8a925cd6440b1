"""SQS consumer: writes every event it receives to S3 as newline-delimited JSON.

Per record: parse and validate the CloudEvent (a poison message fails alone and reaches
the DLQ after maxReceiveCount, as with the persister). Per batch: one object per event
date (normally one per batch), its key derived from the event ids, so a retried or
redelivered batch overwrites its own object. Only records whose object could not be
written are reported as batch item failures.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from handlers.core import archive, events, observability
from handlers.core.batch import BulkSqsProcessor
from handlers.core.clients import client
from handlers.core.settings import archive_bucket

logger = Logger(service="archive")
metrics = observability.metrics("archive")
tracer = observability.tracer("archive")


def parse(record: SQSRecord) -> dict[str, Any]:
    # Any published fanout event type is archived; unknown or invalid ones fail validation here.
    return events.parse(record.body)


@tracer.capture_method
def flush(batch: list[tuple[SQSRecord, dict[str, Any]]]) -> set[str]:
    """Write the batch's events, one object per date; return the message ids to retry."""
    by_day: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for message, event in batch:
        by_day[archive.day(event)].append((message.message_id, event))
    s3, bucket = client("s3"), archive_bucket()
    failed: set[str] = set()
    for date, entries in sorted(by_day.items()):
        key = archive.object_key(date, (e["id"] for _, e in entries))
        try:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=archive.to_ndjson(e for _, e in entries),
                ContentType="application/x-ndjson",
            )
        except (ClientError, BotoCoreError):
            logger.exception("archive object not written; its records will be retried", extra={"key": key})
            failed |= {mid for mid, _ in entries}
            continue
        metrics.add_metric(name="EventsArchived", unit=MetricUnit.Count, value=len(entries))
    return failed


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    processor = BulkSqsProcessor(flush=flush, raise_on_entire_batch_failure=False, logger=logger)
    return process_partial_response(event=event, record_handler=parse, processor=processor, context=context)
