"""The example subscriber: keeps a copy of each generated event in its own bucket.

Built on fanout's consumer kit, so it gets what every fanout consumer gets: both message shapes,
schema validation into a typed event, partial batch failures (a failing record alone is retried
and reaches the DLQ), event and correlation ids in every log line. The same function runs
locally against `make run`:

    fanout subscribe audit --handler subscriber_app.handler:handler --path examples/subscriber

and on AWS, deployed by this project's __main__.py into the subscriber's own account.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import boto3

from fanout_kit import DataGenerated, consumer
from fanout_kit.kit import logger_for

SERVICE = "subscriber-example"
# On AWS the project sets RECEIVED_BUCKET to the bucket it creates; `fanout subscribe --handler`
# sets no variables of its own, so locally the handler writes to the bucket of this name.
DEFAULT_BUCKET = "subscriber-example-received"
log = logger_for(SERVICE)


@functools.cache
def _s3() -> Any:
    return boto3.client("s3")


def object_key(event: DataGenerated) -> str:
    """received/<user>/<event id>.json: one object per event, so a redelivery overwrites, never duplicates."""
    return f"received/{event.subject}/{event.id}.json"


@consumer(DataGenerated, name=SERVICE)
def handler(event: DataGenerated) -> None:
    bucket = os.environ.get("RECEIVED_BUCKET") or DEFAULT_BUCKET
    _s3().put_object(
        Bucket=bucket,
        Key=object_key(event),
        Body=json.dumps(event.to_dict(), ensure_ascii=False).encode(),
        ContentType="application/json",
    )
    log.info("stored", extra={"bucket": bucket, "key": object_key(event)})
