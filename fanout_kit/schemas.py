"""The JSON Schemas of schemas/ compiled once; the files are the single source of truth.

They are the kit's package data (fanout_kit/event_schemas: in a checkout a link to the repository's
schemas/, in the wheel and the Lambda zip a copy of it), found through importlib.resources.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import fastjsonschema

SCHEMA_DIR: Traversable = resources.files("fanout_kit") / "event_schemas"
BASE_URI = "https://schemas.fanout.dev/"


NAME_SHOWN = 64  # characters of a client-chosen field name quoted back in a message


class SchemaError(ValueError):
    """A document that its schema rejects; the message names the field."""


def quoted(name: str) -> str:
    """A client-chosen name as a message shows it: JSON-quoted (control characters escaped), cut if long."""
    text = json.dumps(name if len(name) <= NAME_SHOWN else name[:NAME_SHOWN] + "…", ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate shown as \udXXX


@functools.cache
def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SCHEMA_DIR.joinpath(name).read_text(encoding="utf-8"))
    return document


def _resolve(uri: str) -> dict[str, Any]:
    if not uri.startswith(BASE_URI):
        raise SchemaError(f"schema reference outside schemas/: {uri}")
    return load(uri[len(BASE_URI) :].split("#", 1)[0])


@functools.cache
def _validator(name: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(load(name), handlers={"https": _resolve})


def validate(name: str, document: Any, *, label: str = "body") -> None:
    """Raise SchemaError naming the offending field, e.g. 'field "informationOne" must be a string'."""
    try:
        _validator(name)(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise SchemaError(_say(exc, label)) from None


_TYPES = {
    "object": "a JSON object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _names(names: list[str]) -> str:
    return ", ".join(quoted(n) for n in names)


def _say(exc: fastjsonschema.JsonSchemaValueException, label: str) -> str:
    """fastjsonschema's message (`data must contain ['x'] properties`) as a person would say it."""
    parents = [str(p) for p in (exc.path or ["data"])[1:]]
    value, rule, wanted = exc.value, exc.rule, exc.rule_definition
    definition = exc.definition if isinstance(exc.definition, dict) else {}
    prefix = "" if label == "body" else f"{label}: "

    def full(name: str) -> str:
        return ".".join([*parents, name])

    here = f"field {quoted('.'.join(parents))}" if parents else label
    if rule == "required" and isinstance(value, dict) and isinstance(wanted, list):
        missing = [full(str(n)) for n in wanted if n not in value]
        return f"{prefix}missing field{'s' if len(missing) > 1 else ''} {_names(missing)}"
    if rule == "additionalProperties" and wanted is False and isinstance(value, dict):
        known = set(definition.get("properties", {}))
        extra = sorted(full(str(k)) for k in value if k not in known)
        return f"{prefix}unknown field{'s' if len(extra) > 1 else ''} {_names(extra)}"
    if rule == "type":
        kinds = wanted if isinstance(wanted, list) else [wanted]
        said = " or ".join(_TYPES.get(str(k), str(k)) for k in kinds)
        return f"{prefix}{here} must be {said}"
    if rule in ("minLength", "maxLength"):
        low, high = definition.get("minLength"), definition.get("maxLength")
        if low is not None and high is not None:
            return f"{prefix}{here} must be {low} to {high} characters long"
        bound = f"at least {low}" if rule == "minLength" else f"at most {high}"
        return f"{prefix}{here} must be {bound} characters long"
    return f"{prefix}{here} is not valid: {exc.message.split(' ', 1)[-1]}"


def schema_uri(name: str) -> str:
    return BASE_URI + name
