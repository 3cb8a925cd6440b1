"""CloudEvents 1.0 structured-mode envelopes for fanout's event types."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from handlers.core import ids, schemas

GENERATED = "fanout.data.generated.v1"
PERSISTED = "fanout.data.persisted.v1"
_SCHEMA_FILES = {GENERATED: f"{GENERATED}.json", PERSISTED: f"{PERSISTED}.json"}


class InvalidEvent(ValueError):
    """A message that is not a valid fanout event; the message says why."""


def utc_now_iso() -> str:
    """ISO 8601 UTC with milliseconds and a trailing Z, the format of `time` and `createdAt`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def build(
    event_type: str,
    *,
    source: str,
    subject: str,
    data: dict[str, Any],
    event_id: str | None = None,
    time: str | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """A validated envelope; producers call this, so nothing invalid is ever published."""
    if event_type not in _SCHEMA_FILES:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or ids.new_id(),
        "source": source,
        "type": event_type,
        "time": time or utc_now_iso(),
        "subject": subject,
        "datacontenttype": "application/json",
        "dataschema": schemas.schema_uri(_SCHEMA_FILES[event_type]),
        "data": data,
    }
    if correlation_id:
        event["correlationid"] = correlation_id[:256]
    validate(event)
    return event


def validate(event: Any) -> None:
    if not isinstance(event, dict):
        raise InvalidEvent("event is not a JSON object")
    event_type = event.get("type")
    if event_type not in _SCHEMA_FILES:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    try:
        schemas.validate(_SCHEMA_FILES[event_type], event, label="event")
    except schemas.SchemaError as exc:
        raise InvalidEvent(str(exc)) from None


def parse(body: str, *, expected_type: str | None = None) -> dict[str, Any]:
    """Parse and validate a structured-mode body, as consumers do on receipt."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidEvent(f"body is not JSON: {exc}") from None
    validate(event)
    if expected_type and event["type"] != expected_type:
        raise InvalidEvent(f"expected type {expected_type}, got {event['type']}")
    return event


def sns_attributes(event: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Message attributes mirroring the envelope, for subscription filter policies."""
    return {
        "type": {"DataType": "String", "StringValue": event["type"]},
        "subject": {"DataType": "String", "StringValue": event["subject"]},
    }
