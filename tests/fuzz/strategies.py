"""Hypothesis strategies read from the API's own OpenAPI document: valid values, and near misses."""

from __future__ import annotations

import json
from typing import Any

import jwt
from hypothesis import strategies as st

from tests.support.stack import SECRET

# Printable text with the awkward parts of Unicode: astral planes, combining marks, NUL, RTL.
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),  # lone surrogates cannot travel as UTF-8
    min_size=0,
    max_size=40,
)


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        _, *path = schema["$ref"].split("/")
        node: Any = doc
        for part in path:
            node = node[part]
        schema = node
    return schema


def valid(doc: dict[str, Any], schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    schema = resolve(doc, schema)
    kind = schema.get("type")
    if kind == "object":
        props = {k: valid(doc, v) for k, v in schema.get("properties", {}).items()}
        required = set(schema.get("required", props))
        return st.fixed_dictionaries(
            {k: v for k, v in props.items() if k in required},
            optional={k: v for k, v in props.items() if k not in required},
        )
    if kind == "string":
        lo, hi = schema.get("minLength", 0), schema.get("maxLength", 64)
        edge = [s for s in ("x" * lo, "😀" * hi, "é" * hi) if lo <= len(s) <= hi and s]
        return st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=lo, max_size=min(hi, 80)) | (
            st.sampled_from(edge) if edge else st.nothing()
        )
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    return st.none()


def invalid(doc: dict[str, Any], schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Documents the schema rejects: wrong types, missing or extra fields, out-of-range lengths."""
    schema = resolve(doc, schema)
    kind = schema.get("type")
    anything = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT | st.lists(st.integers())
    if kind == "object":
        props = schema.get("properties", {})
        base = valid(doc, schema)
        missing = base.flatmap(
            lambda d: st.sampled_from(sorted(d)).map(lambda k: {x: v for x, v in d.items() if x != k})
        )
        extra = st.tuples(base, TEXT.filter(lambda k: k not in props), anything).map(lambda t: {**t[0], t[1]: t[2]})
        wrong = st.tuples(base, st.sampled_from(sorted(props)), anything | st.dictionaries(TEXT, st.integers())).map(
            lambda t: {**t[0], t[1]: t[2]}
        )
        bad_field = st.tuples(base, st.sampled_from(sorted(props))).flatmap(
            lambda t: invalid(doc, props[t[1]]).map(lambda v: {**t[0], t[1]: v})
        )
        return missing | extra | wrong | bad_field | anything | st.lists(base, max_size=2)
    if kind == "string":
        lo, hi = schema.get("minLength", 0), schema.get("maxLength", 10**6)
        too_long = st.integers(hi + 1, hi + 3).map(lambda n: "y" * n)
        short = st.just("") if lo > 0 else st.nothing()
        return too_long | short | st.integers() | st.none() | st.booleans() | st.lists(TEXT, max_size=2)
    return st.none()


def raw_bodies() -> st.SearchStrategy[bytes]:
    """Bytes that are not a JSON object at all, or barely."""
    return st.sampled_from(
        [
            b"",
            b"{",
            b"null",
            b"[]",
            b'{"informationOne": NaN, "informationTwo": "x"}',
            b'{"informationOne": "\\ud800", "informationTwo": "x"}',
            b"\xff\xfe\x00",
            b"[" * 5000 + b"]" * 5000,
            b'{"informationOne": "a", "informationOne": "b", "informationTwo": "c"}',
            b'{"informationOne": "a", "informationTwo": "' + b"z" * (70 * 1024) + b'"}',
        ]
    ) | st.binary(max_size=200)


TOKEN_KINDS = (
    "valid",
    "read",
    "write",
    "none-role",
    "expired",
    "wrong-secret",
    "alg-none",
    "garbage",
    "missing",
    "basic",
)


def token_header(kind: str, sub: str) -> dict[str, str]:
    import time

    now = int(time.time())
    claims = {"sub": sub, "Role": ["data.read", "data.write"], "iat": now, "exp": now + 600}
    if kind == "missing":
        return {}
    if kind == "basic":
        return {"Authorization": "Basic dXNlcjpwYXNz"}
    if kind == "garbage":
        return {"Authorization": "Bearer not.a.jwt"}
    if kind == "read":
        claims["Role"] = ["data.read"]
    elif kind == "write":
        claims["Role"] = ["data.write"]
    elif kind == "none-role":
        claims["Role"] = []
    elif kind == "expired":
        claims["exp"] = now - 3600
    if kind == "alg-none":
        token = jwt.encode(claims, None, algorithm="none")
    else:
        token = jwt.encode(claims, "x" * 48 if kind == "wrong-secret" else SECRET, algorithm="HS256")
    from tests.fuzz.live import remember

    return {"Authorization": f"Bearer {remember(token)}"}


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")
