"""The local stack's own endpoints under /_local/ (trace, events, figures, DLQs, replay) and the console.

The gateway hands every /_local/... and /console request here (after its Host and Origin
checks); `fanout trace`, `fanout dlq show` and the console page are its clients. Answers
are JSON `{"message": ...}` on errors, like the API's.
"""

from __future__ import annotations

import json
import mimetypes
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from botocore.exceptions import ClientError

from fanout import consumers, untrusted
from fanout.local.ledger import ID_CHARS, Ledger, message_key
from fanout.localenv import LocalEnv
from fanout.topology import CONSUMER_NAME_PATTERN, Topology

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
CONSUMER = rf"(?P<name>{CONSUMER_NAME_PATTERN})"  # the one rule of consumer names (fanout/topology.py)
# The console's CSP: only its own files, no inline script or style, nothing framed.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, doc: Any) -> Answer:
    return Answer(
        status,
        json.dumps(doc, ensure_ascii=False).encode(),
        {"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


def _error(status: int, message: str, **headers: str) -> Answer:
    answer = _json(status, {"message": message})
    answer.headers.update(headers)
    return answer


class LocalApi:
    def __init__(
        self,
        *,
        session: Any,
        env: LocalEnv,
        topology: Callable[[], Topology],
        ledger: Ledger,
        cost: Callable[[], dict[str, Any]] | None = None,
        load_errors: Callable[[], dict[str, str]] | None = None,
        handlers: Callable[[bytes], tuple[int, dict[str, Any]]] | None = None,
    ) -> None:
        from botocore.config import Config

        config = Config(retries={"mode": "standard"}, max_pool_connections=20)
        self.sqs = session.client("sqs", config=config)
        self.sns = session.client("sns", config=config)
        self.ddb = session.client("dynamodb", config=config)
        self.s3 = session.client("s3", config=config)
        self.env = env
        self.topology = topology
        self.ledger = ledger
        self.cost = cost
        self.load_errors = load_errors or dict
        # POST /_local/handlers: `fanout subscribe --handler` registers its code (fanout/local/registry.py).
        self.handlers = handlers
        self._found: dict[str, consumers.ConsumerQueues] = {}
        self._found_at = 0.0
        self._figures: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._peeking = threading.Lock()

    @property
    def topic_arn(self) -> str:
        return self.env.topic_arn(self.topology().topic_name)

    # ------------------------------------------------------------------ dispatch

    def handle(self, method: str, path: str, query: str, body: bytes) -> Answer | None:
        """The answer for a local path, or None when the path is not one of these."""
        if path == "/console" or path.startswith("/console/"):
            if method not in ("GET", "HEAD"):
                return _error(405, f"method {method} not allowed on {path}", Allow="GET, HEAD")
            return self._console(path)
        if not path.startswith("/_local/"):
            return None
        q = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()} if query else {}
        gets: list[tuple[str, Callable[..., Answer]]] = [
            # Any characters, "/" included (sent as %2F, decoded by the gateway); or ?id=ID.
            (r"/_local/trace/(?P<event_id>(?s:.+))", self.trace),
            (r"/_local/trace", lambda: self.trace(q.get("id", ""))),
            (r"/_local/events", lambda: self.events(q)),
            (r"/_local/figures", self.figures),
            (r"/_local/topology", self.topology_doc),
            (r"/_local/cost", self.cost_doc),
            (rf"/_local/consumers/{CONSUMER}/dlq", self.dlq),
        ]
        posts: list[tuple[str, Callable[..., Answer]]] = [
            (rf"/_local/consumers/{CONSUMER}/dlq/redrive", self.redrive),
            (rf"/_local/consumers/{CONSUMER}/dlq/purge", self.purge),
            (r"/_local/replay", lambda: self.replay(body)),
            (r"/_local/handlers", lambda: self.register_handler(body)),
            (r"/_local/publish", lambda: self.publish(body, q)),
        ]
        for routes, allowed in ((gets, ("GET", "HEAD")), (posts, ("POST",))):
            for pattern, fn in routes:
                m = re.fullmatch(pattern, path)
                if m is None:
                    continue
                if method not in allowed:
                    return _error(405, f"method {method} not allowed on {path}", Allow=", ".join(allowed))
                return fn(**m.groupdict())
        return None

    # ------------------------------------------------------------------ consumers

    def consumers(self, fresh: bool = False) -> dict[str, consumers.ConsumerQueues]:
        """Every topic consumer (declared and subscribed) and bus consumer with its queues, cached 2 s."""
        with self._lock:
            if fresh or time.monotonic() - self._found_at > 2:
                try:
                    found = consumers.discover(self.sqs, self.sns, self.topic_arn)
                except ClientError:  # a consumer removed while it was being listed: ask once more
                    found = consumers.discover(self.sqs, self.sns, self.topic_arn)
                topo = self.topology()
                for c in topo.consumers:
                    if c.name not in found and getattr(c, "source", "topic") == "bus":
                        try:
                            url = self.sqs.get_queue_url(QueueName=topo.queue_name(c))["QueueUrl"]
                            dlq = self.sqs.get_queue_url(QueueName=topo.dlq_name(c))["QueueUrl"]
                        except ClientError:
                            continue  # its queues are not made yet (live reload in progress)
                        found[c.name] = consumers.ConsumerQueues(c.name, url, dlq)
                # Removed from the stack config while their queues held messages: still shown, DLQ tools work.
                found |= consumers.discover_kept(self.sqs, found, {c.name for c in topo.consumers})
                self._found, self._found_at = found, time.monotonic()
            return dict(self._found)

    def _consumer(self, name: str) -> consumers.ConsumerQueues | Answer:
        found = self.consumers()
        if name not in found:
            found = self.consumers(fresh=True)
        if name not in found:
            return _error(404, f"no consumer named {name!r} (consumers: {', '.join(sorted(found)) or 'none'})")
        if found[name].missing and not found[name].dlq_url:
            return _error(404, f"consumer {name!r}'s DLQ {found[name].missing[0]} does not exist (deleted?)")
        if not found[name].dlq_url:
            return _error(404, f"consumer {name!r} has no DLQ")
        return found[name]

    # ------------------------------------------------------------------ trace and events

    def trace(self, event_id: str) -> Answer:
        if not event_id or len(event_id) > ID_CHARS:
            return _error(400, f"an event id has 1 to {ID_CHARS} characters")
        doc = self.ledger.trace(event_id, list(self.consumers()))
        if doc is None:
            return _error(
                404,
                f"no event {event_id} in the local stack's trace ledger "
                f"(it keeps the last {self.ledger.capacity} events seen on the topic)",
            )
        doc["stored"] = self._stored(event_id, doc.get("subject"))
        return _json(200, doc)

    def _stored(self, event_id: str, subject: str | None) -> bool:
        if not subject:
            return False
        from handlers.core import store

        item = self.ddb.get_item(
            TableName=self.topology().table_name,
            Key={"pk": {"S": store.pk(subject)}, "sk": {"S": store.sk(event_id)}},
            ProjectionExpression="pk",
        )
        return "Item" in item

    def events(self, q: dict[str, str]) -> Answer:
        try:
            limit = min(500, max(1, int(q.get("limit", "50"))))
        except ValueError:
            return _error(400, "limit must be a number from 1 to 500")
        rows = self.ledger.recent(limit, q.get("type") or None, q.get("subject") or None)
        return _json(200, {"events": rows, "published": self.ledger.published_total})

    # ------------------------------------------------------------------ figures

    def figures(self) -> Answer:
        with self._lock:
            cached = self._figures
        if cached and time.monotonic() - cached[0] < 0.5:
            return _json(200, cached[1])
        out: dict[str, Any] = {}
        counts = self.ledger.counts
        for name, q in sorted(self.consumers().items()):
            attrs = self._attrs(q.queue_url)
            dlq = self._attrs(q.dlq_url) if q.dlq_url else {}
            c = counts.get(name, {})
            out[name] = {
                "delivered": c.get("delivered", 0),
                "inQueue": int(attrs.get("ApproximateNumberOfMessages", 0)),
                "inFlight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                "processed": c.get("processed", 0),
                "failed": c.get("failed", 0),
                "dlq": int(dlq.get("ApproximateNumberOfMessages", 0))
                + int(dlq.get("ApproximateNumberOfMessagesNotVisible", 0)),
            }
        doc = {
            "consumers": out,
            "published": self.ledger.published_total,
            "publishedPerSecond": round(self.ledger.rate(), 2),
            "at": time.time(),
        }
        with self._lock:
            self._figures = (time.monotonic(), doc)
        return _json(200, doc)

    def _attrs(self, url: str | None) -> dict[str, str]:
        if not url:
            return {}
        try:
            return self.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        except Exception:
            return {}

    def topology_doc(self) -> Answer:
        """The topology as it is now: producers -> topic -> filters -> queues -> functions; the bus."""
        topo = self.topology()
        found = self.consumers()
        declared = {c.name: c for c in topo.consumers}
        errors = self.load_errors()
        rows = []
        for name in sorted(set(found) | set(declared)):
            c = declared.get(name)
            q = found.get(name)
            rows.append(
                {
                    "name": name,
                    "source": getattr(c, "source", "topic") if c else "topic",
                    "declared": c is not None,
                    "handler": c.handler if c else None,
                    "filterPolicy": c.filter_policy if c else self._filter_of(q),
                    "eventPattern": getattr(c, "event_pattern", None) if c else None,
                    "maxReceiveCount": c.max_receive_count if c else None,
                    "queue": q.queue_url.rsplit("/", 1)[-1] if q else None,
                    "dlq": q.dlq_url.rsplit("/", 1)[-1] if q and q.dlq_url else None,
                    # Removed from the stack config, its queues kept while they hold messages.
                    "removed": bool(q and q.removed),
                    # Queues it should have that someone deleted (its DLQ): shown, not fatal.
                    "missing": list(q.missing) if q else [],
                    # The handler's code does not import (live reload): its messages wait until a fix is saved.
                    "loadError": errors.get(name),
                }
            )
        return _json(
            200,
            {
                "stack": topo.stack,
                "producers": ["api", "generator"] if topo.generator.enabled else ["api"],
                "topic": topo.topic_name,
                "bus": topo.event_bus_name,
                "table": topo.table_name,
                "consumers": rows,
                "loadErrors": errors,
            },
        )

    def _filter_of(self, q: consumers.ConsumerQueues | None) -> Any:
        if q is None:
            return None
        try:
            return consumers.subscription_filter(self.sqs, self.sns, self.topic_arn, q.queue_url)[0]
        except ClientError:
            return None  # unsubscribed meanwhile: gone from the next answer

    def cost_doc(self) -> Answer:
        if self.cost is None:
            return _error(404, "no cost model on this stack")
        return _json(200, self.cost())

    # ------------------------------------------------------------------ DLQs

    def dlq(self, name: str) -> Answer:
        q = self._consumer(name)
        if isinstance(q, Answer):
            return q
        return _json(200, {"consumer": name, "dlq_url": q.dlq_url, "messages": self.dlq_messages(name, str(q.dlq_url))})

    def dlq_messages(self, name: str, dlq_url: str) -> list[dict[str, Any]]:
        out = []
        # One look at a time: a second look at once would find the first one's messages briefly received.
        with self._peeking:
            peeked = consumers.peek(self.sqs, dlq_url)
        for m in peeked:
            seen = int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0) or 0)
            count, error = self.ledger.dlq_info(name, message_key(m["Body"]), seen)
            # Anyone's bytes: a body that is not JSON, or too deep to handle, is shown as the text it is.
            parsed = untrusted.parse(m["Body"])
            out.append(
                {
                    "messageId": m["MessageId"],
                    "receiveCount": count,
                    "sentTimestamp": m.get("Attributes", {}).get("SentTimestamp"),
                    "messageAttributes": {k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()},
                    "error": error,
                    "body": parsed.value if parsed.ok else m["Body"],
                    "bodyProblem": parsed.problem,
                }
            )
        return out

    def redrive(self, name: str) -> Answer:
        q = self._consumer(name)
        if isinstance(q, Answer):
            return q
        if not q.queue_url:
            return _error(409, f"consumer {name!r} has no queue left to move its DLQ's messages back to")
        moved = consumers.redrive(self.sqs, str(q.dlq_url), q.queue_url)
        return _json(200, {"consumer": name, "moved": moved})

    def purge(self, name: str) -> Answer:
        q = self._consumer(name)
        if isinstance(q, Answer):
            return q
        return _json(200, {"consumer": name, "purged": consumers.purge(self.sqs, str(q.dlq_url))})

    def register_handler(self, body: bytes) -> Answer:
        if self.handlers is None:
            return _error(404, "this stack runs no registered handlers")
        status, doc = self.handlers(body)
        return _json(status, doc)

    # ------------------------------------------------------------------ publish

    def publish(self, body: bytes, q: dict[str, str]) -> Answer:
        """`fanout publish`: a CloudEvent on the topic as the producers publish it, or to one consumer's queue.

        Checked here as the producers check (its type's schema); `raw=1` sends the bytes as they are.
        Answers {"id": event id (or the message id of a raw body that has none), "consumer": name or null}.
        """
        from fanout_kit import events
        from handlers.core import charset, publisher

        raw = q.get("raw") in ("1", "true")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "the body is not UTF-8 text (SQS and SNS carry text only)")
        try:
            doc: Any = json.loads(text)
        except (ValueError, RecursionError):
            doc = None
        if not raw:
            try:
                events.validate(doc)
            except events.InvalidEvent as exc:
                return _error(400, f"not a valid CloudEvent: {exc}")
        event = doc if isinstance(doc, dict) else {}
        # What filter policies match on, when the body carries it (a raw body may not).
        attributes = (
            events.sns_attributes(event)
            if isinstance(event.get("type"), str) and isinstance(event.get("subject"), str)
            else {}
        )
        name = q.get("consumer")
        if not name:
            if raw:
                kwargs: dict[str, Any] = {"TopicArn": self.topic_arn, "Message": text}
                if attributes:
                    kwargs["MessageAttributes"] = attributes
                message_id = self.sns.publish(**kwargs)["MessageId"]
            else:
                message_id = publisher.publish(publisher.typed(event))
            return _json(
                200, {"id": event.get("id") if isinstance(event.get("id"), str) else message_id, "consumer": None}
            )
        target = self._consumer(name)
        if isinstance(target, Answer):
            return target
        if not target.queue_url or target.removed:
            return _error(409, f"consumer {name!r} is removed from the stack config; nothing would handle it")
        declared = {c.name: c for c in self.topology().consumers}
        message = text if raw else charset.sqs_json(event)
        if name in declared and declared[name].source == "bus" and not raw:
            message, attributes = json.dumps(self._bus_envelope(event)), {}  # as the bus rule delivers it
        kwargs = {"QueueUrl": target.queue_url, "MessageBody": message}
        if attributes:
            kwargs["MessageAttributes"] = attributes
        message_id = self.sqs.send_message(**kwargs)["MessageId"]
        return _json(200, {"id": event.get("id") if isinstance(event.get("id"), str) else message_id, "consumer": name})

    def _bus_envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        import uuid

        from fanout.localenv import ACCOUNT_ID

        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": event["type"],
            "source": "fanout.persister",
            "account": ACCOUNT_ID,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": self.env.region,
            "resources": [],
            "detail": event,
        }

    # ------------------------------------------------------------------ replay

    def replay(self, body: bytes) -> Answer:
        from fanout import replay

        try:
            doc = json.loads(body or b"{}")
            if not isinstance(doc, dict):
                raise ValueError
        except ValueError:
            return _error(400, 'body must be a JSON object like {"since": "2026-01-01T00:00:00Z"}')
        try:
            since = replay.parse_time(str(doc.get("since") or ""), name="since")
            until = replay.parse_time(str(doc["until"]), name="until") if doc.get("until") else None
        except replay.ReplayError as exc:
            return _error(400, str(exc))
        from datetime import UTC, datetime

        until = until or datetime.now(UTC)
        if until <= since:
            return _error(400, "until must be after since")
        event_type = doc.get("type") or None
        target = doc.get("consumer") or None
        topo = self.topology()
        if target:
            declared = {c.name: c for c in topo.consumers}
            if target in declared and declared[target].source == "bus":
                from fanout.observe import BUS_REPLAY

                return _error(400, BUS_REPLAY.format(name=target))
            q = self._consumer(str(target))
            if isinstance(q, Answer):
                return q
            policy, scope = consumers.subscription_filter(self.sqs, self.sns, self.topic_arn, q.queue_url)
            publish = replay.to_queue(self.sqs, q.queue_url, replay.filter_matcher(policy, scope))
        else:
            from handlers.core import publisher

            publish = publisher.for_replay()
        skipped: list[str] = []
        count = replay.replay(self.s3, topo.archive_bucket_name, since, until, publish, event_type, skipped.append)
        for line in skipped:
            replay.log.warning("replay skipped %s", line)
        # Each skipped archive line named (the first few; the log has them all).
        return _json(200, {"replayed": count, "consumer": target, "skipped": len(skipped), "skips": skipped[:20]})

    # ------------------------------------------------------------------ console

    def _console(self, path: str) -> Answer:
        rel = path.removeprefix("/console").lstrip("/") or "index.html"
        root = CONSOLE_DIR.resolve()
        try:
            target = (root / rel).resolve()
        except (OSError, ValueError):
            return _error(404, f"no such file: {path}")
        if not target.is_relative_to(root) or not target.is_file() or any(p.startswith(".") for p in Path(rel).parts):
            return _error(404, f"no such file: {path}")
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json", "image/svg+xml"):
            ctype += "; charset=utf-8"
        return Answer(
            200,
            target.read_bytes(),
            {
                "Content-Type": ctype,
                "Content-Security-Policy": CONSOLE_CSP,
                "X-Frame-Options": "DENY",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache",
            },
        )
