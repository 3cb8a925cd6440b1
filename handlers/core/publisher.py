"""Publishing CloudEvents on the SNS topic, with the attributes filter policies match on.

On a FIFO topic (its ARN ends in ".fifo", on AWS and locally alike) every event goes out with
message group id = its subject, so each subject's events reach every consumer in publish order,
and deduplication id = its id, so a producer's retry within SNS's five-minute window is
delivered once. A replay adds its own run token to the deduplication id: it must be delivered
even when the original went out minutes ago.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from fanout_kit import CloudEvent, events, ids
from handlers.core import charset
from handlers.core.clients import client
from handlers.core.settings import topic_arn

PUBLISH_BATCH_MAX = 10


class PublishError(RuntimeError):
    pass


def typed(event: CloudEvent | dict[str, Any]) -> CloudEvent:
    """A model as it is (valid by construction); a dict (a replayed or hand-made event) validated into one."""
    return event if isinstance(event, CloudEvent) else CloudEvent.parse(event)


def is_fifo(arn: str) -> bool:
    """A FIFO topic or queue: SNS and SQS require the name (the ARN's or URL's end) to end in ".fifo"."""
    return arn.endswith(".fifo")


# What SNS and SQS accept as a message group id: 1 to 128 printable ASCII characters, no space.
GROUP_ID = re.compile(r"^[!-~]{1,128}$")


def message_group_id(subject: str) -> str:
    """The subject itself, or (a subject SNS cannot carry as a group id: longer than 128 characters,
    spaces, non-ASCII) its SHA-256, the same for every event of that subject, so order holds per subject."""
    if GROUP_ID.match(subject):
        return subject
    return "sha256:" + hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()


def ordering_fields(raw: dict[str, Any], fifo: bool, replay_run: str | None = None) -> dict[str, str]:
    """MessageGroupId and MessageDeduplicationId of an event on a FIFO topic or queue; nothing otherwise."""
    if not fifo:
        return {}
    dedup = str(raw["id"]) if replay_run is None else f"{raw['id']}.replay.{replay_run}"
    return {"MessageGroupId": message_group_id(str(raw["subject"])), "MessageDeduplicationId": dedup}


def publish(event: CloudEvent) -> str:
    """Publish one event; returns the SNS message id."""
    raw = event.to_dict()
    arn = topic_arn()
    response = client("sns").publish(
        TopicArn=arn,
        Message=charset.sqs_json(raw),
        MessageAttributes=events.sns_attributes(raw),
        **ordering_fields(raw, is_fifo(arn)),
    )
    return str(response["MessageId"])


def publish_batch(
    items: Sequence[CloudEvent | dict[str, Any]], *, attempts: int = 4, replay_run: str | None = None
) -> int:
    """PublishBatch 10 at a time, retrying per-entry failures; raises if any entry never goes out.

    `replay_run` (see `for_replay`) makes a FIFO topic's deduplication ids this replay's own.
    """
    # Dicts are validated here, once, before any call: a retry resends the same events.
    batch = [typed(e).to_dict() for e in items]
    sns = client("sns")
    arn = topic_arn()
    fifo = is_fifo(arn)
    published = 0
    for start in range(0, len(batch), PUBLISH_BATCH_MAX):
        pending = {e["id"]: e for e in batch[start : start + PUBLISH_BATCH_MAX]}
        for attempt in range(attempts):
            if attempt:
                time.sleep(0.1 * 2**attempt)
            response = sns.publish_batch(
                TopicArn=arn,
                PublishBatchRequestEntries=[
                    {
                        # Entry ids allow only letters, digits, '-' and '_': ULIDs qualify.
                        "Id": e["id"],
                        "Message": charset.sqs_json(e),
                        "MessageAttributes": events.sns_attributes(e),
                        **ordering_fields(e, fifo, replay_run),
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


def for_replay() -> Callable[[Sequence[CloudEvent | dict[str, Any]]], int]:
    """`publish_batch` for one replay run: on a FIFO topic its deduplication ids are the event id plus
    this run's token, so the replay is not swallowed as a retry of the original (or of another replay),
    while a retry within the run still is. Events keep their ids, so idempotent consumers stay so."""
    return functools.partial(publish_batch, replay_run=ids.new_id())
