"""What feeds the trace ledger: taps on the topic and the bus, and the pollers' batch outcomes.

The taps are local-only observers, tagged `fanout:role` = `tap` so that consumer discovery,
the snapshot and `fanout status` never take them for consumers: a queue subscribed to the
topic without a filter (every published event), and a rule on the bus sending the
persister's announcements to a second queue. For each event the tap evaluates every
consumer's filter policy (or bus event pattern) with the emulator's own matcher, so
"filtered" means exactly what the emulator did.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from fanout import consumers, untrusted
from fanout.local import logfmt
from fanout.local.ledger import ID_CHARS, Failure, Ledger, event_of, message_key
from fanout.topology import Topology

log = logging.getLogger("fanout.local.poller")
tap_log = logging.getLogger("fanout.local.trace")
ROLE_TAG, TAP = "fanout:role", "tap"
REFRESH_SECONDS = 2.0
TAIL_QUEUE = re.compile(r"fanout-tail-(\d+)-[0-9a-f]+")  # fanout/observe.py TailQueue names


def tap_names(topo: Topology) -> tuple[str, str, str]:
    """(topic tap queue, bus tap queue, bus tap rule)."""
    return f"{topo.prefix}-trace-tap", f"{topo.prefix}-trace-bus-tap", f"{topo.prefix}-trace-tap"


def _tap_queue(sqs: Any, name: str, source_arn: str, service: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, tags={ROLE_TAG: TAP})["QueueUrl"]
    arn = consumers.queue_arn(sqs, url)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    return url, arn


def _sns_attributes(message: dict[str, Any]) -> dict[str, Any]:
    # SQS's shape of the delivered attributes -> the shape the emulator's SNS filter matcher reads.
    out = {}
    for k, v in message.get("MessageAttributes", {}).items():
        out[k] = {"Type": v.get("DataType", "String"), "Value": v.get("StringValue", v.get("BinaryValue"))}
    return out


@dataclass
class _Sub:
    consumer: str
    policy: dict[str, Any] | None
    scope: str


class Taps:
    """The two tap threads, feeding `ledger`; `topology()` gives the current topology (it may reload)."""

    def __init__(
        self, session: Any, topology: Callable[[], Topology], topic_arn: str, ledger: Ledger, stop: threading.Event
    ) -> None:
        from botocore.config import Config

        self.sqs = session.client("sqs", config=Config(retries={"mode": "standard"}))
        self.sns = session.client("sns")
        self.events = session.client("events")
        self.topology = topology
        self.topic_arn = topic_arn
        self.ledger = ledger
        self.stop = stop
        self._subs: dict[str, _Sub] = {}  # subscription arn -> consumer and filter
        self._subs_at = 0.0
        self.threads: list[threading.Thread] = []

    def provision(self) -> None:
        topo = self.topology()
        topic_q, bus_q, rule = tap_names(topo)
        self.topic_url, arn = _tap_queue(self.sqs, topic_q, self.topic_arn, "sns.amazonaws.com")
        if not any(s["Endpoint"] == arn for s in consumers.sqs_subscriptions(self.sns, self.topic_arn)):
            self.sns.subscribe(
                TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
            )
        bus_arn = self.events.describe_event_bus(Name=topo.event_bus_name)["Arn"]
        rule_arn = f"{bus_arn.replace(':event-bus/', ':rule/')}/{rule}"
        self.bus_url, bus_tap_arn = _tap_queue(self.sqs, bus_q, rule_arn, "events.amazonaws.com")
        self.events.put_rule(
            Name=rule,
            EventBusName=topo.event_bus_name,
            EventPattern=json.dumps({"source": ["fanout.persister"]}),
            State="ENABLED",
            Tags=[{"Key": ROLE_TAG, "Value": TAP}],
        )
        self.events.put_targets(
            Rule=rule, EventBusName=topo.event_bus_name, Targets=[{"Id": "tap", "Arn": bus_tap_arn}]
        )

    def start(self) -> None:
        self._refresh()
        for name, url, seen in (
            ("trace-tap", self.topic_url, self._on_topic),
            ("trace-bus-tap", self.bus_url, self._on_bus),
        ):
            t = threading.Thread(target=self._loop, args=(url, seen), name=name, daemon=True)
            t.start()
            self.threads.append(t)
        t = threading.Thread(target=self._refresh_loop, name="trace-tap-filters", daemon=True)
        t.start()
        self.threads.append(t)

    # ------------------------------------------------------------------ loops

    def _loop(self, url: str, seen: Callable[[dict[str, Any]], None]) -> None:
        while not self.stop.is_set():
            try:
                batch = self.sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
                ).get("Messages", [])
                for m in batch:
                    try:
                        seen(m)
                    except Exception:
                        tap_log.exception("trace tap could not record message %s", m.get("MessageId"))
                if batch:
                    self.sqs.delete_message_batch(
                        QueueUrl=url,
                        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
                    )
            except Exception:
                if self.stop.is_set():
                    return
                tap_log.exception("trace tap failed; retrying")
                self.stop.wait(1)

    def _skipped(self, message: dict[str, Any], problem: str) -> None:
        tap_log.warning("trace tap skipped message %s: %s", message.get("MessageId"), problem)

    def _event(self, message: dict[str, Any]) -> dict[str, Any] | None:
        parsed = untrusted.cloudevent(message["Body"])
        if not parsed.ok:
            self._skipped(message, f"body is {parsed.problem}")
            return None
        if len(parsed.value["id"]) > ID_CHARS:
            self._skipped(message, f"its event id is longer than {ID_CHARS} characters")
            return None
        return dict(parsed.value)

    def _on_topic(self, message: dict[str, Any]) -> None:
        event = self._event(message)
        if event is None:
            return
        from moto.sns.utils import FilterPolicyMatcher

        attributes = _sns_attributes(message)
        matched = {}
        for sub in self.subscriptions().values():
            try:
                matched[sub.consumer] = FilterPolicyMatcher(sub.policy or {}, sub.scope).matches(
                    attributes, message["Body"]
                )
            except Exception:
                matched[sub.consumer] = True  # a policy the matcher cannot read: the emulator delivered it
        self.ledger.published(event, matched)

    def _on_bus(self, message: dict[str, Any]) -> None:
        event = self._event(message)
        envelope = untrusted.parse(message["Body"]).value
        if event is None or not isinstance(envelope, dict):
            return
        from moto.events.models import EventPattern

        matched = {}
        for c in self.topology().consumers:
            if getattr(c, "source", "topic") != "bus":
                continue
            pattern = getattr(c, "event_pattern", None)
            try:
                matched[c.name] = EventPattern.load(json.dumps(pattern) if pattern else None).matches_event(envelope)
            except Exception:
                matched[c.name] = True
        self.ledger.announced(event, matched)

    # ------------------------------------------------------------------ consumers' filters

    def subscriptions(self) -> dict[str, _Sub]:
        """The topic's consumer subscriptions with their filter policies (kept fresh by `_refresh_loop`)."""
        if not self._subs_at:
            self._refresh()
        return self._subs

    def _refresh_loop(self) -> None:
        # Its own thread: the tap never waits for these calls, so an event reaches the ledger at once.
        while not self.stop.wait(REFRESH_SECONDS):
            try:
                self._refresh()
            except Exception:
                if self.stop.is_set():
                    return
                tap_log.exception("trace tap could not refresh the consumers' filter policies")

    def _refresh(self) -> None:
        fresh: dict[str, _Sub] = {}
        for s in consumers.sqs_subscriptions(self.sns, self.topic_arn):
            arn = s["SubscriptionArn"]
            queue_name = s["Endpoint"].rsplit(":", 1)[-1]
            if _orphaned_tail(queue_name):
                self._remove_tail(arn, queue_name)
                continue
            try:
                attrs = self.sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
                name = self._subs[arn].consumer if arn in self._subs else self._consumer_name(queue_name)
            except ClientError:
                continue  # removed meanwhile
            if name is None:
                continue
            policy = attrs.get("FilterPolicy")
            fresh[arn] = _Sub(
                name, json.loads(policy) if policy else None, attrs.get("FilterPolicyScope") or "MessageAttributes"
            )
        self._subs, self._subs_at = fresh, time.monotonic()

    def _remove_tail(self, subscription_arn: str, queue_name: str) -> None:
        """A `fanout tail` that was killed (SIGKILL: no cleanup of its own) leaves its queue; remove it."""
        try:
            self.sns.unsubscribe(SubscriptionArn=subscription_arn)
            self.sqs.delete_queue(QueueUrl=self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])
        except ClientError:
            return
        tap_log.warning("removed %s, left behind by a fanout tail that was killed", queue_name)

    def _consumer_name(self, queue_name: str) -> str | None:
        url = self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        tags = self.sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        if tags.get(ROLE_TAG) == TAP:
            return None
        return tags.get(consumers.TAG, queue_name)


def _orphaned_tail(queue_name: str) -> bool:
    """A `fanout-tail-<pid>-<hex>` queue whose process is gone (tails run on this machine, beside the stack)."""
    match = TAIL_QUEUE.fullmatch(queue_name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False


# ---------------------------------------------------------------------- the pollers' outcomes


def started(ledger: Ledger | None, consumer: str, messages: list[dict[str, Any]], timeout_seconds: float) -> None:
    """An invocation of `consumer` with these messages begins: their events show "running" in the trace."""
    if ledger is None:
        return
    for m in messages:
        event = event_of(m.get("Body", ""))
        if event is not None:
            ledger.started(
                consumer,
                event["id"],
                message_id=m["MessageId"],
                receive_count=_receive_count(m),
                timeout_seconds=timeout_seconds,
            )


def _receive_count(message: dict[str, Any]) -> int:
    try:
        return int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0) or 0)
    except ValueError:
        return 0


def report(
    ledger: Ledger | None,
    consumer: str,
    max_receive: int,
    messages: list[dict[str, Any]],
    failed: set[str],
    errors: dict[str, Failure],
    handler_error: str | None = None,
) -> None:
    """Record one invocation's outcome per message, and log each failed attempt once."""
    for m in messages:
        mid = m["MessageId"]
        body = m.get("Body", "")
        event = event_of(body)
        event_id = event["id"] if event else None
        count = _receive_count(m)
        ok = mid not in failed
        error, tb = errors.get(mid, (None, None))
        error = handler_error or error or "reported as a batch item failure (the handler gave no reason)"
        if ledger is not None:
            if event_id and len(event_id) <= ID_CHARS:
                ledger.attempt(
                    consumer, event_id, message_id=mid, receive_count=count, max_receive=max_receive, ok=ok, error=error
                )
            elif not ok and max_receive and count >= max_receive:
                # No event to trace, but `dlq show` still gives its count on arrival and its error.
                ledger.arrived(consumer, message_key(body), count, error)
        if ok:
            continue
        shown_id = event_id if event_id and len(event_id) <= ID_CHARS else None
        extra = {"function": consumer, "event_id": shown_id, "message_id": mid}
        text = logfmt.traceback_once(consumer, tb)  # once per distinct error (every time at DEBUG)
        if max_receive and count >= max_receive:
            log.error(
                "attempt %d of %d failed; the message goes to %s's DLQ (last error: %s)%s",
                count,
                max_receive,
                consumer,
                error,
                text,
                extra=extra,
            )
        else:
            log.warning(
                "attempt %d of %d failed, will be retried: %s%s",
                count,
                max_receive,
                error,
                text,
                extra=extra,
            )
