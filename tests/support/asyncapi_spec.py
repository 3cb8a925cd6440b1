"""The official AsyncAPI 3.0.0 JSON Schema, from npm's @asyncapi/specs (installed by `make install`)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

# The bundled file: every definition it references (bindings included) is inside it, keyed by its $id.
SPEC = Path(__file__).resolve().parents[2] / "node_modules/@asyncapi/specs/schemas/3.0.0.json"


@functools.cache
def validator() -> Draft7Validator:
    if not SPEC.is_file():
        raise FileNotFoundError(f"{SPEC} is missing: run `make install` (npm ci installs @asyncapi/specs)")
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    # crawl() registers each embedded definition under its own $id, so their cross-references resolve offline.
    registry = Registry().with_resource(spec["$id"], Resource.from_contents(spec, default_specification=DRAFT7))
    return Draft7Validator(spec, registry=registry.crawl())


def errors(document: Any) -> list[str]:
    """Every way `document` fails the official schema, with where it fails."""
    found = []
    for error in validator().iter_errors(document):
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        found.append(f"{where}: {error.message[:300]}")
    return found
