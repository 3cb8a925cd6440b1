"""CloudEvents 1.0 structured-mode envelopes: the one parser of what a queue or the topic carries.

The event types themselves (and their registry) are the models in fanout_kit.models; this module
reads envelopes: a body as the CloudEvent it holds, whichever shape a queue delivered it in.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fanout_kit.models import MODELS, CloudEvent, InvalidEvent, model_of, utc_now_iso, validate

__all__ = [
    "MODELS",
    "InvalidEvent",
    "build",
    "cloudevent_of",
    "parse",
    "sns_attributes",
    "unwrap",
    "utc_now_iso",
    "validate",
]

Shape = Literal["cloudevent", "eventbridge"]


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
    """A validated envelope as a dict, for tools and tests; producers build models (`Model.new`)."""
    event = model_of(event_type).new(
        source=source, subject=subject, data=data, id=event_id, time=time, correlation_id=correlation_id
    )
    return event.to_dict()


def _loaded(body: Any) -> Any:
    if isinstance(body, str | bytes):
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise InvalidEvent(f"body is not JSON: {exc}") from None
    return body


def _detail(doc: Any) -> Any | None:
    """The CloudEvent an EventBridge delivery carries in `detail` (a bus consumer's queue), else None."""
    if isinstance(doc, dict) and "detail-type" in doc and "detail" in doc:
        return doc["detail"]
    return None


def unwrap(body: Any) -> tuple[dict[str, Any], Shape]:
    """The validated CloudEvent in a record body, and the shape it came in ("cloudevent" or "eventbridge")."""
    doc = _loaded(body)
    detail = _detail(doc)
    if detail is not None:
        validate(detail)
        if doc["detail-type"] != detail["type"]:
            raise InvalidEvent(f"detail-type {doc['detail-type']!r} differs from the event's type")
        return detail, "eventbridge"
    validate(doc)
    return doc, "cloudevent"


def cloudevent_of(body: str) -> dict[str, Any] | None:
    """The CloudEvent-like object a message carries, unvalidated (for observers that show even poison
    messages): the body itself (topic) or its `detail` (bus); None when it has no string `id`."""
    try:
        doc = _loaded(body)
    except InvalidEvent:
        return None
    detail = _detail(doc)
    if isinstance(detail, dict):
        doc = detail
    return doc if isinstance(doc, dict) and isinstance(doc.get("id"), str) else None


def parse(body: Any, *types: type[CloudEvent]) -> CloudEvent:
    """A body (either shape) as the typed event it holds; with `types`, only those are accepted."""
    raw, _ = unwrap(body)
    model = MODELS[raw["type"]]
    if types and model not in types:
        wanted = ", ".join(t.TYPE for t in types)
        raise InvalidEvent(f"expected type {wanted}, got {raw['type']}")
    return model.from_dict(raw)


def sns_attributes(event: CloudEvent | dict[str, Any]) -> dict[str, dict[str, str]]:
    """Message attributes mirroring the envelope, for subscription filter policies."""
    raw = event.to_dict() if isinstance(event, CloudEvent) else event
    return {
        "type": {"DataType": "String", "StringValue": raw["type"]},
        "subject": {"DataType": "String", "StringValue": raw["subject"]},
    }
