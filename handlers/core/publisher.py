"""Publishing CloudEvents on the SNS topic, with the attributes filter policies match on."""

from __future__ import annotations

import time
from typing import Any

from handlers.core import charset, events
from handlers.core.clients import client
from handlers.core.settings import topic_arn

PUBLISH_BATCH_MAX = 10


class PublishError(RuntimeError):
    pass


def publish(event: dict[str, Any]) -> str:
    """Publish one validated event; returns the SNS message id."""
    events.validate(event)
    response = client("sns").publish(
        TopicArn=topic_arn(),
        Message=charset.sqs_json(event),
        MessageAttributes=events.sns_attributes(event),
    )
    return response["MessageId"]


def publish_batch(batch: list[dict[str, Any]], *, attempts: int = 4) -> int:
    """PublishBatch 10 at a time, retrying per-entry failures; raises if any entry never goes out."""
    for event in batch:
        events.validate(event)
    sns = client("sns")
    published = 0
    for start in range(0, len(batch), PUBLISH_BATCH_MAX):
        pending = {e["id"]: e for e in batch[start : start + PUBLISH_BATCH_MAX]}
        for attempt in range(attempts):
            if attempt:
                time.sleep(0.1 * 2**attempt)
            response = sns.publish_batch(
                TopicArn=topic_arn(),
                PublishBatchRequestEntries=[
                    {
                        # Entry ids allow only letters, digits, '-' and '_': ULIDs qualify.
                        "Id": e["id"],
                        "Message": charset.sqs_json(e),
                        "MessageAttributes": events.sns_attributes(e),
                    }
                    for e in pending.values()
                ],
            )
            for ok in response.get("Successful", []):
                published += 1
                pending.pop(ok["Id"], None)
            if not pending:
                break
        if pending:
            raise PublishError(f"{len(pending)} events could not be published after {attempts} attempts")
    return published
