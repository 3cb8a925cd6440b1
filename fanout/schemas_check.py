"""`fanout schemas check`: does any published schema version now reject what it accepted?

Offline, from a checkout, without a stack. A schema is published when a copy of it sits in the
published directory (`tests/contract/published/` here) and accepted samples of its type sit in
the fixtures directory (`tests/contract/fixtures/<type>/`). Every published version must then
(1) still exist, (2) only widen: a conservative structural check over the keywords fanout's schemas
use reports every change that can only narrow (a new required field, a shorter maxLength, a changed
pattern, a keyword it cannot reason about, ...), and (3) still accept every published sample.
A change that breaks one of these is a new version: a new type (`...v2`) in a new file.

Another repository can run the same check on its own schemas with --schemas/--published/--fixtures.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
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
DEFAULT_SCHEMAS = Path("schemas")
DEFAULT_PUBLISHED = Path("tests/contract/published")
DEFAULT_FIXTURES = Path("tests/contract/fixtures")


class SchemaSetError(ValueError):
    """A schema directory that cannot be read or resolved; the message names the file."""


def load_dir(directory: Path) -> dict[str, Any]:
    """Every `*.json` of a directory by file name."""
    if not directory.is_dir():
        raise SchemaSetError(f"no schema directory {directory}")
    found = {}
    for path in sorted(directory.glob("*.json")):
        try:
            found[path.name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SchemaSetError(f"{path}: not readable JSON ({exc})") from None
    return found


def resolve(schemas: dict[str, Any], name: str) -> Any:
    """The schema `name` with every $ref into the same set of files inlined."""

    def pointer(doc: Any, fragment: str, file: str) -> Any:
        for part in [p for p in fragment.lstrip("/").split("/") if p]:
            try:
                doc = doc[part]
            except (KeyError, TypeError):
                raise SchemaSetError(f"{name}: $ref {file}#{fragment} points nowhere") from None
        return doc

    def walk(node: Any, current: str, depth: int = 0) -> Any:
        if depth > 50:
            raise SchemaSetError(f"{name}: $ref cycle")
        if isinstance(node, list):
            return [walk(n, current, depth) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"].removeprefix(BASE_URI)
            file, _, fragment = ref.partition("#")
            file = file or current
            if file not in schemas:
                raise SchemaSetError(f"{name}: $ref to {file}, which is not in the same directory")
            return walk(pointer(schemas[file], fragment, file), file, depth + 1)
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
    for key in sorted(set(new) - ANNOTATIONS - HANDLED):
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


def _sample_errors(schema: dict[str, Any], sample: Any) -> list[str]:
    """Why a resolved schema rejects a sample, one message per error, each naming the field."""
    from jsonschema.validators import validator_for

    errors = []
    for error in validator_for(schema)(schema).iter_errors(sample):
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        errors.append(f"{where}: {error.message}")
    return sorted(errors)


@dataclass(frozen=True)
class Break:
    schema: str  # the published file, e.g. fanout.data.generated.v1.json
    problem: str  # names the field: "$.allOf[1].data.informationOne: maxLength lowered to 10"

    def __str__(self) -> str:
        return f"{self.schema}: {self.problem}"


def check(schemas_dir: Path, published_dir: Path, fixtures_dir: Path | None = None) -> list[Break]:
    """Every break of a published schema version by the current schemas; empty when all is compatible."""
    current, published = load_dir(schemas_dir), load_dir(published_dir)
    breaks: list[Break] = []
    for name in sorted(published):
        if name not in current:
            breaks.append(Break(name, f"was published and is gone from {schemas_dir} (a new version is a new file)"))
            continue
        old, new = resolve(published, name), resolve(current, name)
        breaks += [Break(name, problem) for problem in narrowing(old, new)]
        samples_dir = fixtures_dir / name.removesuffix(".json") if fixtures_dir is not None else None
        if samples_dir is None or not samples_dir.is_dir():
            continue
        for path in sorted(samples_dir.glob("*.json")):
            try:
                sample = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SchemaSetError(f"{path}: not readable JSON ({exc})") from None
            breaks += [Break(name, f"rejects published sample {path.name}: {e}") for e in _sample_errors(new, sample)]
    return breaks


def run(args: argparse.Namespace) -> None:
    """The command: prints one line per break on stderr and exits 1, or a one-line summary and returns."""
    try:
        breaks = check(args.schemas, args.published, args.fixtures)
        count = len(load_dir(args.published))
    except SchemaSetError as exc:
        print(f"fanout: error: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
    if breaks:
        for found in breaks:
            print(str(found), file=sys.stderr)  # noqa: T201
        print(  # noqa: T201
            f"fanout: {len(breaks)} break(s) of published schemas; publish the change as a new version instead",
            file=sys.stderr,
        )
        raise SystemExit(1)
    print(f"schemas check: {count} published schema(s) still accept what they accepted")  # noqa: T201


def register(sub: Any) -> None:
    """Adds `schemas check` to the CLI's subcommands."""
    schemas = sub.add_parser("schemas", help="check the event schemas against their published versions")
    commands = schemas.add_subparsers(dest="schemas_command", required=True, parser_class=type(schemas))
    c = commands.add_parser(
        "check",
        help="fail when a published schema version would reject what it accepted (offline, no stack)",
        description=__doc__.splitlines()[0],
    )
    c.add_argument("--schemas", type=Path, default=DEFAULT_SCHEMAS, help="current schemas (default: schemas)")
    c.add_argument(
        "--published", type=Path, default=DEFAULT_PUBLISHED, help=f"published copies (default: {DEFAULT_PUBLISHED})"
    )
    c.add_argument(
        "--fixtures",
        type=Path,
        default=DEFAULT_FIXTURES,
        help=f"accepted samples per type, <dir>/<type>/*.json (default: {DEFAULT_FIXTURES}; skipped when absent)",
    )
    c.set_defaults(func=run)
