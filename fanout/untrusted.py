"""Bytes from outside parsed so that no input breaks a tool: message bodies and archive lines.

Anyone who can publish, or put a message on a queue or an object in the archive, chooses these
bytes. json's parser recurses in C and gives up with RecursionError (not a ValueError) on deep
nesting; a value it did parse can still be too deep for what reads it next (json.dumps with
an indent, a filter matcher, a schema validator recurse in Python). So every tool that reads
a message body or an archive line goes through `parse`, which never raises, and which says in
one line what it refused, for the tool to print.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

# Far deeper than any event (a CloudEvent's data is a few levels), far shallower than Python's
# recursion limit, so whatever walks a value parsed here cannot overflow the stack.
MAX_DEPTH = 100
# An SQS message or SNS notification holds at most 1 MiB; an archive line is one of them.
MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class Parsed:
    """A parsed value, or why there is none (`problem`, one line)."""

    value: Any = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _depth_over(value: Any, limit: int) -> bool:
    """True when containers nest deeper than `limit` (iterative: safe whatever the depth)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


def size(data: str | bytes) -> str:
    """A body's size as a person reads it."""
    n = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} bytes"


def parse(data: str | bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Parsed:
    """The JSON value in `data`; never raises. Refused: more than `max_bytes`, bytes that are not UTF-8,
    text that is not JSON (NaN and Infinity included), containers nested deeper than `max_depth`."""
    if len(data) > max_bytes:  # chars <= bytes: a str this long is at least this many bytes
        return Parsed(problem=f"larger than {max_bytes >> 10} KiB ({size(data)})")
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            return Parsed(problem=f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})")
    else:
        text = data
    try:
        value = json.loads(text, parse_constant=_constant)
    except RecursionError:
        return Parsed(problem=f"JSON nested deeper than {max_depth} levels ({size(data)})")
    except json.JSONDecodeError as exc:
        return Parsed(problem=f"not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})")
    except ValueError as exc:  # NaN/Infinity, a number of more than 4300 digits
        return Parsed(problem=f"not JSON ({str(exc).splitlines()[0][:120]})")
    if _depth_over(value, max_depth):
        return Parsed(problem=f"JSON nested deeper than {max_depth} levels ({size(data)})")
    return Parsed(value)


def cloudevent(data: str | bytes) -> Parsed:
    """The CloudEvent a queue message carries: the body itself (topic) or its `detail` (bus).

    Refused unless it is a JSON object with a string `id`; `value` is the event object.
    """
    parsed = parse(data)
    if not parsed.ok:
        return parsed
    doc = parsed.value
    if isinstance(doc, dict) and isinstance(doc.get("detail"), dict) and "detail-type" in doc:
        doc = doc["detail"]
    if not isinstance(doc, dict):
        return Parsed(problem=f"not a JSON object but {type(doc).__name__}")
    if not isinstance(doc.get("id"), str):
        return Parsed(problem="a JSON object without a string id")
    return Parsed(doc)


def digest(data: str | bytes) -> str:
    """A short stable name for a body that has no event id (the same bytes, the same name)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:32]
