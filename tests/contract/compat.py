"""Does a new version of a JSON Schema reject anything the published version accepted?

A conservative structural check over the keywords fanout's schemas use: it reports every
change that can only narrow (a new required field, a shorter maxLength, a changed pattern, a
new keyword it cannot reason about, ...). Widening changes (a longer maxLength, a field no
longer required, a new optional property where extra ones were refused) pass. Together with
the accepted-event fixtures this is the rule: a published v1 never starts rejecting events it
accepted; such a change is a v2, a new type in a new file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BASE_URI = "https://schemas.fanout.dev/"
ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description", "examples", "default", "readOnly", "writeOnly"}
LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
HANDLED = {
    "type",
    "const",
    "enum",
    "pattern",
    "required",
    "properties",
    "additionalProperties",
    "allOf",
    "items",
    *LOWER_BOUNDS,
    *UPPER_BOUNDS,
}


def load_dir(directory: Path) -> dict[str, Any]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))}


def resolve(schemas: dict[str, Any], name: str) -> Any:
    """The schema `name` with every $ref into the same set of files inlined."""

    def pointer(doc: Any, fragment: str) -> Any:
        for part in [p for p in fragment.lstrip("/").split("/") if p]:
            doc = doc[part]
        return doc

    def walk(node: Any, current: str, depth: int = 0) -> Any:
        if depth > 50:
            raise ValueError(f"$ref cycle in {name}")
        if isinstance(node, list):
            return [walk(n, current, depth) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"].removeprefix(BASE_URI)
            file, _, fragment = ref.partition("#")
            file = file or current
            return walk(pointer(schemas[file], fragment), file, depth + 1)
        return {k: walk(v, current, depth) for k, v in node.items()}

    return walk(schemas[name], name)


def _types(schema: dict[str, Any]) -> set[str] | None:
    t = schema.get("type")
    return None if t is None else ({t} if isinstance(t, str) else set(t))


def narrowing(old: Any, new: Any, path: str = "$") -> list[str]:
    """Every change from `old` to `new` that can make `new` reject an instance `old` accepted."""
    if new is True or new == {}:
        return []
    if old is False:
        return []  # nothing was accepted here, nothing can be lost
    if new is False:
        return [f"{path}: now rejects everything"]
    old = {} if old is True else old
    found: list[str] = []
    for key in set(new) - ANNOTATIONS - HANDLED:
        if new[key] != old.get(key):
            found.append(f"{path}: keyword {key!r} added or changed (cannot prove it rejects nothing new)")

    new_types, old_types = _types(new), _types(old)
    if new_types is not None and (old_types is None or not old_types <= new_types):
        found.append(f"{path}: type {sorted(old_types or ['any'])} narrowed to {sorted(new_types)}")
    same_const = "const" in old and old["const"] == new.get("const")
    if "const" in new and not same_const and old.get("enum") != [new["const"]]:
        found.append(f"{path}: const {new['const']!r} added or changed")
    if "enum" in new:
        old_values = old.get("enum", [old["const"]] if "const" in old else None)
        if old_values is None or any(v not in new["enum"] for v in old_values):
            found.append(f"{path}: enum narrowed to {new['enum']!r}")
    if "pattern" in new and new["pattern"] != old.get("pattern"):
        found.append(f"{path}: pattern added or changed ({old.get('pattern')!r} -> {new['pattern']!r})")
    for key in LOWER_BOUNDS:
        if key in new and (key not in old or new[key] > old[key]):
            found.append(f"{path}: {key} raised to {new[key]}")
    for key in UPPER_BOUNDS:
        if key in new and (key not in old or new[key] < old[key]):
            found.append(f"{path}: {key} lowered to {new[key]}")
    added = set(new.get("required", [])) - set(old.get("required", []))
    if added:
        found.append(f"{path}: now requires {sorted(added)}")

    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_extra = old.get("additionalProperties", True)
    for prop, schema in new_props.items():
        # A property the old schema did not list was governed by its additionalProperties.
        found += narrowing(old_props.get(prop, old_extra), schema, f"{path}.{prop}")
    if "additionalProperties" in new:
        extra = new["additionalProperties"]
        dropped = set(old_props) - set(new_props)
        if extra is False and dropped:
            found.append(f"{path}: properties {sorted(dropped)} are no longer allowed")
        found += narrowing(old_extra, extra, f"{path}.<additional>")
    if "items" in new:
        found += narrowing(old.get("items", True), new["items"], f"{path}[]")
    if "allOf" in new:
        old_all = old.get("allOf", [])
        for i, sub in enumerate(new["allOf"]):
            found += narrowing(old_all[i] if i < len(old_all) else True, sub, f"{path}.allOf[{i}]")
    return found
