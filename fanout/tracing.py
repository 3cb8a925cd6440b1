"""`fanout trace ID`: what became of one event, from the local trace ledger or (--aws) from CloudWatch Logs.

Locally the running stack answers GET /_local/trace/ID from its ledger. On AWS every kit log
line carries the event id, so one Logs Insights query over the stack's function log groups
(`/aws/lambda/<prefix>-<function>`) tells who received the event, how often, and the last error.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from fanout import untrusted
from fanout.topology import Topology

STATES = ("processed", "running", "retrying", "dlq", "filtered", "pending")
QUERY_TIMEOUT = 60.0
MAX_ANSWER = 512 << 20  # a DLQ of 1000 messages of 256 KiB fits
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class TraceError(Exception):
    pass


def contract_shape(doc: dict[str, Any]) -> dict[str, Any]:
    """Exactly the keys `fanout trace --json` promises (CONTRACT §7)."""
    return {
        "id": doc["id"],
        "type": doc.get("type"),
        "subject": doc.get("subject"),
        "published": doc.get("published"),
        "stored": bool(doc.get("stored")),
        "announced": bool(doc.get("announced")),
        "consumers": {
            name: {"state": c["state"], "attempts": int(c.get("attempts", 0))}
            for name, c in sorted(doc.get("consumers", {}).items())
        },
    }


def human(doc: dict[str, Any], clean: Any = str) -> str:
    yes = {True: "yes", False: "no"}
    lines = [
        f"event      {clean(doc['id'])}",
        f"type       {clean(doc.get('type') or '?')}   subject {clean(doc.get('subject') or '?')}",
        f"published  {doc.get('published') or 'not seen on the topic'}",
        f"stored     {yes[bool(doc.get('stored'))]}   announced on the bus {yes[bool(doc.get('announced'))]}",
        "consumers",
    ]
    for name, c in sorted(doc.get("consumers", {}).items()):
        n = int(c.get("attempts", 0))
        line = f"  {clean(name):<20} {c['state']:<10} {n} attempt{'s' if n != 1 else ''}"
        if int(c.get("deliveries", 0)) > 1:  # replayed or redriven: each delivery counts its own attempts
            line += f" (delivery {c['deliveries']})"
        if c.get("state") in ("retrying", "dlq") and c.get("maxReceiveCount"):
            line += f" (receive {c.get('receiveCount')} of {c['maxReceiveCount']})"
        if c.get("error"):
            line += f"  last error: {clean(c['error'])}"
        lines.append(line)
    return "\n".join(lines)


# ---------------------------------------------------------------------- local


def local_get(api_url: str, path: str, *, timeout: float = 10) -> Any:
    """GET a JSON answer of the running local stack (/_local/...); TraceError with its message, or saying
    that no stack runs."""
    try:
        with urllib.request.urlopen(f"{api_url}{path}", timeout=timeout) as response:  # noqa: S310 (loopback)
            # Its own answer, holding anyone's message bodies (each at most untrusted.MAX_DEPTH deep).
            answer = untrusted.parse(response.read(), max_bytes=MAX_ANSWER, max_depth=untrusted.MAX_DEPTH + 8)
    except urllib.error.HTTPError as exc:
        error = untrusted.parse(exc.read()).value
        message = error.get("message") if isinstance(error, dict) else None
        raise TraceError(str(message) if message else f"the local stack answered {exc.code}") from None
    except OSError:
        raise TraceError(f"no local stack at {api_url}; start it with `make run`") from None
    if not answer.ok:
        raise TraceError(f"the local stack's answer to {path} is {answer.problem}")
    return answer.value


def local(api_url: str, event_id: str) -> dict[str, Any]:
    from urllib.parse import urlencode

    # In the query, not the path: any id ("/", "..", a trailing "/") reaches the ledger as it is.
    return local_get(api_url, f"/_local/trace?{urlencode({'id': event_id})}")


# ---------------------------------------------------------------------- AWS


def id_time(event_id: str) -> float | None:
    """The creation time a ULID carries (seconds), or None if it is not one."""
    if len(event_id) != 26 or any(ch not in _ALPHABET for ch in event_id.upper()):
        return None
    value = 0
    for ch in event_id.upper()[:10]:
        value = value * 32 + _ALPHABET.index(ch)
    return value / 1000


def log_groups(topo: Topology) -> dict[str, str]:
    """Log group -> function short name, as the Pulumi program names them."""
    names = ["api", "generator"] + [c.name for c in topo.consumers if c.handler]
    return {f"/aws/lambda/{topo.prefix}-{n}": n for n in names}


def query(logs: Any, groups: list[str], event_id: str, start: float, end: float) -> list[dict[str, str]]:
    """Run one Logs Insights query for the event's lines; each result as {field: value}."""
    if not event_id.replace("-", "").replace("_", "").isalnum():
        raise TraceError("the event id may hold only letters, digits, '-' and '_'")
    q = f'fields @timestamp, @log, @message | filter @message like "{event_id}" | sort @timestamp asc | limit 10000'
    started = logs.start_query(logGroupNames=groups, startTime=int(start), endTime=int(end), queryString=q)
    deadline = time.monotonic() + QUERY_TIMEOUT
    while True:
        answer = logs.get_query_results(queryId=started["queryId"])
        status = answer["status"]
        if status == "Complete":
            return [{f["field"]: f["value"] for f in row} for row in answer.get("results", [])]
        if status in ("Failed", "Cancelled", "Timeout", "Unknown"):
            raise TraceError(f"the Logs Insights query ended {status.lower()}")
        if time.monotonic() > deadline:
            raise TraceError("the Logs Insights query did not finish within a minute")
        time.sleep(0.5)


def from_logs(rows: list[dict[str, str]], event_id: str, topo: Topology, groups: dict[str, str]) -> dict[str, Any]:
    """The trace the functions' log lines tell."""
    doc: dict[str, Any] = {"id": event_id, "type": None, "subject": None, "published": None}
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        group = row.get("@log", "").split(":", 1)[-1]
        function = groups.get(group)
        line = untrusted.parse(row.get("@message", "")).value  # a function's log line: anything it printed
        if function is None or not isinstance(line, dict):
            continue
        ids = line.get("event_ids") or []
        if line.get("event_id") != event_id and event_id not in ids:
            continue
        message = str(line.get("message", ""))
        if isinstance(line.get("event_type"), str):
            doc["type"] = line["event_type"]
        if function in ("api", "generator"):
            if doc["published"] is None:
                doc["published"] = _iso(line.get("timestamp")) or row.get("@timestamp")
            continue
        c = seen.setdefault(function, {"attempts": 0, "failed": False, "error": None, "receive": 0})
        if message in ("event received", "events received"):  # a record's line, or its batch's
            c["attempts"] += 1
            c["failed"] = False
        elif str(line.get("level", "")).upper() in ("WARNING", "ERROR") or "retried" in message:
            c["failed"] = True
            c["error"] = message
            c["receive"] = int(line.get("receive_count") or c["attempts"] or 0)
    consumers = {}
    for cons in topo.consumers:
        c = seen.get(cons.name)
        if c is None or not c["attempts"]:
            consumers[cons.name] = {"state": "pending" if _may_match(cons, doc["type"]) else "filtered", "attempts": 0}
            continue
        state = "retrying" if c["failed"] else "processed"
        if c["failed"] and c["receive"] >= cons.max_receive_count:
            state = "dlq"
        consumers[cons.name] = {"state": state, "attempts": c["attempts"], "error": c["error"] if c["failed"] else None}
    persister = consumers.get("persister", {})
    doc["stored"] = doc["announced"] = persister.get("state") == "processed"
    doc["consumers"] = consumers
    return doc


def _may_match(consumer: Any, event_type: str | None) -> bool:
    """False only when the consumer's filter policy on `type` plainly excludes the event's type."""
    types = (consumer.filter_policy or {}).get("type")
    if event_type is None or not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        return True
    return event_type in types


def _iso(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def on_aws(logs: Any, topo: Topology, event_id: str, extra_groups: list[str] | None = None) -> dict[str, Any]:
    groups = log_groups(topo)
    for g in extra_groups or []:
        groups[g] = g.rsplit("/", 1)[-1].removeprefix(f"{topo.prefix}-")
    made = id_time(event_id)
    now = time.time()
    start = (made - 300) if made else now - 7 * 24 * 3600
    rows = query(logs, sorted(groups), event_id, start, now + 60)
    if not rows:
        raise TraceError(f"no log line mentions event {event_id} in {len(groups)} log groups of stack {topo.stack}")
    return from_logs(rows, event_id, topo, groups)
