"""Time-ordered, unique event ids (ULID: 48-bit milliseconds + 80 random bits, Crockford base32).

Sorting ids sorts events by creation time, which is what lets the table's sort key
serve `GET /data` newest first with one Query.
"""

from __future__ import annotations

import re
import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def new_id(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_id(value: object) -> bool:
    return isinstance(value, str) and bool(ULID_RE.match(value))
