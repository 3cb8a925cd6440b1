"""SQS batches: validate each record, then write the good ones in bulk, report the rest.

Powertools' BatchProcessor handles one record at a time; writing with BatchWriteItem
and PutEvents needs the whole batch. This processor runs the per-record step through
Powertools, then a bulk `flush` over the successes, and marks as failed every record
the flush could not complete, so `process_partial_response` reports exactly those.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

# flush gets (record, per-record result) pairs and returns the message ids it could not complete.
Flush = Callable[[list[tuple[SQSRecord, Any]]], set[str]]


class FlushFailed(Exception):
    """A record passed validation but its bulk write or announcement did not complete."""


class BulkSqsProcessor(BatchProcessor):
    def __init__(self, flush: Flush, **kwargs: Any) -> None:
        super().__init__(event_type=EventType.SQS, **kwargs)
        self._flush = flush

    def process(self) -> list[tuple[Any, ...]]:
        results = super().process()
        ok = [(SQSRecord(raw), result) for status, result, raw in results if status == "success"]
        if not ok:
            return results
        failed_ids = self._flush(ok)
        if not failed_ids:
            return results
        out = []
        for entry in results:
            status, _, raw = entry
            if status == "success" and raw["messageId"] in failed_ids:
                self.success_messages.remove(raw)
                try:
                    raise FlushFailed(f"message {raw['messageId']} was not stored; it will be retried")
                except FlushFailed:
                    entry = self.failure_handler(SQSRecord(raw), sys.exc_info())
            out.append(entry)
        return out
