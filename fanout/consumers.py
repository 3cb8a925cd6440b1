"""Consumers as the AWS APIs see them: create, discover, inspect and redrive.

A consumer is an SQS queue subscribed to the topic with raw delivery, with its own DLQ.
Queues carry the tag `fanout:consumer` = name, so discovery works from the AWS APIs
alone, on the local endpoint and on AWS alike.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from fanout.topology import NameUse, Topology

TAG = "fanout:consumer"
ROLE_TAG = "fanout:role"  # "dlq" on a consumer's DLQ, "tap" on the local observers' queues
SOURCE_TAG = "fanout:source"  # "bus" on a bus consumer's queue
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


class ConsumerError(RuntimeError):
    pass


@dataclass(frozen=True)
class ConsumerQueues:
    name: str
    queue_url: str
    dlq_url: str | None
    # Nothing delivers to it any more (removed from the stack config): its queues are kept while they
    # hold messages, and the DLQ tools still work on them.
    removed: bool = False
    # Queue names it should have and that do not exist (someone deleted its DLQ): reported, never fatal.
    missing: tuple[str, ...] = ()

    def as_json(self) -> dict[str, str | None]:
        return {"queue_url": self.queue_url, "dlq_url": self.dlq_url}


def _is_missing(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    return "NonExistentQueue" in code or "QueueDoesNotExist" in code


def _dlq_of(sqs: Any, url: str, account: str | None = None) -> tuple[str | None, tuple[str, ...]]:
    """(DLQ URL, ()) of a queue from its redrive policy; (None, (its name,)) when that DLQ is gone."""
    try:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    except ClientError as exc:
        if _is_missing(exc):
            return None, ()
        raise
    if "RedrivePolicy" not in attrs:
        return None, ()
    dlq_name = json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"].rsplit(":", 1)[-1]
    kwargs = {"QueueOwnerAWSAccountId": account} if account else {}
    try:
        return sqs.get_queue_url(QueueName=dlq_name, **kwargs)["QueueUrl"], ()
    except ClientError as exc:
        if _is_missing(exc):
            return None, (dlq_name,)
        raise


def queue_tags(sqs: Any, url: str) -> dict[str, str] | None:
    """A queue's tags, or None when it was deleted meanwhile."""
    try:
        return sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
    except ClientError as exc:
        if _is_missing(exc):
            return None
        raise


def queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _sqs_subscriptions(sns: Any, topic_arn: str) -> list[dict[str, Any]]:
    subs: list[dict[str, Any]] = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        subs += [s for s in page["Subscriptions"] if s["Protocol"] == "sqs"]
    return subs


sqs_subscriptions = _sqs_subscriptions


def ensure(
    sqs: Any,
    sns: Any,
    topic_arn: str,
    *,
    name: str,
    queue_name: str,
    dlq_name: str,
    max_receive_count: int = 3,
    visibility_timeout: int = 30,
    filter_policy: dict[str, Any] | None = None,
    filter_scope: str = "MessageAttributes",
    tags: dict[str, str] | None = None,
) -> ConsumerQueues:
    """Create (or update) the queue, its DLQ and the raw-delivery subscription. Idempotent.

    `tags` go on the queue too (`fanout subscribe --handler`: which handler the local runtime runs).
    """
    dlq_url, redrive = _dlq(sqs, name, dlq_name, max_receive_count)
    _refuse_foreign(sqs, queue_name, name, None)
    queue_url = sqs.create_queue(QueueName=queue_name, tags={TAG: name})["QueueUrl"]
    if tags:
        sqs.tag_queue(QueueUrl=queue_url, Tags=tags)
    arn = queue_arn(sqs, queue_url)
    _admit_only(sqs, queue_url, arn, "sns.amazonaws.com", topic_arn, visibility_timeout, redrive)
    attributes = {"RawMessageDelivery": "true", "FilterPolicyScope": filter_scope}
    if filter_policy:
        attributes["FilterPolicy"] = json.dumps(filter_policy)
    existing = [s for s in _sqs_subscriptions(sns, topic_arn) if s["Endpoint"] == arn]
    if existing:
        for key, value in attributes.items():
            sns.set_subscription_attributes(
                SubscriptionArn=existing[0]["SubscriptionArn"], AttributeName=key, AttributeValue=value
            )
    else:
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return ConsumerQueues(name, queue_url, dlq_url)


def _dlq(sqs: Any, name: str, dlq_name: str, max_receive_count: int) -> tuple[str, str]:
    """A consumer's DLQ (created or found) and the redrive policy that sends its queue's poison there."""
    _refuse_foreign(sqs, dlq_name, name, "dlq")
    dlq_url = sqs.create_queue(
        QueueName=dlq_name,
        Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)},
        tags={TAG: name, "fanout:role": "dlq"},
    )["QueueUrl"]
    redrive = json.dumps({"deadLetterTargetArn": queue_arn(sqs, dlq_url), "maxReceiveCount": max_receive_count})
    return dlq_url, redrive


def _refuse_foreign(sqs: Any, queue_name: str, name: str, role: str | None) -> None:
    """Never adopt a queue made for something else: another consumer's queue or DLQ, a trace tap, a tail queue.

    CreateQueue on an existing name answers that queue's URL, so without this a consumer named like
    another's DLQ would take its dead letters.
    """
    try:
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    except ClientError as exc:
        if _is_missing(exc):
            return
        raise
    tags = queue_tags(sqs, url)
    if tags is None:
        return
    if tags.get(TAG) != name or tags.get(ROLE_TAG) != role:
        owner = f"consumer {tags[TAG]!r}" if TAG in tags else "no consumer"
        what = f"{tags[ROLE_TAG]} queue" if ROLE_TAG in tags else "queue"
        raise ConsumerError(
            f"queue {queue_name} exists already as a {what} of {owner}; consumer {name!r} will not adopt it"
        )


def _admit_only(
    sqs: Any, queue_url: str, arn: str, service: str, source_arn: str, visibility_timeout: int, redrive: str
) -> None:
    """The queue takes messages from one source only (aws:SourceArn: the topic, or the bus rule), as on AWS."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TopicOnly" if service == "sns.amazonaws.com" else "RuleOnly",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": redrive,
            "Policy": json.dumps(policy),
        },
    )


def ensure_kept(
    sqs: Any,
    *,
    name: str,
    queue_name: str | None,
    dlq_name: str | None,
    max_receive_count: int = 3,
    visibility_timeout: int = 30,
    tags: dict[str, str] | None = None,
) -> ConsumerQueues:
    """The kept queues of a consumer removed from the stack config, made again: its DLQ, and its queue
    redriving to it, tagged as they were; nothing delivers to them (no subscription, no rule)."""
    dlq_url, redrive = _dlq(sqs, name, dlq_name, max_receive_count) if dlq_name else (None, None)
    queue_url = ""
    if queue_name:
        _refuse_foreign(sqs, queue_name, name, None)
        queue_url = sqs.create_queue(QueueName=queue_name, tags={**(tags or {}), TAG: name})["QueueUrl"]
        attributes = {"VisibilityTimeout": str(visibility_timeout)}
        if redrive:
            attributes["RedrivePolicy"] = redrive
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=attributes)
    return ConsumerQueues(name, queue_url, dlq_url, removed=True)


def queue_exists(sqs: Any, name: str) -> bool:
    try:
        sqs.get_queue_url(QueueName=name)
    except ClientError as exc:
        if _is_missing(exc):
            return False
        raise
    return True


def remove(sqs: Any, sns: Any, topic_arn: str, queue_name: str, dlq_name: str) -> None:
    """Undo `ensure` for a consumer: its subscription, queue and DLQ, whichever exist."""
    for name in (queue_name, dlq_name):
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            arn = queue_arn(sqs, url)
        except ClientError as exc:
            if _is_missing(exc):
                continue
            raise
        for sub in _sqs_subscriptions(sns, topic_arn):
            if sub["Endpoint"] == arn:
                sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
        try:
            sqs.delete_queue(QueueUrl=url)
        except ClientError as exc:
            if not _is_missing(exc):
                raise


HANDLER_TAG = "fanout:handler"  # MODULE:FUNCTION the local runtime invokes with the queue's batches
PATH_TAG = "fanout:path"  # the directory MODULE is imported from (first on its path)
_HANDLER_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def handler_tags(handler: str | None, path: str | None) -> dict[str, str]:
    """The queue tags of `subscribe --handler MODULE:FUNCTION [--path DIR]`, checked; errors name the flag."""
    if handler is None:
        if path is not None:
            raise ConsumerError("--path goes with --handler MODULE:FUNCTION")
        return {}
    if not _HANDLER_RE.match(handler):
        raise ConsumerError(f"--handler must look like module.name:function, got {handler!r}")
    tags = {HANDLER_TAG: handler}
    if path is not None:
        from pathlib import Path

        root = Path(path).expanduser().resolve()
        if not root.is_dir():
            raise ConsumerError(f"--path {path}: no such directory")
        module = handler.split(":", 1)[0].replace(".", "/")
        if not (root / f"{module}.py").is_file() and not (root / module / "__init__.py").is_file():
            raise ConsumerError(f"--path {path}: no {module}.py (or package {module}/) in it for --handler {handler}")
        if len(str(root)) > 256:
            raise ConsumerError(f"--path {path}: at most 256 characters once absolute (an SQS tag value)")
        tags[PATH_TAG] = str(root)
    return tags


def ensure_bus(
    sqs: Any,
    events: Any,
    bus_name: str,
    *,
    name: str,
    queue_name: str,
    dlq_name: str,
    event_pattern: dict[str, Any],
    max_receive_count: int = 3,
    visibility_timeout: int = 30,
) -> ConsumerQueues:
    """A bus consumer: queue and DLQ, and a rule on the bus (named as the queue) targeting the queue. Idempotent.

    The queue admits only this rule (aws:SourceArn), as on AWS; moto delivers PutEvents to SQS targets.
    """
    dlq_url, redrive = _dlq(sqs, name, dlq_name, max_receive_count)
    _refuse_foreign(sqs, queue_name, name, None)
    queue_url = sqs.create_queue(QueueName=queue_name, tags={TAG: name, SOURCE_TAG: "bus"})["QueueUrl"]
    arn = queue_arn(sqs, queue_url)
    rule_arn = events.put_rule(Name=queue_name, EventBusName=bus_name, EventPattern=json.dumps(event_pattern))[
        "RuleArn"
    ]
    _admit_only(sqs, queue_url, arn, "events.amazonaws.com", rule_arn, visibility_timeout, redrive)
    events.put_targets(Rule=queue_name, EventBusName=bus_name, Targets=[{"Id": "queue", "Arn": arn}])
    return ConsumerQueues(name, queue_url, dlq_url)


def remove_bus_rule(events: Any, bus_name: str, rule_name: str) -> None:
    """Stop a bus consumer's deliveries: its rule and target (the queues are the caller's to keep or delete)."""
    try:
        targets = events.list_targets_by_rule(Rule=rule_name, EventBusName=bus_name).get("Targets", [])
        if targets:
            events.remove_targets(Rule=rule_name, EventBusName=bus_name, Ids=[t["Id"] for t in targets])
        events.delete_rule(Name=rule_name, EventBusName=bus_name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise


def _bus_consumers(sqs: Any, events: Any, bus_name: str) -> dict[str, ConsumerQueues]:
    found: dict[str, ConsumerQueues] = {}
    try:
        rules = events.list_rules(EventBusName=bus_name).get("Rules", [])
    except ClientError:
        return found
    for rule in rules:
        for target in events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus_name).get("Targets", []):
            if not target["Arn"].startswith("arn:aws:sqs:"):
                continue
            _, _, _, _, account, queue_name = target["Arn"].split(":", 5)
            try:
                url = sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            except ClientError:
                continue
            tags = queue_tags(sqs, url)
            if tags is None or TAG not in tags or tags.get(ROLE_TAG) == "tap":
                continue  # only consumers (the trace's tap rule and others' targets are not)
            dlq_url, missing = _dlq_of(sqs, url, account)
            found[tags[TAG]] = ConsumerQueues(tags[TAG], url, dlq_url, missing=missing)
    return found


def discover(
    sqs: Any, sns: Any, topic_arn: str, *, events: Any = None, bus_name: str | None = None
) -> dict[str, ConsumerQueues]:
    """Every SQS subscriber of the topic, by consumer name; with `events` and `bus_name`, the bus's too."""
    found: dict[str, ConsumerQueues] = _bus_consumers(sqs, events, bus_name) if events and bus_name else {}
    for sub in _sqs_subscriptions(sns, topic_arn):
        _, _, _, _, account, queue_name = sub["Endpoint"].split(":", 5)
        try:
            url = sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        except ClientError:
            continue  # subscription to a deleted queue
        tags = queue_tags(sqs, url)
        if tags is None or tags.get(ROLE_TAG) == "tap":
            continue  # the local trace taps and `fanout tail`'s queue observe the topic; they are not consumers
        name = tags.get(TAG, queue_name)
        dlq_url, missing = _dlq_of(sqs, url, account)
        found[name] = ConsumerQueues(name, url, dlq_url, missing=missing)
    return found


def discover_kept(
    sqs: Any, known: dict[str, ConsumerQueues], declared: Collection[str] = ()
) -> dict[str, ConsumerQueues]:
    """Consumers nothing delivers to any more whose queues are kept (they held messages when the consumer
    was removed from the stack config): queues tagged with a consumer name neither in `known` nor `declared`."""
    queues: dict[str, dict[str, str]] = {}
    taken = {u for q in known.values() for u in (q.queue_url, q.dlq_url) if u}
    for page in sqs.get_paginator("list_queues").paginate():
        for url in page.get("QueueUrls", []):
            if url in taken:
                continue
            tags = queue_tags(sqs, url)
            if (
                tags is None
                or TAG not in tags
                or tags[TAG] in known
                or tags[TAG] in declared
                or tags.get(ROLE_TAG) == "tap"
            ):
                continue
            queues.setdefault(tags[TAG], {})[tags.get(ROLE_TAG) or "queue"] = url
    kept = {}
    for name, urls in sorted(queues.items()):
        if "queue" in urls:
            dlq_url, missing = _dlq_of(sqs, urls["queue"])
            kept[name] = ConsumerQueues(name, urls["queue"], dlq_url or urls.get("dlq"), removed=True, missing=missing)
        else:  # only its DLQ is left (its queue was deleted): reported missing, nothing to redrive into
            queue = urls["dlq"].rsplit("/", 1)[-1].removesuffix("-dlq")
            kept[name] = ConsumerQueues(name, "", urls["dlq"], missing=(queue,))
    return kept


def counts(sqs: Any, url: str | None) -> int | None:
    """Messages in a queue (waiting and in flight), or None when it does not exist."""
    if not url:
        return None
    try:
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
    except ClientError as exc:
        if _is_missing(exc):
            return None
        raise
    return sum(int(v) for v in attrs.values())


def name_uses(topo: Topology, found: dict[str, ConsumerQueues], kept: dict[str, ConsumerQueues]) -> list[NameUse]:
    """Every consumer name in use on a running stack, with its queues: declared, subscribed, and kept."""
    uses = topo.name_uses()
    declared = {u.name for u in uses}

    def names(q: ConsumerQueues) -> tuple[str, ...]:
        return tuple(u.rsplit("/", 1)[-1] for u in (q.queue_url, q.dlq_url) if u) + q.missing

    for name, q in sorted(found.items()):
        if name not in declared:
            uses.append(NameUse(name, "subscribed with `fanout subscribe`", names(q)))
    for name, q in sorted(kept.items()):
        if name not in declared:
            uses.append(
                NameUse(
                    name,
                    f"removed from Pulumi.{topo.stack}.yaml, its queues are kept while they hold messages "
                    f"(`fanout dlq purge {name}` and `fanout unsubscribe {name} --force` free the name)",
                    names(q),
                )
            )
    return uses


def peek(sqs: Any, queue_url: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Read messages without consuming them: received briefly, then made visible again."""
    seen: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    try:
        while len(seen) < limit:
            batch = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=30,  # only while this look pages through; released below, whatever happens
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            handles += [m["ReceiptHandle"] for m in batch]
            fresh = [m for m in batch if m["MessageId"] not in seen]
            if not fresh:
                break  # empty, or only messages seen already (they came back): the whole queue was read
            for m in fresh:
                seen[m["MessageId"]] = m
    finally:
        for start in range(0, len(handles), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for i, h in enumerate(handles[start : start + 10])
                ],
            )
    return list(seen.values())


def _move_task_unavailable(exc: ClientError) -> bool:
    """True when the endpoint cannot run move tasks (moto answers an unknown action with a bare 500).

    Falling back is safe anywhere: receive-send-delete is the same move, one batch at a time.
    Permission and validation errors are not this, and are raised.
    """
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    text = f"{error.get('Code', '')} {error.get('Message', '')}".lower()
    return status in (500, 501) or "not been implemented" in text or "notimplemented" in text


def redrive(sqs: Any, dlq_url: str, queue_url: str, *, timeout: float = 120) -> int:
    """Move every DLQ message back to its queue; returns how many moved.

    Uses StartMessageMoveTask where the endpoint has it (AWS); an endpoint without it
    (moto) gets the same effect by receive, send, delete, one batch at a time.
    """
    try:
        task = sqs.start_message_move_task(SourceArn=queue_arn(sqs, dlq_url), DestinationArn=queue_arn(sqs, queue_url))
    except ClientError as exc:
        if not _move_task_unavailable(exc):
            raise
        return _redrive_by_copy(sqs, dlq_url, queue_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t in sqs.list_message_move_tasks(SourceArn=queue_arn(sqs, dlq_url)).get("Results", []):
            if t.get("TaskHandle") == task["TaskHandle"] and t["Status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                if t["Status"] != "COMPLETED":
                    raise ConsumerError(f"message move task {t['Status'].lower()}: {t.get('FailureReason', '')}")
                return int(t.get("ApproximateNumberOfMessagesMoved", 0))
        time.sleep(1)
    raise ConsumerError("message move task did not finish in time; check it with list-message-move-tasks")


def _redrive_by_copy(sqs: Any, dlq_url: str, queue_url: str) -> int:
    moved = 0
    while True:
        batch = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=60,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return moved
        entries = []
        for i, m in enumerate(batch):
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": m["Body"]}
            if m.get("MessageAttributes"):
                entry["MessageAttributes"] = m["MessageAttributes"]
            entries.append(entry)
        sent = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        ok = {s["Id"] for s in sent.get("Successful", [])}
        # Delete only what was sent: a message is never in neither queue.
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch) if str(i) in ok]
        if done:
            sqs.delete_message_batch(QueueUrl=dlq_url, Entries=done)
        moved += len(done)
        if len(done) < len(batch):
            raise ConsumerError(f"moved {moved}; {len(batch) - len(done)} messages could not be sent back")


def purge(sqs: Any, queue_url: str) -> int:
    """Delete every message of a queue (a DLQ); returns how many were removed.

    Received and deleted in batches rather than PurgeQueue, so the count is exact and a
    second purge within 60 s (which AWS refuses) works too.
    """
    removed = 0
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return removed
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
        removed += len(batch)


def subscription_filter(sqs: Any, sns: Any, topic_arn: str, queue_url: str) -> tuple[dict[str, Any] | None, str]:
    """(filter policy or None, scope) of the topic's subscription for this queue."""
    arn = queue_arn(sqs, queue_url)
    for sub in _sqs_subscriptions(sns, topic_arn):
        if sub["Endpoint"] == arn:
            attrs = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"]
            policy = attrs.get("FilterPolicy")
            return (json.loads(policy) if policy else None), attrs.get("FilterPolicyScope") or "MessageAttributes"
    return None, "MessageAttributes"
