"""Readable terminal logs for `make run`: one line per record, tracebacks as ordinary tracebacks, once.

On Lambda every function writes Powertools' JSON lines, which CloudWatch Logs Insights queries;
in a terminal a poison message would be a 2 KB line with its traceback inlined. Locally the
functions' output (each runs in its own worker process) is relayed through `relay()`, which turns
each Powertools record into

    20:13:53.893 persister WARNING invalid event; reported as a batch item failure  event=01K... message=6f1c...

and the runtime's own records (pollers, gateway, state) get the same shape from `ReadableFormatter`.
`FANOUT_LOG_FORMAT=json` keeps the JSON exactly as Lambda writes it (and the runtime's lines as JSON too).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

# Control characters escaped: a logged field must not drive the terminal.
from fanout.text import printable

FORMATS = ("text", "json")
# Powertools' standard keys: shown in the line's fixed places, or not at all.
_STANDARD = {
    "level", "location", "message", "timestamp", "service", "cold_start", "function_name", "function_memory_size",
    "function_arn", "function_request_id", "xray_trace_id", "sampling_rate", "exception", "exception_name",
    "stack_trace", "event_id", "message_id", "correlation_id",
}  # fmt: skip
_write_lock = threading.Lock()
# A record's failure line from the consumer kit (its `outcome`): the runtime reports that attempt itself,
# as "attempt N of M failed" with the DLQ on the last one, so the terminal shows one line per attempt.
KIT_FAILURE = "failed"
# The tracebacks already printed, by function, exception type and the frames it went through.
_shown: set[tuple[str, ...]] = set()
_SHOWN_MAX = 1000


def log_format() -> str:
    value = (os.environ.get("FANOUT_LOG_FORMAT", "").strip() or "text").lower()
    if value not in FORMATS:
        raise ValueError(f"FANOUT_LOG_FORMAT must be text or json, got {value!r}")
    return value


def _clock(value: Any) -> str:
    """'2026-12-01 20:13:53,893+0000' (Powertools) or an ISO time -> '20:13:53.893'."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%H:%M:%S.%f")[:-3]
    text = str(value or "")
    for fmt in ("%Y-%m-%d %H:%M:%S,%f%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(text, fmt).astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]
        except ValueError:
            continue
    return text[11:23] if len(text) >= 23 else text


def line(
    *,
    when: Any,
    function: str,
    level: str,
    message: str,
    event_id: Any = None,
    message_id: Any = None,
    extra: dict[str, Any] | None = None,
) -> str:
    parts = [_clock(when), printable(function), f"{level:<7}", printable(message)]
    tail = []
    if event_id:
        tail.append(f"event={printable(event_id)}")
    if message_id:
        tail.append(f"message={printable(message_id)}")
    for key, value in (extra or {}).items():
        tail.append(
            f"{printable(key)}={printable(value if isinstance(value, str) else json.dumps(value, default=str))}"
        )
    return " ".join(parts) + ("  " + " ".join(tail) if tail else "")


def from_powertools(doc: dict[str, Any], default_function: str) -> str:
    """A Powertools JSON record as the readable line, its traceback (if any) after it."""
    extra = {k: v for k, v in doc.items() if k not in _STANDARD and not k.startswith("_")}
    text = line(
        when=doc.get("timestamp"),
        function=str(doc.get("service") or default_function),
        level=str(doc.get("level", "INFO")),
        message=str(doc.get("message", "")),
        event_id=doc.get("event_id"),
        message_id=doc.get("message_id"),
        extra=extra,
    )
    tb = doc.get("exception")
    if isinstance(tb, str) and tb.strip():
        text += "\n" + tb.rstrip()  # an ordinary traceback, as Python prints it
    return text


def traceback_once(function: str, tb: str | None) -> str:
    """What to print of a failure's traceback: all of it the first time this error is seen, else nothing.

    An error is the function, the exception's type and the frames it was raised through (its message
    may hold ids that differ each time). FANOUT_LOG_LEVEL=DEBUG prints every traceback.
    """
    if not tb or not tb.strip():
        return ""
    lines = tb.strip().splitlines()
    frames = tuple(x.strip() for x in lines if x.lstrip().startswith('File "'))
    key = (function, lines[-1].split(":", 1)[0], *frames)
    debug = (os.environ.get("FANOUT_LOG_LEVEL", "").strip().upper() or "WARNING") == "DEBUG"
    with _write_lock:
        if key in _shown and not debug:
            return ""
        if len(_shown) >= _SHOWN_MAX:
            _shown.clear()
        _shown.add(key)
    return "\n" + tb.rstrip()


def relay(stream: Iterable[str], function: str, out: TextIO | None = None, fmt: str | None = None) -> None:
    """Copy a worker's output to the terminal, each Powertools record rewritten as one readable line."""
    fmt = fmt or log_format()
    for raw in stream:
        text = raw.rstrip("\n")
        if fmt == "text" and text.startswith("{"):
            try:
                doc = json.loads(text)
            except (ValueError, RecursionError):  # a handler prints anything, deep nesting included
                doc = None
            if isinstance(doc, dict) and "level" in doc and "message" in doc:
                if doc.get("outcome") == KIT_FAILURE:
                    continue  # the runtime's "attempt N of M failed" line says it, with the traceback once
                text = from_powertools(doc, function)
        target = out or sys.stdout
        with _write_lock:
            target.write(text + "\n")
            target.flush()


def relay_in_thread(stream: Iterable[str], function: str) -> threading.Thread:
    t = threading.Thread(target=relay, args=(stream, function), name=f"output-{function}", daemon=True)
    t.start()
    return t


class ReadableFormatter(logging.Formatter):
    """The runtime's own records in the same one-line shape; a traceback follows once, unchanged."""

    def format(self, record: logging.LogRecord) -> str:
        function = getattr(record, "function", None) or record.name.removeprefix("fanout.local.").removeprefix(
            "fanout."
        )
        text = line(
            when=record.created,
            function=str(function),
            level=record.levelname,
            message=record.getMessage(),
            event_id=getattr(record, "event_id", None),
            message_id=getattr(record, "message_id", None),
        )
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(logging.Formatter):
    """The runtime's own records as JSON lines shaped like Powertools' (FANOUT_LOG_FORMAT=json)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3] + "+0000",
            "service": getattr(record, "function", None) or record.name,
        }
        for key in ("event_id", "message_id"):
            if getattr(record, key, None):
                doc[key] = getattr(record, key)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
            doc["exception_name"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(doc, default=str, ensure_ascii=False)


class _Handler(logging.StreamHandler):
    """Writes under the same lock as relay(), so a runtime line never lands inside a function's."""

    def emit(self, record: logging.LogRecord) -> None:
        with _write_lock:
            super().emit(record)


def configure(level: int = logging.WARNING) -> str:
    """Install the formatter for the runtime's records (root logger); returns the format in use."""
    fmt = log_format()
    handler = _Handler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ReadableFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    return fmt
