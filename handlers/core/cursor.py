"""Opaque, tamper-evident pagination cursors bound to the user they were issued to.

A cursor is the last key of a page plus an HMAC over (length-prefixed user, key). A forged or altered
cursor, or one issued to another user, fails verification and is answered with 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from fanout_kit import ids


class InvalidCursor(ValueError):
    pass


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, user: str, payload: str) -> bytes:
    # Length-prefixed, so no (user, payload) pair signs the same bytes as another, whatever they hold.
    raw_user = user.encode("utf-8", "surrogatepass")
    message = len(raw_user).to_bytes(4, "big") + raw_user + payload.encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).digest()[:16]


def encode(key: bytes, user: str, last_id: str) -> str:
    payload = _b64(json.dumps({"v": 1, "k": last_id}, separators=(",", ":")).encode())
    return f"{payload}.{_b64(_mac(key, user, payload))}"


def decode(key: bytes, user: str, cursor: str) -> str:
    if not cursor or len(cursor) > 512:
        raise InvalidCursor("cursor is invalid")
    payload, _, tag = cursor.partition(".")
    try:
        ok = hmac.compare_digest(_unb64(tag), _mac(key, user, payload))
        data = json.loads(_unb64(payload)) if ok else None
    except (ValueError, UnicodeDecodeError):
        raise InvalidCursor("cursor is invalid") from None
    if not ok or not isinstance(data, dict) or data.get("v") != 1 or not ids.is_id(data.get("k")):
        raise InvalidCursor("cursor is invalid")
    return str(data["k"])
