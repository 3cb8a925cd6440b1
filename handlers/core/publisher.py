"""Publishing CloudEvents on the SNS topic, with the attributes filter policies match on."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fanout_kit import CloudEvent, events
from handlers.core import charset
from handlers.core.clients import client
from handlers.core.settings import topic_arn

PUBLISH_BATCH_MAX = 10


class PublishError(RuntimeError):
    pass


def typed(event: CloudEvent | dict[str, Any]) -> CloudEvent:
    """A model as it is (valid by construction); a dict (a replayed or hand-made event) validated into one."""
    return event if isinstance(event, CloudEvent) else CloudEvent.parse(event)


def publish(event: CloudEvent) -> str:
    """Publish one event; returns the SNS message id."""
    raw = event.to_dict()
    response = client("sns").publish(
        TopicArn=topic_arn(),
        Message=charset.sqs_json(raw),
        MessageAttributes=events.sns_attributes(raw),
    )
    return str(response["MessageId"])


def publish_batch(items: Sequence[CloudEvent | dict[str, Any]], *, attempts: int = 4) -> int:
    """PublishBatch 10 at a time, retrying per-entry failures; raises if any entry never goes out."""
    # Dicts are validated here, once, before any call: a retry resends the same events.
    batch = [typed(e).to_dict() for e in items]
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
