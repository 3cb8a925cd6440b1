"""SQS event source mapping, emulated: long-poll, invoke with a batch, delete what succeeded.

As on AWS: records listed in `batchItemFailures` (or the whole batch, if the handler
raises) stay in the queue, come back after the visibility timeout, and reach the DLQ
through the queue's redrive policy. SQS's receipt semantics mean several pollers on one
queue never hold the same message at once.

One message is never handled by two invocations at once: a batch is received hidden for the
function's timeout and more (the function's process is stopped at its timeout), and kept hidden
while its invocation runs, however long an init takes. Only once the attempt has ended does a
failed message get the queue's own, short, visibility timeout: locally a retry comes sooner than
on AWS, never while the earlier attempt still runs.

A function whose code does not load (or whose init has not finished yet) is not polled: its
messages wait in the queue, their receive counts untouched. A batch cut short by the stack's stop
is not a failure: its messages are left for the stop to put back (`abandoned`).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fanout.local.environments import FunctionBroken, FunctionStopped
from fanout.local.lambda_context import LocalContext
from fanout.local.ledger import Failure, collecting_failures

log = logging.getLogger("fanout.local.poller")
Handler = Callable[[dict[str, Any], Any], Any]
# Told each invocation's outcome: (messages, failed message ids, per-record errors, the handler's own error or None).
OnBatch = Callable[[list[dict[str, Any]], set[str], dict[str, Failure], str | None], None]
# Told when an invocation begins, with its messages and its timeout (the trace shows them "running").
OnStart = Callable[[list[dict[str, Any]], float], None]


def _attr(value: dict[str, Any]) -> dict[str, Any]:
    # SQS API shape -> Lambda event shape (camelCase keys).
    out: dict[str, Any] = {"dataType": value["DataType"], "stringListValues": [], "binaryListValues": []}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = value["BinaryValue"]
    return out


def to_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {k: _attr(v) for k, v in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class Poller(threading.Thread):
    def __init__(
        self,
        *,
        name: str,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        batch_size: int,
        batching_window: float,
        region: str,
        timeout_seconds: int,
        stop: threading.Event,
        on_batch: OnBatch | None = None,
        on_start: OnStart | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.on_batch = on_batch  # the trace ledger and the attempt log lines (fanout.local.trace.report)
        self.on_start = on_start  # the trace ledger (fanout.local.trace.started)
        # Receipts of the messages that failed here and wait out their visibility timeout: at a clean
        # stop they are made visible again so that the final snapshot saves them (release_held).
        self.held: collections.deque[str] = collections.deque(maxlen=1000)
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.handler = handler
        self.batch_size = batch_size
        self.batching_window = batching_window
        self.region = region
        self.timeout_seconds = timeout_seconds
        self.stop = stop
        self.invocations = 0
        # Hidden this long when received: past the function's timeout (its process is stopped there), with
        # room for an init; the keeper extends it while an invocation runs longer (a slow cold start).
        self.hold = timeout_seconds + HOLD_MARGIN
        self.retry_delay: int | None = None  # the queue's own visibility timeout, read once
        # The batch being handled: its messages, while its invocation runs (read by the keeper and the stop).
        self.current: list[dict[str, Any]] | None = None
        self.abandoned: list[dict[str, Any]] = []  # cut short by the stop, to be put back untouched
        self._keeper: _Keeper | None = None

    def _receive(self) -> list[dict[str, Any]]:
        """A batch, gathered as an event source mapping does: it is handed over once it is full or, from its
        first message, once the batching window has passed (no window: what the first receive brought)."""
        messages: list[dict[str, Any]] = []
        deadline = 0.0
        while not self.stop.is_set() and len(messages) < self.batch_size:
            left = deadline - time.monotonic()
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                VisibilityTimeout=self.hold,
                # Short long-polls keep shutdown under a second or two.
                WaitTimeSeconds=1 if not messages or left >= 1 else 0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if got and not messages:
                deadline = time.monotonic() + self.batching_window
            messages += got
            left = deadline - time.monotonic()
            if not messages or left <= 0:
                break
            if not got:
                self.stop.wait(min(0.1, left))
        return messages

    def _loadable(self) -> bool:
        """Whether the function's code is known to load: before its init has ended, or while broken, no receive."""
        if getattr(self.handler, "init_known", True) is False:
            # A function process wakes this as soon as its init ends; a plain callable has nothing to wait for.
            getattr(self.handler, "wait_init", self.stop.wait)(0.25)
            return False
        if getattr(self.handler, "broken", None):
            # The handler's code does not import: its messages wait in the queue until a saved fix loads.
            self.stop.wait(0.25)
            return False
        return True

    def _retry_later(self, messages: list[dict[str, Any]], delay: int | None = None) -> None:
        """The attempt has ended: these messages come back after `delay` (default: the queue's visibility timeout)."""
        if delay is None:
            if self.retry_delay is None:
                attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"])
                self.retry_delay = int(attrs["Attributes"]["VisibilityTimeout"])
            delay = self.retry_delay
        for start in range(0, len(messages), 10):
            with contextlib.suppress(Exception):  # a stale receipt: the message is already back or gone
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": delay}
                        for i, m in enumerate(messages[start : start + 10])
                    ],
                )

    def poll_once(self) -> int:
        if not self._loadable():
            return 0
        messages = self._receive()
        if not messages:
            return 0
        if self.stop.is_set():
            # Received as this poller stops (the stack stops, or its consumer changed): back at once, for
            # the poller that takes over or the final save (which gives the receive back).
            self._retry_later(messages, 0)
            self.abandoned.extend(messages)
            return 0
        if getattr(self.handler, "broken", None):
            # Its code broke during the long poll (a saved change that does not load): back, not handled by
            # a process still running the code from before.
            self._retry_later(messages, 0)
            return 0
        if self._keeper is None:
            self._keeper = _Keeper(self)
            self._keeper.start()
        self.current = messages
        self._keeper.watch(messages)
        try:
            return self._invoke(messages)
        finally:
            self._keeper.watch(None)

    def _invoke(self, messages: list[dict[str, Any]]) -> int:
        event = {"Records": [to_record(m, self.queue_arn, self.region) for m in messages]}
        context = LocalContext(function_name=self.name, region=self.region, timeout_seconds=self.timeout_seconds)
        self.invocations += 1
        if self.on_start:
            self.on_start(messages, self.timeout_seconds)
        with collecting_failures() as errors:
            try:
                response = self.handler(event, context) or {}
            except FunctionStopped:
                # The stack stops: not an attempt of the handler's; the stop puts these back as they were.
                self.abandoned.extend(messages)
                self.current = None
                return 0
            except FunctionBroken:
                # Its code stopped loading after this batch was received: back in the queue, no attempt counted.
                self._retry_later(messages, 0)
                self.current = None
                return 0
            except Exception as exc:
                # As on AWS: a failed invocation leaves the whole batch to the visibility timeout.
                trace = getattr(exc, "trace", None)  # raised in the function's own process: its traceback
                if self.on_batch:
                    # on_batch logs one line per message's attempt (retried, or to the DLQ), the traceback once.
                    said = f"{type(exc).__name__}: {exc}"
                    tb = (trace or "").rstrip()  # a timeout or a crash has none: its message says it
                    for m in messages:
                        errors[m["MessageId"]] = (said, tb)
                    self.on_batch(messages, {m["MessageId"] for m in messages}, errors, said)
                elif trace is not None:
                    log.error("%s: %s; %d messages will be retried\n%s", self.name, exc, len(messages), trace.rstrip())
                else:
                    log.exception("%s: handler raised; %d messages will be retried", self.name, len(messages))
                self.held.extend(m["ReceiptHandle"] for m in messages)
                self.current = None
                self._retry_later(messages)
                return 0
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        if self.on_batch:
            self.on_batch(messages, failed, errors, None)
        done = [m for m in messages if m["MessageId"] not in failed]
        self.held.extend(m["ReceiptHandle"] for m in messages if m["MessageId"] in failed)
        self.current = None
        if failed:
            self._retry_later([m for m in messages if m["MessageId"] in failed])
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        return len(done)

    def release_held(self) -> None:
        """Make the messages this poller failed visible again (once stopped); stale receipts are ignored."""
        handles = list(self.held)
        self.held.clear()
        for start in range(0, len(handles), 10):
            with contextlib.suppress(Exception):  # the emulator may be going; the snapshot says what it got
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                        for i, h in enumerate(handles[start : start + 10])
                    ],
                )

    def put_back(self) -> list[str]:
        """Once stopped: make the batch cut short by the stop visible again; the ids of its messages."""
        messages = [*self.abandoned, *(self.current or [])]
        self.abandoned.clear()
        self.current = None
        self._retry_later(messages, 0)
        return [m["MessageId"] for m in messages]

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.poll_once()
            except Exception:
                if self.stop.is_set():
                    return
                log.exception("%s: polling failed; retrying", self.name)
                self.stop.wait(1)


# Received messages are hidden for the function's timeout plus this: room for an init (a cold start).
HOLD_MARGIN = 10


class _Keeper(threading.Thread):
    """Keeps a poller's batch hidden while its invocation runs past `hold / 2` (a slow init, a long handler).

    One thread per poller, idle unless an invocation outlasts half its hold: no call on the fast path.
    """

    def __init__(self, poller: Poller) -> None:
        super().__init__(name=f"{poller.name}-keeper", daemon=True)
        self.poller = poller
        self.batch: list[dict[str, Any]] | None = None
        self.changed = threading.Event()

    def watch(self, batch: list[dict[str, Any]] | None) -> None:
        self.batch = batch
        self.changed.set()

    def run(self) -> None:
        poller = self.poller
        while not poller.stop.is_set() or self.batch is not None:
            self.changed.wait(1.0)
            self.changed.clear()
            batch = self.batch
            if batch is None:
                continue
            while self.batch is batch and not self.changed.wait(poller.hold / 2):
                if self.batch is not batch:
                    break
                for start in range(0, len(batch), 10):
                    with contextlib.suppress(Exception):
                        poller.sqs.change_message_visibility_batch(
                            QueueUrl=poller.queue_url,
                            Entries=[
                                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": poller.hold}
                                for i, m in enumerate(batch[start : start + 10])
                            ],
                        )
