"""The JSON Schemas in schemas/ compiled once; the files are the single source of truth."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema

# handlers/core/schemas.py -> <root>/schemas, both in the checkout and in the Lambda zip.
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
BASE_URI = "https://schemas.fanout.dev/"


class SchemaError(ValueError):
    """A document that its schema rejects; the message names the field."""


@functools.cache
def load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


def _resolve(uri: str) -> dict[str, Any]:
    if not uri.startswith(BASE_URI):
        raise SchemaError(f"schema reference outside schemas/: {uri}")
    return load(uri[len(BASE_URI) :].split("#", 1)[0])


@functools.cache
def _validator(name: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(load(name), handlers={"https": _resolve})


def validate(name: str, document: Any, *, label: str = "body") -> None:
    """Raise SchemaError naming the offending field, e.g. 'body.informationOne must be string'."""
    try:
        _validator(name)(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise SchemaError(exc.message.replace("data", label, 1)) from None


def schema_uri(name: str) -> str:
    return BASE_URI + name
