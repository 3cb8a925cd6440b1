"""Typed fanout events: one frozen dataclass per event type, fields as in schemas/, and `MODELS`,
the one registry of every published event type.

A consumer receives these, never a raw dict; a producer builds them with `Model.new(...)`, which
validates once against the type's schema, so a model instance is a valid event by construction.
Each field carries its JSON name in its metadata (`informationOne` is `information_one`);
tests/unit/test_models.py checks every model against its JSON Schema (names, required fields,
types), so a schema change the models do not follow fails the unit tests.
"""

from __future__ import annotations

import builtins
from dataclasses import MISSING, Field, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from fanout_kit import ids, schemas


class InvalidEvent(ValueError):
    """A message that is not a valid fanout event; the message says why."""


def utc_now_iso() -> str:
    """ISO 8601 UTC with milliseconds and a trailing Z, the format of `time` and `createdAt`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _json(name: str) -> dict[str, str]:
    return {"json": name}


def json_name(f: Field[Any]) -> str:
    return str(f.metadata.get("json", f.name))


@dataclass(frozen=True)
class Data:
    """data.v1.json: what a user submits with POST /data."""

    information_one: str = field(metadata=_json("informationOne"))
    information_two: str = field(metadata=_json("informationTwo"))


@dataclass(frozen=True)
class Item:
    """item.v1.json: a stored item as GET /data returns it."""

    id: str = field(metadata=_json("id"))
    information_one: str = field(metadata=_json("informationOne"))
    information_two: str = field(metadata=_json("informationTwo"))
    created_at: str = field(metadata=_json("createdAt"))


# Inside CloudEvent the name `type` is the envelope's field: annotations that mean the builtin say
# `builtins.type`, else a type checker reads them as the field's `str`.
@dataclass(frozen=True, kw_only=True)
class CloudEvent:
    """cloudevent.v1.json: the envelope every event type shares; subclasses fix `TYPE` and `data`."""

    TYPE: ClassVar[str] = ""
    DATA: ClassVar[builtins.type[Any]] = dict
    SCHEMA: ClassVar[str] = "cloudevent.v1.json"
    SOURCE: ClassVar[str] = ""  # the producer that publishes this type unless `new` is told otherwise

    id: str = field(metadata=_json("id"))
    source: str = field(metadata=_json("source"))
    type: str = field(metadata=_json("type"))
    time: str = field(metadata=_json("time"))
    subject: str = field(metadata=_json("subject"))
    data: Any = field(metadata=_json("data"))
    specversion: str = field(default="1.0", metadata=_json("specversion"))
    datacontenttype: str = field(default="application/json", metadata=_json("datacontenttype"))
    dataschema: str = field(default="", metadata=_json("dataschema"))
    correlation_id: str | None = field(default=None, metadata=_json("correlationid"))

    @classmethod
    def new(
        cls,
        *,
        subject: str,
        data: Any,
        source: str | None = None,
        id: str | None = None,
        time: str | None = None,
        correlation_id: str | None = None,
    ) -> Self:
        """A new event of this type, validated against its schema (InvalidEvent names the problem).

        `data` is the type's data model or its JSON form; `id` (a new ULID) and `time` (now) default.
        """
        if not cls.TYPE:
            raise InvalidEvent("CloudEvent is the envelope; build an event type (DataGenerated, ...)")
        raw: dict[str, Any] = {
            "specversion": "1.0",
            "id": id or ids.new_id(),
            "source": source or cls.SOURCE,
            "type": cls.TYPE,
            "time": time or utc_now_iso(),
            "subject": subject,
            "datacontenttype": "application/json",
            "dataschema": schemas.schema_uri(cls.SCHEMA),
            "data": as_json(data),
        }
        if correlation_id:
            raw["correlationid"] = correlation_id[:256]
        validate(raw)
        return cls.from_dict(raw)

    @classmethod
    def parse(cls, raw: Any) -> Self:
        """A CloudEvent dict validated, as the model of its type (which must be this class or a subclass)."""
        model = validate(raw)
        if not issubclass(model, cls):
            raise InvalidEvent(f"expected type {cls.TYPE}, got {model.TYPE}")
        return model.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        """From a CloudEvent that passed its schema (`validate`); `parse` does both."""
        values = {f.name: raw[json_name(f)] for f in fields(cls) if json_name(f) in raw}
        if cls.DATA is not dict:
            values["data"] = _from_dict(cls.DATA, raw["data"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The CloudEvent as JSON-ready dict, as it was published (absent optional fields stay absent)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            out[json_name(f)] = as_json(value) if f.name == "data" else value
        return out


def _from_dict(cls: builtins.type[Any], raw: dict[str, Any]) -> Any:
    return cls(**{f.name: raw[json_name(f)] for f in fields(cls) if json_name(f) in raw})


def as_json(value: Any) -> Any:
    """A data model as its JSON object; anything else as it is."""
    if hasattr(value, "__dataclass_fields__"):
        return {json_name(f): getattr(value, f.name) for f in fields(value)}
    return value


@dataclass(frozen=True, kw_only=True)
class DataGenerated(CloudEvent):
    """fanout.data.generated.v1: a user's data entered the system (POST /data or the generator)."""

    TYPE: ClassVar[str] = "fanout.data.generated.v1"
    DATA: ClassVar[builtins.type[Any]] = Data
    SCHEMA: ClassVar[str] = "fanout.data.generated.v1.json"
    SOURCE: ClassVar[str] = "fanout.api"

    data: Data = field(metadata=_json("data"))


@dataclass(frozen=True, kw_only=True)
class DataPersisted(CloudEvent):
    """fanout.data.persisted.v1: the persister stored a user's item; data is the item."""

    TYPE: ClassVar[str] = "fanout.data.persisted.v1"
    DATA: ClassVar[builtins.type[Any]] = Item
    SCHEMA: ClassVar[str] = "fanout.data.persisted.v1.json"
    SOURCE: ClassVar[str] = "fanout.persister"

    data: Item = field(metadata=_json("data"))


# Every event type fanout publishes, by its `type`: the one registry (the envelope parser, the
# producers, the topology's defaults and the scaffold all read it).
MODELS: dict[str, type[CloudEvent]] = {m.TYPE: m for m in (DataGenerated, DataPersisted)}


def model_of(event_type: Any) -> type[CloudEvent]:
    """The model of a published event type; InvalidEvent for any other."""
    model = MODELS.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    return model


def validate(event: Any) -> type[CloudEvent]:
    """Check a CloudEvent dict against its type's schema; returns the type's model."""
    if not isinstance(event, dict):
        raise InvalidEvent("event is not a JSON object")
    model = model_of(event.get("type"))
    try:
        schemas.validate(model.SCHEMA, event, label="event")
    except schemas.SchemaError as exc:
        raise InvalidEvent(str(exc)) from None
    return model


def required(cls: type) -> set[str]:
    """JSON names of the fields a model cannot be built without (for the schema check)."""
    return {json_name(f) for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
