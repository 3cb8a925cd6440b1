"""Typed fanout events: one frozen dataclass per event type, fields as in schemas/.

A consumer receives these, never a raw dict. Each field carries its JSON name in its
metadata (`informationOne` is `information_one`); tests/unit/test_models.py checks every
model against its JSON Schema (names, required fields, types), so a schema change the
models do not follow fails the unit tests.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

E = TypeVar("E", bound="CloudEvent")


def _json(name: str) -> dict[str, str]:
    return {"json": name}


def json_name(f: Any) -> str:
    return f.metadata.get("json", f.name)


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


@dataclass(frozen=True, kw_only=True)
class CloudEvent:
    """cloudevent.v1.json: the envelope every event type shares; subclasses fix `TYPE` and `data`."""

    TYPE: ClassVar[str] = ""
    DATA: ClassVar[type] = dict
    SCHEMA: ClassVar[str] = "cloudevent.v1.json"

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
    def from_dict(cls: type[E], raw: dict[str, Any]) -> E:
        """From a CloudEvent that passed its schema (handlers.core.events.validate)."""
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


def _from_dict(cls: type, raw: dict[str, Any]) -> Any:
    return cls(**{f.name: raw[json_name(f)] for f in fields(cls) if json_name(f) in raw})


def as_json(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {json_name(f): getattr(value, f.name) for f in fields(value)}
    return value


@dataclass(frozen=True, kw_only=True)
class DataGenerated(CloudEvent):
    """fanout.data.generated.v1: a user's data entered the system (POST /data or the generator)."""

    TYPE: ClassVar[str] = "fanout.data.generated.v1"
    DATA: ClassVar[type] = Data
    SCHEMA: ClassVar[str] = "fanout.data.generated.v1.json"

    data: Data = field(metadata=_json("data"))


@dataclass(frozen=True, kw_only=True)
class DataPersisted(CloudEvent):
    """fanout.data.persisted.v1: the persister stored a user's item; data is the item."""

    TYPE: ClassVar[str] = "fanout.data.persisted.v1"
    DATA: ClassVar[type] = Item
    SCHEMA: ClassVar[str] = "fanout.data.persisted.v1.json"

    data: Item = field(metadata=_json("data"))


# Every event type fanout publishes, by its `type`.
MODELS: dict[str, type[CloudEvent]] = {m.TYPE: m for m in (DataGenerated, DataPersisted)}


def required(cls: type) -> set[str]:
    """JSON names of the fields a model cannot be built without (for the schema check)."""
    return {json_name(f) for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
