"""The OpenAPI 3 document: paths from the Powertools resolver, bodies from schemas/.

The request and item schemas are the JSON Schema files themselves, inlined, so the
document can never disagree with what the API validates.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from fanout_kit import schemas

_ERROR = {
    "type": "object",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
}


def _inline(node: Any, base: str) -> Any:
    """Resolve our file-relative $refs into plain OpenAPI-compatible schema objects."""
    if isinstance(node, list):
        return [_inline(n, base) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target, _, pointer = node["$ref"].partition("#")
        name = target or base
        resolved: Any = schemas.load(name)
        for part in filter(None, pointer.split("/")):
            resolved = resolved[part]
        return _inline(copy.deepcopy(resolved), name)
    return {k: _inline(v, base) for k, v in node.items() if k not in ("$schema", "$id")}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document(app: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title="fanout",
            version="1.0.0",
            description="Submit data as typed events and read back your own items.",
        )
    )
    data = _inline(schemas.load("data.v1.json"), "data.v1.json")
    item = _inline(schemas.load("item.v1.json"), "item.v1.json")
    page = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
            # OpenAPI 3.1 is JSON Schema: null is a type, `nullable` is gone.
            "nextCursor": {"type": ["string", "null"]},
        },
        "required": ["items", "nextCursor"],
    }
    components = doc.setdefault("components", {})
    # Powertools adds its validation-error models for routes with typed parameters; ours answer {"message"}.
    components["schemas"] = {"Data": data, "Item": item, "Page": page, "Error": _ERROR}
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    error = {"$ref": "#/components/schemas/Error"}
    errors = {
        "400": _json(error, "Malformed JSON, wrong types, missing or extra fields, bad parameters"),
        "401": _json(error, "Missing, malformed, unverifiable or expired token"),
        "403": _json(error, "The token lacks the role this route needs"),
    }
    paths = doc.setdefault("paths", {})
    post = paths.setdefault("/data", {}).setdefault("post", {})
    post.update(
        {
            "summary": "Submit data; it is published as an event and persisted asynchronously",
            "security": [{"bearer": []}],
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    "description": "Same key and body within 24 h returns the same id and publishes nothing new.",
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Data"}}},
            },
            "responses": {
                "202": _json(
                    {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
                    "Accepted: the event id",
                ),
                **errors,
                "409": _json(error, "A request with this Idempotency-Key is in progress"),
                "413": _json(error, "Body over 64 KiB"),
                "422": _json(error, "Idempotency-Key reused with a different body"),
            },
        }
    )
    get_list = paths["/data"].setdefault("get", {})
    get_list.update(
        {
            "summary": "Your own items, newest first",
            "security": [{"bearer": []}],
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "nextCursor of the previous page",
                },
            ],
            "responses": {"200": _json({"$ref": "#/components/schemas/Page"}, "A page of items"), **errors},
        }
    )
    by_id = {k: v for k, v in paths.items() if k.startswith("/data/")}
    for key in by_id:
        paths.pop(key)
    paths["/data/{id}"] = {
        "get": {
            "summary": "One of your items",
            "security": [{"bearer": []}],
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Item"}, "The item"),
                **errors,
                "404": _json(error, "No such item, or not yours"),
            },
        }
    }
    paths.setdefault("/openapi.json", {}).setdefault("get", {})["summary"] = "This document"
    return doc
