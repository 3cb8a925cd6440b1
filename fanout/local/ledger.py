"""The local trace ledger: what became of each event, recorded by the runtime as it happens.

Three places feed it: a tap queue on the topic (every published event, and for each topic
consumer whether its filter policy matched), the pollers (each attempt of each consumer,
its outcome and last error), and a tap rule on the bus (the persister's announcements, and
for each bus consumer whether its event pattern matched). `fanout trace`, `fanout dlq show`
and the console read it through the gateway's /_local/ endpoints.

Memory is bounded: the newest `capacity` events are kept, the oldest dropped first, and each
recorded field is cut to a few hundred characters (an event id longer than `ID_CHARS` is not
recorded at all: anyone can publish one, and no id the API makes comes near it). The ledger is
written to the state dir with the rest of the local state, so a restart keeps it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fanout import untrusted

log = logging.getLogger("fanout.local.ledger")
CAPACITY = 10_000
STATES = ("processed", "running", "retrying", "dlq", "filtered", "pending")
ERROR_CHARS = 500  # a last error longer than this is cut: it is a hint, the log has the traceback
ID_CHARS = 200  # the longest event id recorded (ULIDs have 26); the trace route takes no longer one
FIELD_CHARS = 200  # type and subject as recorded
RUNNING_GRACE = 5.0  # seconds past an invocation's timeout before a start with no outcome stops showing "running"


class _Attempts:
    """One consumer's attempts at one event."""

    __slots__ = (
        "attempts",
        "deliveries",
        "error",
        "max_receive",
        "message_id",
        "ok",
        "receive_count",
        "running_until",
        "when",
    )

    def __init__(self) -> None:
        self.attempts = 0  # finished invocations of the current delivery
        self.deliveries = 0  # deliveries to this consumer: the first, then each replay or redrive
        self.receive_count = 0
        self.max_receive = 0
        self.ok: bool | None = None
        self.error: str | None = None
        self.message_id: str | None = None
        self.when = 0.0
        self.running_until = 0.0  # an invocation started and has not ended: "running" until then (epoch)

    def delivery(self, message_id: str, receive_count: int) -> None:
        """Note which SQS message the event came in; a new message received for the first time is a new
        delivery (a replay, a redrive), whose attempts are counted afresh: it is not a retry."""
        if self.deliveries == 0 or (message_id != self.message_id and receive_count <= 1):
            self.deliveries += 1
            self.attempts = 0
        self.message_id = message_id

    def state(self) -> str:
        if self.running_until > time.time():
            return "running"
        if self.ok:
            return "processed"
        if self.ok is None:
            return "pending"
        return "dlq" if self.max_receive and self.receive_count >= self.max_receive else "retrying"

    def dump(self) -> list[Any]:
        # Not `running_until`: after a restart nothing is running.
        return [
            self.attempts,
            self.receive_count,
            self.max_receive,
            self.ok,
            self.error,
            self.message_id,
            self.when,
            self.deliveries,
        ]

    @classmethod
    def load(cls, raw: list[Any]) -> _Attempts:
        a = cls()
        a.attempts, a.receive_count, a.max_receive, a.ok, a.error, a.message_id, a.when = raw[:7]
        a.deliveries = int(raw[7]) if len(raw) > 7 else 1
        return a


class _Event:
    __slots__ = ("announced", "attempts", "id", "matched", "published", "subject", "type")

    def __init__(self, event_id: str) -> None:
        self.id = event_id
        self.type: str | None = None
        self.subject: str | None = None
        self.published: float | None = None  # epoch seconds
        self.announced = False
        self.matched: dict[str, bool] = {}  # consumer -> its filter (or bus pattern) matched
        self.attempts: dict[str, _Attempts] = {}

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "subject": self.subject,
            "published": self.published,
            "announced": self.announced,
            "matched": self.matched,
            "attempts": {k: v.dump() for k, v in self.attempts.items()},
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> _Event:
        e = cls(str(raw["id"]))
        e.type, e.subject, e.published = _field(raw.get("type")), _field(raw.get("subject")), raw.get("published")
        e.announced = bool(raw.get("announced"))
        e.matched = {str(k): bool(v) for k, v in raw.get("matched", {}).items()}
        e.attempts = {str(k): _Attempts.load(v) for k, v in raw.get("attempts", {}).items()}
        return e


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    with contextlib.suppress(ValueError):
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return None


def event_of(body: str) -> dict[str, Any] | None:
    """The CloudEvent a queue message carries: the body itself (topic) or its `detail` (bus); None for
    anything else, whatever the bytes (see `fanout.untrusted`)."""
    parsed = untrusted.cloudevent(body)
    return parsed.value if parsed.ok else None


def message_key(body: str) -> str:
    """What a message is recorded under: its event's id, or a digest of a body that carries none."""
    event = event_of(body)
    if event is not None and len(event["id"]) <= ID_CHARS:
        return str(event["id"])
    return untrusted.digest(body)


def _field(value: Any) -> str | None:
    return value[:FIELD_CHARS] if isinstance(value, str) else None


class Ledger:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._events: OrderedDict[str, _Event] = OrderedDict()
        self._lock = threading.Lock()
        # Per consumer, counted since the stack started (the console's figures).
        self.counts: dict[str, dict[str, int]] = {}
        self.published_total = 0
        self._published_times: list[float] = []  # monotonic times of the last minute's publishes
        # (consumer, message key) -> [receive count on reaching the DLQ, last error]: recorded when the last
        # attempt fails, or at the first look for a message that got there otherwise (sent by hand). Keyed by
        # content, not SQS message id: a restart puts messages back under new ids.
        self._arrivals: OrderedDict[tuple[str, str], tuple[int, str | None]] = OrderedDict()
        self._changes = 0  # bumped by every record; save() skips an unchanged ledger
        self._saved_at_change = -1

    # ------------------------------------------------------------------ recording

    def _get(self, event_id: str) -> _Event:
        self._changes += 1  # every caller records something on the event it gets
        event = self._events.get(event_id)
        if event is None:
            event = self._events[event_id] = _Event(event_id)
            while len(self._events) > self.capacity:
                self._events.popitem(last=False)
        return event

    def _count(self, consumer: str, key: str, n: int = 1) -> None:
        self.counts.setdefault(consumer, {}).setdefault(key, 0)
        self.counts[consumer][key] += n

    def published(self, event: dict[str, Any], matched: dict[str, bool]) -> bool:
        """An event seen on the topic, with each topic consumer's filter verdict; False if not recorded
        (an id longer than ID_CHARS)."""
        if len(event["id"]) > ID_CHARS:
            return False
        with self._lock:
            e = self._get(event["id"])
            e.type = _field(event.get("type")) or e.type
            e.subject = _field(event.get("subject")) or e.subject
            e.published = _epoch(event.get("time")) or time.time()
            e.matched.update(matched)
            self.published_total += 1
            now = time.monotonic()
            self._published_times.append(now)
            if len(self._published_times) > 10_000 or self._published_times[0] < now - 60:
                self._published_times = [t for t in self._published_times if t >= now - 60]
            for name, ok in matched.items():
                if ok:
                    self._count(name, "delivered")
        return True

    def announced(self, event: dict[str, Any], matched: dict[str, bool]) -> bool:
        """The persister's announcement seen on the bus, with each bus consumer's pattern verdict."""
        if len(event["id"]) > ID_CHARS:
            return False
        with self._lock:
            e = self._get(event["id"])
            e.announced = True
            e.subject = e.subject or _field(event.get("subject"))
            e.matched.update(matched)
            for name, ok in matched.items():
                if ok:
                    self._count(name, "delivered")
        return True

    def started(
        self, consumer: str, event_id: str, *, message_id: str, receive_count: int, timeout_seconds: float
    ) -> None:
        """An invocation of `consumer` with this event began: "running" until its outcome (or its timeout)."""
        if len(event_id) > ID_CHARS:
            return
        with self._lock:
            e = self._get(event_id)
            a = e.attempts.setdefault(consumer, _Attempts())
            e.matched.setdefault(consumer, True)
            a.delivery(message_id, receive_count)
            a.running_until = time.time() + timeout_seconds + RUNNING_GRACE

    def attempt(
        self,
        consumer: str,
        event_id: str,
        *,
        message_id: str,
        receive_count: int,
        max_receive: int,
        ok: bool,
        error: str | None,
    ) -> _Attempts | None:
        if len(event_id) > ID_CHARS:
            return None
        with self._lock:
            e = self._get(event_id)
            a = e.attempts.setdefault(consumer, _Attempts())
            e.matched.setdefault(consumer, True)  # it reached the consumer, whatever the tap saw
            a.delivery(message_id, receive_count)
            a.attempts += 1
            a.receive_count, a.max_receive, a.ok = receive_count, max_receive, ok
            a.when = time.time()
            a.running_until = 0.0
            if ok:
                a.error = None
                self._count(consumer, "processed")
            else:
                a.error = (error or "failed")[:ERROR_CHARS]
                self._count(consumer, "failed")
                if max_receive and receive_count >= max_receive:
                    self._arrived(consumer, event_id, receive_count, a.error)
            return a

    def arrived(self, consumer: str, key: str, receive_count: int, error: str | None) -> None:
        """A message that carries no event went to the DLQ after its last attempt (see `message_key`)."""
        with self._lock:
            self._arrived(consumer, key, receive_count, (error or "failed")[:ERROR_CHARS])

    def _arrived(self, consumer: str, key: str, receive_count: int, error: str | None) -> None:
        self._changes += 1
        self._arrivals[(consumer, key)] = (receive_count, error)
        self._arrivals.move_to_end((consumer, key))
        while len(self._arrivals) > self.capacity:
            self._arrivals.popitem(last=False)

    # ------------------------------------------------------------------ reading

    def trace(self, event_id: str, consumers: list[str]) -> dict[str, Any] | None:
        """The event's trace over the given consumers, or None for an id never seen."""
        with self._lock:
            e = self._events.get(event_id)
            if e is None:
                return None
            out: dict[str, Any] = {}
            for name in sorted(set(consumers) | set(e.attempts)):
                a = e.attempts.get(name)
                if a is not None:
                    state = a.state()
                elif e.matched.get(name):
                    state = "pending"
                else:
                    state = "filtered"  # its filter refused it, or it did not exist when the event passed
                out[name] = {
                    "state": state,
                    "attempts": a.attempts if a else 0,
                    "deliveries": a.deliveries if a else 0,
                    "error": a.error if a and not a.ok else None,
                    "receiveCount": a.receive_count if a else 0,
                    "maxReceiveCount": a.max_receive if a else None,
                    "messageId": a.message_id if a else None,
                    "last": iso(a.when) if a else None,
                }
            return {
                "id": e.id,
                "type": e.type,
                "subject": e.subject,
                "published": iso(e.published),
                "announced": e.announced,
                "consumers": out,
            }

    def subject_of(self, event_id: str) -> str | None:
        with self._lock:
            e = self._events.get(event_id)
            return e.subject if e else None

    def recent(self, limit: int = 50, event_type: str | None = None, subject: str | None = None) -> list[dict]:
        """The newest published events first, optionally only of a type and a subject."""
        rows: list[dict[str, Any]] = []
        with self._lock:
            for e in reversed(self._events.values()):
                if e.published is None:
                    continue
                if (event_type and e.type != event_type) or (subject and e.subject != subject):
                    continue
                states = {name: a.state() for name, a in e.attempts.items()}
                rows.append(
                    {
                        "id": e.id,
                        "type": e.type,
                        "subject": e.subject,
                        "published": iso(e.published),
                        "announced": e.announced,
                        "states": states,
                    }
                )
                if len(rows) >= limit:
                    break
        return rows

    def dlq_info(self, consumer: str, key: str, seen_count: int) -> tuple[int, str | None]:
        """(receive count on reaching the DLQ, last error) for a DLQ message recorded under `key`
        (`message_key`); the same however often asked, and across restarts."""
        with self._lock:
            found = self._arrivals.get((consumer, key))
            if found is not None:
                return found
            # Never seen failing here: remember the count of the first look (the look itself added one).
            self._arrived(consumer, key, max(0, seen_count - 1), None)
            return self._arrivals[(consumer, key)]

    def rate(self, window: float = 10.0) -> float:
        """Events published per second over the last `window` seconds."""
        now = time.monotonic()
        with self._lock:
            return sum(1 for t in self._published_times if t >= now - window) / window

    def __len__(self) -> int:
        return len(self._events)

    # ------------------------------------------------------------------ persistence

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "version": 2,
                "events": [e.dump() for e in self._events.values()],
                "arrivals": [[c, k, n, err] for (c, k), (n, err) in self._arrivals.items()],
            }

    def save(self, path: Path) -> None:
        """Write the ledger (atomically) unless nothing changed since the last save to an existing file."""
        with self._lock:
            changes = self._changes
        if changes == self._saved_at_change and path.is_file():
            return
        doc = self.dump()
        from fanout.local import safefs  # never through a link planted in the state dir

        safefs.write_atomic(path, lambda fh: fh.write(json.dumps(doc, separators=(",", ":"))))
        self._saved_at_change = changes

    @classmethod
    def load(cls, path: Path, capacity: int = CAPACITY) -> Ledger:
        ledger = cls(capacity)
        from fanout.local import safefs

        if not safefs.is_file(path):
            return ledger
        try:
            doc = json.loads(safefs.read_bytes(path))
            for raw in doc.get("events", [])[-capacity:]:
                e = _Event.load(raw)
                if len(e.id) <= ID_CHARS:  # a file written before ids were bounded
                    ledger._events[e.id] = e
            for c, k, n, err in doc.get("arrivals", [])[-capacity:]:
                ledger._arrivals[(str(c), str(k))] = (int(n), None if err is None else str(err))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("the trace ledger in %s could not be read (%s); starting an empty one", path, exc)
            return cls(capacity)
        return ledger


# ---------------------------------------------------------------------- per-record errors

Failure = tuple[str, str]  # (one-line error, formatted traceback)
_failures: contextvars.ContextVar[dict[str, Failure] | None] = contextvars.ContextVar("fanout_failures", default=None)
_installed = False


@contextlib.contextmanager
def collecting_failures() -> Iterator[dict[str, Failure]]:
    """Within: each record a Powertools batch processor fails is noted as message id -> its error."""
    errors: dict[str, Failure] = {}
    token = _failures.set(errors)
    try:
        yield errors
    finally:
        _failures.reset(token)


def install_failure_capture() -> None:
    """Hook Powertools' batch failure handler (in this process), so the poller knows why each record failed.

    Powertools reports a failed record only as its message id; the reason is the exception it
    caught. This notes that exception for the poller, and keeps Powertools' own warning
    ("skipping this record", which is not what happens: the record is retried) out of the log;
    the poller logs the attempt instead, once, with its traceback.
    """
    global _installed
    if _installed:
        return
    from aws_lambda_powertools.utilities.batch.base import BasePartialProcessor

    original = BasePartialProcessor.failure_handler

    def failure_handler(self: Any, record: Any, exception: Any) -> Any:
        errors = _failures.get()
        if errors is None:
            return original(self, record, exception)
        message_id = getattr(record, "message_id", None) or (
            record.get("messageId") if isinstance(record, dict) else None
        )
        saved, self.logger = getattr(self, "logger", None), None
        if message_id:
            # No traceback for an invalid message (the sender's problem); the runtime prints each other
            # error's traceback once, with the attempt's line (the kit's own line is not shown locally).
            tb = "" if exception[0].__name__ == "InvalidEvent" else _format_tb(exception)
            errors[str(message_id)] = (f"{exception[0].__name__}: {exception[1]}", tb)
        try:
            return original(self, record, exception)
        finally:
            self.logger = saved

    BasePartialProcessor.failure_handler = failure_handler  # type: ignore[method-assign]
    _installed = True


def _format_tb(exc_info: Any) -> str:
    import traceback

    return "".join(traceback.format_exception(*exc_info)).rstrip()
