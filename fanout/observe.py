"""Seeing events from the CLI: `fanout tail`, `fanout trace`, and the DLQ and consumer tools that say why.

`tail` listens through a temporary queue subscribed to the topic with a filter policy made of
--type/--subject, and removes both on every way out: --count reached, SIGINT, SIGTERM, an error.
Signals are deferred while the queue or subscription is being made or removed (the handler only
sets a flag: no lock, no I/O), so no way out leaves either behind.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from fanout import consumers, localenv, topology, tracing, untrusted

# Control characters escaped: a printed field must not drive the terminal.
from fanout.text import plural, printable, printable_json


def say(text: str, *, err: bool = False) -> None:
    """One line to stdout (or stderr), flushed at once: `tail` output is read as it comes."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


BUS_REPLAY = (
    "{name} is a bus consumer: the S3 archive holds the topic's events; on AWS replay the bus with "
    "--aws --event-archive ARN --event-bus ARN"
)
TAIL_TAG = {"fanout:role": "tap", "fanout:tail": "true"}


def _cli_error(message: str) -> Exception:
    from fanout.cli import CliError

    return CliError(message)


# ---------------------------------------------------------------------- trace


def cmd_trace(args: argparse.Namespace) -> None:
    try:
        if args.aws:
            import boto3

            topo = topology.load(args.stack or localenv.load().stack)
            doc = tracing.on_aws(boto3.client("logs"), topo, args.id, args.log_group)
        else:
            env = localenv.for_cli()
            doc = tracing.local(env.api_url, args.id)
    except tracing.TraceError as exc:
        raise _cli_error(str(exc)) from None
    if args.json:
        say(printable_json(tracing.contract_shape(doc)))
    else:
        say(tracing.human(doc, printable))


# ---------------------------------------------------------------------- tail


class _Signals:
    """SIGINT/SIGTERM as a flag; raises _Stop only where `interruptible` is set (never mid-setup or cleanup)."""

    class Stop(BaseException):
        pass

    def __init__(self) -> None:
        self.requested = False
        self.interruptible = False
        self._previous: dict[int, Any] = {}

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True  # an assignment only: safe whatever the main thread holds
        if self.interruptible:
            self.interruptible = False
            raise _Signals.Stop

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    @contextmanager
    def allowed(self) -> Iterator[None]:
        if self.requested:
            raise _Signals.Stop
        self.interruptible = True
        try:
            yield
        finally:
            self.interruptible = False


def tail_policy(event_type: str | None, subject: str | None) -> dict[str, list[str]] | None:
    policy = {}
    if event_type:
        policy["type"] = [event_type]
    if subject:
        policy["subject"] = [subject]
    return policy or None


class TailQueue:
    """The temporary queue and its subscription; `remove()` undoes whatever `create()` got to make."""

    def __init__(self, sqs: Any, sns: Any, topic_arn: str, policy: dict[str, Any] | None) -> None:
        self.sqs, self.sns, self.topic_arn, self.policy = sqs, sns, topic_arn, policy
        self.name = f"fanout-tail-{os.getpid()}-{secrets.token_hex(4)}"
        self.url: str | None = None
        self.subscription: str | None = None

    def create(self) -> None:
        self.url = self.sqs.create_queue(
            QueueName=self.name, Attributes={"MessageRetentionPeriod": "3600"}, tags=TAIL_TAG
        )["QueueUrl"]
        arn = consumers.queue_arn(self.sqs, self.url)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self.topic_arn}},
                }
            ],
        }
        self.sqs.set_queue_attributes(QueueUrl=self.url, Attributes={"Policy": json.dumps(policy)})
        attributes = {"RawMessageDelivery": "true"}
        if self.policy:
            attributes["FilterPolicy"] = json.dumps(self.policy)
        self.subscription = self.sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes, ReturnSubscriptionArn=True
        )["SubscriptionArn"]

    def remove(self) -> None:
        if self.subscription:
            self.sns.unsubscribe(SubscriptionArn=self.subscription)
            self.subscription = None
        if self.url:
            self.sqs.delete_queue(QueueUrl=self.url)
            self.url = None

    def receive(self) -> list[dict[str, Any]]:
        assert self.url is not None
        return self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])

    def delete(self, messages: list[dict[str, Any]]) -> None:
        if messages and self.url:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )


def tail_line(event: dict[str, Any]) -> str:
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    fields = " ".join(f"{k}={printable(json.dumps(v, ensure_ascii=False))}" for k, v in sorted(data.items()))
    return (
        f"{printable(event.get('time', '?'))}  {printable(event.get('type', '?'))}  {printable(event.get('id', '?'))}"
        f"  subject={printable(event.get('subject', '?'))}  {fields}".rstrip()
    )


PREVIEW_CHARS = 60


def skipped_line(message: dict[str, Any], parsed: untrusted.Parsed) -> str:
    """One line naming a message `tail` does not print, and why."""
    body = message.get("Body", "")
    why = parsed.problem
    preview = body[:PREVIEW_CHARS] + ("…" if len(body) > PREVIEW_CHARS else "")
    return printable(
        f"fanout: skipped message {message.get('MessageId')} ({untrusted.size(body)}): body is {why}; "
        f"it starts {preview!r}"
    )


def cmd_tail(args: argparse.Namespace) -> None:
    if args.aws:
        if not args.topic_arn:
            raise _cli_error("--aws needs --topic-arn (the stack output topic_arn)")
        import boto3

        sqs, sns, topic_arn = boto3.client("sqs"), boto3.client("sns"), args.topic_arn
    else:
        from fanout.cli import Stack

        stack = Stack()
        sqs, sns, topic_arn = stack.sqs, stack.sns, stack.topic_arn
    tail(sqs, sns, topic_arn, args.type, args.subject, args.json, args.count)


def tail(
    sqs: Any, sns: Any, topic_arn: str, event_type: str | None, subject: str | None, as_json: bool, count: int | None
) -> int:
    """Print events until `count` of them (or a stop signal); returns how many were printed."""
    queue = TailQueue(sqs, sns, topic_arn, tail_policy(event_type, subject))
    printed = 0
    with _Signals() as signals:
        try:
            queue.create()
            what = " ".join(f"{k}={v[0]}" for k, v in (queue.policy or {}).items()) or "every event"
            say(f"fanout: tailing {topic_arn} ({what}); Ctrl+C stops", err=True)
            while count is None or printed < count:
                with signals.allowed():
                    batch = queue.receive()
                done = []
                for m in batch:
                    if count is not None and printed >= count:
                        break  # the rest goes with the queue
                    done.append(m)
                    # Anyone can publish anything: what is not JSON (or too deep to handle) is named on stderr.
                    parsed = untrusted.parse(m["Body"])
                    if not parsed.ok:
                        say(skipped_line(m, parsed), err=True)
                        continue
                    event = parsed.value
                    if as_json:
                        say(printable_json(event))  # any JSON value, escaped for the terminal
                    else:
                        say(tail_line(event) if isinstance(event, dict) else printable(m["Body"]))
                    printed += 1
                queue.delete(done)
                if signals.requested:
                    break
        except _Signals.Stop:
            pass
        finally:
            queue.remove()  # signals stay deferred here: the handler only sets a flag outside `allowed`
    return printed


# ---------------------------------------------------------------------- DLQ tools


def dlq_messages(consumer: str) -> tuple[str, list[dict[str, Any]]]:
    """(DLQ URL, messages with receiveCount on arrival and last error), from the running stack's ledger."""
    from urllib.parse import quote

    env = localenv.for_cli()
    try:
        doc = tracing.local_get(env.api_url, f"/_local/consumers/{quote(consumer, safe='')}/dlq", timeout=30)
    except tracing.TraceError as exc:
        raise _cli_error(str(exc)) from None
    return str(doc.get("dlq_url")), list(doc.get("messages", []))


def cmd_dlq_purge(args: argparse.Namespace) -> None:
    from fanout.cli import Stack

    stack = Stack()
    _, dlq_url = stack.consumer_with_dlq(args.consumer)
    removed = consumers.purge(stack.sqs, dlq_url)
    say(f"purged {plural(removed, 'message')} from {printable(args.consumer)}'s DLQ")


def cmd_unsubscribe(args: argparse.Namespace) -> None:
    from fanout.cli import Stack

    stack = Stack()
    if any(c.name == args.name for c in stack.topo.consumers):
        raise _cli_error(
            f"{args.name!r} is declared in Pulumi.{stack.env.stack}.yaml (fanout:consumers); "
            "remove it by editing that file"
        )
    found = stack.every_consumer()  # subscribed ones, and removed ones whose queues are kept
    if args.name not in found:
        known = ", ".join(sorted(n for n in found if n not in {c.name for c in stack.topo.consumers})) or "none"
        raise _cli_error(f"no subscribed consumer named {args.name!r} (subscribed with `fanout subscribe`: {known})")
    q = found[args.name]
    queue_name = q.queue_url.rsplit("/", 1)[-1] if q.queue_url else (q.missing or (args.name,))[0]
    dlq_name = q.dlq_url.rsplit("/", 1)[-1] if q.dlq_url else (q.missing or (f"{queue_name}-dlq",))[0]
    held = consumers.counts(stack.sqs, q.queue_url) or 0
    dead = consumers.counts(stack.sqs, q.dlq_url) or 0
    if (held or dead) and not args.force:
        raise _cli_error(
            f"{args.name}'s queue holds {held} messages and its DLQ {dead}; they would be lost "
            f"(see them with `fanout dlq show {args.name}`); add --force to remove them anyway"
        )
    consumers.remove(stack.sqs, stack.sns, stack.topic_arn, queue_name, dlq_name)
    gone = [*([] if q.queue_url else [queue_name]), *([] if q.dlq_url else [dlq_name])]
    note = f" ({', '.join(gone)} did not exist)" if gone else ""
    lost = f"; {held + dead} messages deleted with them" if held or dead else ""
    say(
        f"unsubscribed {printable(args.name)}: removed its subscription, queue {queue_name} "
        f"and DLQ {dlq_name}{note}{lost}"
    )


# ---------------------------------------------------------------------- replay to one consumer


def replay_to_consumer(sqs: Any, sns: Any, topic_arn: str, name: str) -> Any:
    """The publish function for `replay --consumer NAME`: that consumer's queue, through its filter."""
    from fanout import replay

    try:
        bus = {c.name for c in topology.load(localenv.load().stack).consumers if c.source == "bus"}
    except (topology.TopologyError, localenv.LocalConfigError, OSError):
        bus = set()
    if name in bus:
        raise _cli_error(BUS_REPLAY.format(name=name))
    found = consumers.discover(sqs, sns, topic_arn)
    if name not in found:
        raise _cli_error(f"no consumer named {name!r} (consumers: {', '.join(sorted(found)) or 'none'})")
    url = found[name].queue_url
    policy, scope = consumers.subscription_filter(sqs, sns, topic_arn, url)
    return replay.to_queue(sqs, url, replay.filter_matcher(policy, scope))
