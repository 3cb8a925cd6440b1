"""Every typed event model matches its JSON Schema in schemas/: a schema change the models do not follow fails here."""

from __future__ import annotations

import typing
from dataclasses import fields
from typing import Any

import pytest

from fanout_kit import DataGenerated, events, models, schemas

JSON_TYPES = {"string": str, "object": dict}


def resolve(node: dict[str, Any], base: str) -> tuple[dict[str, Any], str]:
    """Follow a `$ref` (relative to schema file `base`, with an optional JSON pointer)."""
    while "$ref" in node:
        ref = node["$ref"]
        file, _, pointer = ref.partition("#")
        base = file or base
        node = schemas.load(base)
        for part in filter(None, pointer.split("/")):
            node = node[part]
    return node, base


def merged(schema_file: str) -> tuple[dict[str, Any], set[str]]:
    """An event type's properties and required names, its allOf parts merged (later parts narrow earlier ones)."""
    props: dict[str, tuple[dict[str, Any], str]] = {}
    required: set[str] = set()
    root = schemas.load(schema_file)
    for part in root.get("allOf", [root]):
        node, base = resolve(part, schema_file)
        for name, prop in node.get("properties", {}).items():
            props[name] = (prop, base)
        required |= set(node.get("required", []))
    return {n: resolve(p, b) for n, (p, b) in props.items()}, required


def python_type(prop: dict[str, Any]) -> type | None:
    if "const" in prop:
        return type(prop["const"])
    return JSON_TYPES.get(prop.get("type", ""))


def hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(models))


def check_fields(cls: type, props: dict[str, tuple[dict[str, Any], str]], required: set[str]) -> None:
    by_json = {models.json_name(f): f for f in fields(cls)}
    assert set(by_json) == set(props), f"{cls.__name__} fields differ from the schema's properties"
    assert models.required(cls) == required - {"specversion", "datacontenttype", "dataschema"}, cls.__name__
    types = hints(cls)
    for name, (prop, _) in props.items():
        expected = python_type(prop)
        if name == "data" or expected is None:
            continue
        hint = types[by_json[name].name]
        allowed = set(typing.get_args(hint)) or {hint}
        assert expected in allowed, f"{cls.__name__}.{by_json[name].name}: schema says {expected}, model {hint}"
        if name not in required:
            assert type(None) in allowed, f"{cls.__name__}.{by_json[name].name} is optional in the schema"


# The published event types: one schema file per type in schemas/ (the kit's package data).
PUBLISHED = sorted(p.name.removesuffix(".json") for p in schemas.SCHEMA_DIR.iterdir() if p.name.startswith("fanout."))


@pytest.mark.parametrize("event_type", PUBLISHED)
def test_every_event_type_has_a_model_matching_its_schema(event_type: str) -> None:
    model = models.MODELS[event_type]
    assert f"{event_type}.json" == model.SCHEMA
    props, required = merged(model.SCHEMA)
    assert props["type"][0]["const"] == model.TYPE
    check_fields(model, props, required)
    data, data_base = props["data"]
    data_props = {n: resolve(p, data_base) for n, p in data["properties"].items()}
    check_fields(model.DATA, data_props, set(data.get("required", [])))
    assert hints(model)["data"] is model.DATA


def test_models_cover_exactly_the_published_types() -> None:
    assert PUBLISHED and set(models.MODELS) == set(PUBLISHED)


def test_round_trip_keeps_the_event_as_published() -> None:
    raw = events.build(
        DataGenerated.TYPE,
        source="fanout.test",
        subject="alice",
        data={"informationOne": "a", "informationTwo": "ü"},
        correlation_id="c-1",
    )
    typed = models.DataGenerated.from_dict(raw)
    assert typed.data == models.Data(information_one="a", information_two="ü")
    assert typed.correlation_id == "c-1"
    assert typed.to_dict() == raw
    del raw["correlationid"]
    assert models.DataGenerated.from_dict(raw).to_dict() == raw


def test_a_schema_field_the_model_lacks_fails_the_check() -> None:
    props, required = merged("fanout.data.generated.v1.json")
    props["traceparent"] = ({"type": "string"}, "cloudevent.v1.json")
    with pytest.raises(AssertionError, match="fields differ"):
        check_fields(models.DataGenerated, props, required)


def test_the_models_constructors_are_typed_as_the_model_for_a_type_checker(tmp_path: Any) -> None:
    # `type[E]` inside CloudEvent (which has a field named `type`) once made from_dict return Never.
    from mypy import api

    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        "from fanout_kit.models import DataGenerated, Data\n"
        "reveal_type(DataGenerated.from_dict({}))\n"
        "reveal_type(DataGenerated.new(subject='a', data=Data('x', 'y')))\n"
        "reveal_type(DataGenerated.parse({}))\n"
    )
    out, err, _ = api.run(
        [str(snippet), "--ignore-missing-imports", "--cache-dir", str(tmp_path / "cache"), "--config-file", ""]
    )
    revealed = [line.split("Revealed type is ", 1)[1] for line in out.splitlines() if "Revealed type is" in line]
    assert revealed == ['"fanout_kit.models.DataGenerated"'] * 3, out + err
