"""The REST API handler, called with API Gateway REST v1 proxy events after the authorizer."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from openapi_spec_validator import validate as validate_openapi
from unit_support import BOTH, Aws, assert_valid, call_api, load_schema

from fanout_kit import ids
from handlers.core import store

OK = {"informationOne": "temperature", "informationTwo": "21.5 °C"}


def post(context: Any, body: Any = None, **kwargs: Any):
    return call_api(context, "POST", "/data", body=OK if body is None else body, **kwargs)


def seed(user: str, count: int, start_ms: int = 1_700_000_000_000) -> list[store.Record]:
    """Store `count` items for `user`, one millisecond apart; returns them newest first."""
    records = []
    for i in range(count):
        ms = start_ms + i
        created = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        records.append(store.Record(user, ids.new_id(ms), f"one {i}", f"two {i}", created))
    assert store.write(records) == set()
    return list(reversed(records))


# ---------------------------------------------------------------- POST /data


def test_post_publishes_exactly_one_valid_cloudevent(aws: Aws, context: Any) -> None:
    answer = post(context, request_id="req-1234")
    assert answer.status == 202
    assert set(answer.body) == {"id"} and ids.is_id(answer.body["id"])
    assert answer.headers["Content-Type"] == "application/json"
    (published,) = aws.published_with_attributes()
    event, attributes = published
    assert_valid("fanout.data.generated.v1.json", event)
    assert event["id"] == answer.body["id"]
    assert event["specversion"] == "1.0"
    assert event["type"] == "fanout.data.generated.v1"
    assert event["subject"] == "alice"
    assert event["datacontenttype"] == "application/json"
    assert event["dataschema"].endswith("fanout.data.generated.v1.json")
    assert event["data"] == OK
    assert event["correlationid"] == "req-1234"
    assert event["time"].endswith("Z")
    assert attributes["type"] == {"DataType": "String", "StringValue": "fanout.data.generated.v1"}
    assert attributes["subject"] == {"DataType": "String", "StringValue": "alice"}
    # Published, not stored: the persister does that asynchronously.
    assert aws.items() == []


def test_post_subject_is_the_authorizer_user_never_the_request(aws: Aws, context: Any) -> None:
    answer = post(context, user="bob", headers={"X-User": "alice", "sub": "alice"}, query={"sub": "alice"})
    assert answer.status == 202
    assert [e["subject"] for e in aws.published()] == ["bob"]


def test_each_post_gets_a_new_time_ordered_id(aws: Aws, context: Any) -> None:
    got = [post(context).body["id"] for _ in range(5)]
    assert len(set(got)) == 5
    assert got == sorted(got)
    assert len(aws.published()) == 5


@pytest.mark.parametrize(
    "body",
    [
        {"informationOne": "x" * 1024, "informationTwo": "y"},
        {"informationOne": "😀" * 1024, "informationTwo": "é" * 1024},
        {"informationOne": "日本語のテキスト", "informationTwo": "Ünïcödé \u0301 \u200b \ufeff"},
        {"informationOne": "a", "informationTwo": "b"},
        {"informationOne": "  spaces  ", "informationTwo": "\n\t"},
        {"informationOne": '{"json": "inside"}', "informationTwo": "<script>alert(1)</script>"},
    ],
    ids=["1024-ascii", "1024-astral", "unicode", "one-char", "whitespace", "markup"],
)
def test_post_accepts_unicode_and_the_1024_boundary(aws: Aws, context: Any, body: dict[str, str]) -> None:
    answer = post(context, body)
    assert answer.status == 202, answer.body
    (event,) = aws.published()
    assert event["data"] == body
    assert_valid("fanout.data.generated.v1.json", event)


def test_post_accepts_raw_utf8_in_a_base64_body(aws: Aws, context: Any) -> None:
    answer = post(context, json.dumps(OK, ensure_ascii=False).encode("utf-8"))
    assert answer.status == 202
    assert aws.published()[0]["data"] == OK


BAD_BODIES: dict[str, tuple[Any, int, tuple[str, ...]]] = {
    "invalid-json": ('{"informationOne": "a", ', 400, ("JSON",)),
    "trailing-garbage": ('{"informationOne": "a", "informationTwo": "b"} x', 400, ("JSON",)),
    "single-quotes": ("{'informationOne': 'a', 'informationTwo': 'b'}", 400, ("JSON",)),
    "empty": ("", 400, ("empty",)),
    "whitespace": ("   \n", 400, ("empty",)),
    "array": ("[]", 400, ("object",)),
    "string": ('"hello"', 400, ("object",)),
    "number": ("42", 400, ("object",)),
    "null": ("null", 400, ("object",)),
    "missing-informationTwo": ({"informationOne": "a"}, 400, ("informationTwo",)),
    "missing-both": ({}, 400, ("information",)),
    "extra-field": ({**OK, "subject": "bob"}, 400, ("subject",)),
    "wrong-type-number": ({"informationOne": 5, "informationTwo": "b"}, 400, ("informationOne", "string")),
    "wrong-type-null": ({"informationOne": "a", "informationTwo": None}, 400, ("informationTwo", "string")),
    "wrong-type-object": ({"informationOne": {"a": 1}, "informationTwo": "b"}, 400, ("informationOne",)),
    "wrong-type-list": ({"informationOne": ["a"], "informationTwo": "b"}, 400, ("informationOne",)),
    "wrong-type-bool": ({"informationOne": "a", "informationTwo": True}, 400, ("informationTwo",)),
    "empty-string": ({"informationOne": "", "informationTwo": "b"}, 400, ("informationOne",)),
    "1025-chars": ({"informationOne": "a", "informationTwo": "x" * 1025}, 400, ("informationTwo",)),
    "1025-astral-chars": ({"informationOne": "😀" * 1025, "informationTwo": "b"}, 400, ("informationOne",)),
    "nan": ('{"informationOne": NaN, "informationTwo": "b"}', 400, ("NaN",)),
    "infinity": ('{"informationOne": "a", "informationTwo": -Infinity}', 400, ("Infinity",)),
    "huge-number": ('{"informationOne": ' + "9" * 5000 + ', "informationTwo": "b"}', 400, ("JSON",)),
    "deeply-nested-arrays": ("[" * 50_000 + "]" * 10, 400, ("nested",)),
    "deeply-nested-objects": ('{"a":' * 5_000 + "1" + "}" * 5_000, 400, ("nested",)),
    "nested-in-field": ({"informationOne": [[[[[["a"]]]]]], "informationTwo": "b"}, 400, ("informationOne",)),
    "lone-surrogate-escape": ('{"informationOne": "\\ud800", "informationTwo": "b"}', 400, ("UTF-8",)),
    "over-64-KiB": ({"informationOne": "a", "informationTwo": "b", "pad": "x" * 65_536}, 413, ("64 KiB",)),
    "duplicate-key": (
        '{"informationOne": "a", "informationOne": "b", "informationTwo": "c"}',
        400,
        ("informationOne",),
    ),
    "duplicate-nested-key": ('{"informationOne": {"k": 1, "k": 2}, "informationTwo": "c"}', 400, ('"k"',)),
    "over-64-KiB-of-whitespace": (" " * 65_537, 413, ("64 KiB",)),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_malformed_body_is_refused_naming_the_problem_and_publishes_nothing(aws: Aws, context: Any, case: str) -> None:
    body, status, words = BAD_BODIES[case]
    answer = post(context, body)
    assert answer.status == status, answer.body
    assert set(answer.body) == {"message"}
    for word in words:
        assert word in answer.message
    assert aws.published() == []
    assert aws.items() == []


HUMAN_MESSAGES: dict[str, tuple[str, str]] = {
    "missing": ('{"informationOne": "a"}', 'missing field "informationTwo"'),
    "missing-both": ("{}", 'missing fields "informationOne", "informationTwo"'),
    "unknown": ('{"informationOne": "a", "informationTwo": "b", "x": 1}', 'unknown field "x"'),
    "duplicate": (
        '{"informationOne": "a", "informationOne": "b", "informationTwo": "c"}',
        'duplicate field "informationOne": each field may appear once',
    ),
    "type": ('{"informationOne": 1, "informationTwo": "b"}', 'field "informationOne" must be a string'),
    "length": (
        '{"informationOne": "", "informationTwo": "b"}',
        'field "informationOne" must be 1 to 1024 characters long',
    ),
    "not-an-object": ("[1]", "body must be a JSON object"),
    "syntax": (
        '{"informationOne": "a",}',
        "body is not valid JSON: expected a field name in double quotes at line 1, column 24",
    ),
    "constant": ('{"informationOne": NaN}', "body is not valid JSON: NaN is not a JSON value"),
    "digits": ('{"informationOne": ' + "9" * 5000 + "}", "body is not valid JSON: a number has too many digits"),
}


@pytest.mark.parametrize("case", list(HUMAN_MESSAGES))
def test_400_messages_are_worded_as_a_person_would(aws: Aws, context: Any, case: str) -> None:
    body, message = HUMAN_MESSAGES[case]
    answer = post(context, body)
    assert (answer.status, answer.body) == (400, {"message": message})
    assert aws.published() == []


def test_a_duplicate_key_is_refused_not_resolved_to_the_last_one(aws: Aws, context: Any) -> None:
    # Python's json keeps the last duplicate, other parsers the first: refusing is the only safe answer.
    answer = post(context, '{"informationOne": "a", "informationTwo": "b", "informationTwo": "b"}')
    assert answer.status == 400 and "informationTwo" in answer.message
    assert aws.published() == [] and aws.items() == []


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe\xfd", b'{"informationOne": "\xc3\x28", "informationTwo": "b"}', b'{"informationOne": "\xed\xa0\x80"}'],
    ids=["garbage", "bad-continuation", "encoded-surrogate"],
)
def test_invalid_utf8_body_is_refused(aws: Aws, context: Any, raw: bytes) -> None:
    answer = post(context, raw)
    assert answer.status == 400
    assert "UTF-8" in answer.message
    assert aws.published() == []


def test_invalid_base64_body_is_refused(aws: Aws, context: Any) -> None:
    from unit_support import api_event

    from handlers import api

    event = api_event("POST", "/data", body="not base64!!")
    event["isBase64Encoded"] = True
    response = api.handler(event, context)
    assert response["statusCode"] == 400
    assert aws.published() == []


def test_body_of_exactly_64_KiB_is_not_413(aws: Aws, context: Any) -> None:
    body = json.dumps({"informationOne": "a", "informationTwo": "b"})
    body += " " * (64 * 1024 - len(body))
    assert len(body.encode()) == 64 * 1024
    assert post(context, body).status == 202


def test_server_stays_healthy_after_bad_requests(aws: Aws, context: Any) -> None:
    for body, _, _ in BAD_BODIES.values():
        post(context, body)
    assert post(context).status == 202
    assert len(aws.published()) == 1


@pytest.mark.parametrize(
    ("method", "path", "roles", "query"),
    [
        ("POST", "/data", ("data.read",), None),
        ("POST", "/data", (), None),
        ("GET", "/data", ("data.write",), None),
        ("GET", "/data/01JB8ZJ9R7Y1V6Q2K3M4N5P6Q7", ("data.write",), None),
        ("GET", "/data", ("data.readx", "xdata.read"), None),
    ],
)
def test_missing_role_is_403(
    aws: Aws, context: Any, method: str, path: str, roles: tuple[str, ...], query: dict[str, str] | None
) -> None:
    answer = call_api(context, method, path, body=OK if method == "POST" else None, roles=roles, query=query)
    assert answer.status == 403
    assert "data." in answer.message
    assert aws.published() == []


def test_no_authorizer_context_is_401(aws: Aws, context: Any) -> None:
    answer = post(context, user=None)
    assert answer.status == 401
    assert answer.body == {"message": "Unauthorized"}
    assert aws.published() == []


# ---------------------------------------------------------------- Idempotency-Key


def test_same_key_and_body_returns_the_same_id_and_publishes_once(aws: Aws, context: Any) -> None:
    first = post(context, headers={"Idempotency-Key": "order-42"})
    second = post(context, headers={"Idempotency-Key": "order-42"})
    third = post(context, headers={"idempotency-key": "order-42"})
    assert first.status == second.status == third.status == 202
    assert first.body == second.body == third.body
    (event,) = aws.published()
    assert event["id"] == first.body["id"]


def test_same_key_with_a_different_body_is_422_and_publishes_nothing_new(aws: Aws, context: Any) -> None:
    first = post(context, headers={"Idempotency-Key": "k-1"})
    other = post(context, {"informationOne": "other", "informationTwo": "body"}, headers={"Idempotency-Key": "k-1"})
    assert first.status == 202
    assert other.status in (409, 422)
    assert "Idempotency-Key" in other.message and "different body" in other.message
    assert [e["id"] for e in aws.published()] == [first.body["id"]]


def test_keys_of_two_users_never_collide(aws: Aws, context: Any) -> None:
    alice = post(context, headers={"Idempotency-Key": "shared"}, user="alice")
    bob = post(context, headers={"Idempotency-Key": "shared"}, user="bob")
    bob_other_body = post(context, {"informationOne": "b", "informationTwo": "c"}, headers={"Idempotency-Key": "x"})
    assert alice.status == bob.status == bob_other_body.status == 202
    assert alice.body["id"] != bob.body["id"]
    assert sorted(e["subject"] for e in aws.published()) == ["alice", "alice", "bob"]


def test_different_keys_publish_separately(aws: Aws, context: Any) -> None:
    a = post(context, headers={"Idempotency-Key": "a"})
    b = post(context, headers={"Idempotency-Key": "b"})
    assert a.body["id"] != b.body["id"]
    assert len(aws.published()) == 2


@pytest.mark.parametrize(
    "key",
    ["k" * 256, "bad\x01key", "tab\tkey", "new\nline", " leading", "trailing ", "\x7f"],
    ids=["256-chars", "control", "tab", "newline", "leading-space", "trailing-space", "del"],
)
def test_invalid_idempotency_key_is_400(aws: Aws, context: Any, key: str) -> None:
    answer = post(context, headers={"Idempotency-Key": key})
    assert answer.status == 400
    assert "Idempotency-Key" in answer.message
    assert aws.published() == []


@pytest.mark.parametrize("key", ["k" * 255, "a", "!~ inner spaces ok ~!", "550e8400-e29b-41d4-a716-446655440000"])
def test_valid_idempotency_keys_are_accepted(aws: Aws, context: Any, key: str) -> None:
    assert post(context, headers={"Idempotency-Key": key}).status == 202
    assert post(context, headers={"Idempotency-Key": key}).status == 202
    assert len(aws.published()) == 1


def test_a_rejected_body_does_not_use_up_the_key(aws: Aws, context: Any) -> None:
    bad = post(context, {"informationOne": ""}, headers={"Idempotency-Key": "k"})
    good = post(context, headers={"Idempotency-Key": "k"})
    assert bad.status == 400 and good.status == 202
    assert len(aws.published()) == 1


# ---------------------------------------------------------------- GET /data


def test_list_pages_newest_first_until_next_cursor_is_null(aws: Aws, context: Any) -> None:
    expected = seed("alice", 7)
    seed("bob", 3, start_ms=1_700_000_100_000)  # newer, but someone else's
    pages, query = [], {"limit": "3"}
    while True:
        answer = call_api(context, "GET", "/data", query=query)
        assert answer.status == 200
        assert set(answer.body) == {"items", "nextCursor"}
        pages.append(answer.body["items"])
        if answer.body["nextCursor"] is None:
            break
        assert isinstance(answer.body["nextCursor"], str)
        query = {"limit": "3", "cursor": answer.body["nextCursor"]}
        assert len(pages) < 10
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == [r.to_api() for r in expected]
    for item in (i for p in pages for i in p):
        assert_valid("item.v1.json", item)
        assert item["createdAt"].endswith("Z")


def test_list_last_page_exactly_full_has_no_cursor(aws: Aws, context: Any) -> None:
    seed("alice", 4)
    answer = call_api(context, "GET", "/data", query={"limit": "4"})
    assert len(answer.body["items"]) == 4
    assert answer.body["nextCursor"] is None


def test_list_default_limit_is_25_and_max_100(aws: Aws, context: Any) -> None:
    seed("alice", 101)
    default = call_api(context, "GET", "/data")
    assert len(default.body["items"]) == 25 and default.body["nextCursor"]
    most = call_api(context, "GET", "/data", query={"limit": "100"})
    assert len(most.body["items"]) == 100 and most.body["nextCursor"]
    rest = call_api(context, "GET", "/data", query={"limit": "100", "cursor": most.body["nextCursor"]})
    assert len(rest.body["items"]) == 1 and rest.body["nextCursor"] is None


def test_list_is_empty_for_a_new_user(aws: Aws, context: Any) -> None:
    seed("alice", 2)
    answer = call_api(context, "GET", "/data", user="nobody")
    assert answer.status == 200
    assert answer.body == {"items": [], "nextCursor": None}


def test_list_shows_only_the_callers_items(aws: Aws, context: Any) -> None:
    alice = seed("alice", 3)
    bob = seed("bob", 2)
    # A user id that is a prefix of another, or looks like a key, must not widen the query.
    seed("alice2", 2)
    seed("USER#alice", 1)
    assert call_api(context, "GET", "/data", user="alice").body["items"] == [r.to_api() for r in alice]
    assert call_api(context, "GET", "/data", user="bob").body["items"] == [r.to_api() for r in bob]


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "", "1.5", " 5", "5 ", "1e2", "0x10", "00001", "٣"])
def test_bad_limit_is_400_naming_limit(aws: Aws, context: Any, limit: str) -> None:
    answer = call_api(context, "GET", "/data", query={"limit": limit})
    assert answer.status == 400
    assert "limit" in answer.message


@pytest.mark.parametrize("limit", ["1", "100", "007"])
def test_limit_boundaries_accepted(aws: Aws, context: Any, limit: str) -> None:
    assert call_api(context, "GET", "/data", query={"limit": limit}).status == 200


def _cursor_for(context: Any, user: str) -> str:
    cursor = call_api(context, "GET", "/data", user=user, query={"limit": "1"}).body["nextCursor"]
    assert cursor
    return cursor


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def test_forged_altered_and_foreign_cursors_are_400(aws: Aws, context: Any) -> None:
    seed("alice", 3)
    seed("bob", 3, start_ms=1_700_000_100_000)
    mine = _cursor_for(context, "alice")
    bobs = _cursor_for(context, "bob")
    payload, tag = mine.split(".")
    forged_payload = base64.urlsafe_b64encode(json.dumps({"v": 1, "k": ids.new_id()}).encode()).decode().rstrip("=")
    bad = [
        "abc",
        "",
        ".",
        "..",
        "x" * 600,
        bobs,
        _flip(mine, 0),
        # Not the last character: its low bits are base64 padding, so some flips decode to the same tag.
        _flip(mine, len(mine) - 3),
        _flip(mine, len(payload) + 3),
        f"{forged_payload}.{tag}",
        f"{payload}.",
        f"{payload}",
        f"{payload}.{tag}.{tag}",
        mine + "A",
        "%00",
        "😀.😀",
    ]
    for cursor in bad:
        answer = call_api(context, "GET", "/data", user="alice", query={"cursor": cursor})
        assert answer.status == 400, cursor
        assert "cursor" in answer.message
    # The genuine one still works.
    assert call_api(context, "GET", "/data", user="alice", query={"cursor": mine}).status == 200


def test_cursor_survives_a_different_limit(aws: Aws, context: Any) -> None:
    expected = seed("alice", 5)
    first = call_api(context, "GET", "/data", query={"limit": "2"})
    rest = call_api(context, "GET", "/data", query={"limit": "10", "cursor": first.body["nextCursor"]})
    assert first.body["items"] + rest.body["items"] == [r.to_api() for r in expected]


@pytest.mark.parametrize("query", [{"page": "2"}, {"limit": "5", "user": "bob"}, {"Limit": "5"}, {"sub": "bob"}])
def test_unknown_query_parameter_is_400_naming_it(aws: Aws, context: Any, query: dict[str, str]) -> None:
    answer = call_api(context, "GET", "/data", query=query)
    assert answer.status == 400
    assert answer.message == f'unknown query parameter "{next(k for k in query if k != "limit")}"'


# ---------------------------------------------------------------- GET /data/{id}


def test_get_own_item(aws: Aws, context: Any) -> None:
    (record,) = seed("alice", 1)
    answer = call_api(context, "GET", f"/data/{record.id}")
    assert answer.status == 200
    assert answer.body == record.to_api()
    assert_valid("item.v1.json", answer.body)


def test_get_another_users_item_is_404_like_a_missing_one(aws: Aws, context: Any) -> None:
    (record,) = seed("bob", 1)
    theirs = call_api(context, "GET", f"/data/{record.id}", user="alice")
    missing = call_api(context, "GET", f"/data/{ids.new_id()}", user="alice")
    assert theirs.status == missing.status == 404
    assert set(theirs.body) == {"message"}
    assert "bob" not in theirs.message


@pytest.mark.parametrize(
    "item_id",
    ["garbage", "01jb8zj9r7y1v6q2k3m4n5p6q7", "81JB8ZJ9R7Y1V6Q2K3M4N5P6Q7", "0" * 27, "DATA%23x", "..", "USER%23bob"],
)
def test_get_garbage_id_is_404(aws: Aws, context: Any, item_id: str) -> None:
    seed("alice", 1)
    answer = call_api(context, "GET", f"/data/{item_id}")
    assert answer.status == 404
    assert "message" in answer.body


# ---------------------------------------------------------------- routing


@pytest.mark.parametrize("path", ["/nope", "/data/x/y", "/datas", "/DATA", "/data/01JB8ZJ9R7Y1V6Q2K3M4N5P6Q7/extra"])
def test_unknown_path_is_404(aws: Aws, context: Any, path: str) -> None:
    answer = call_api(context, "GET", path)
    assert answer.status == 404
    assert path in answer.message


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/data", "GET, POST"),
        ("PUT", "/data", "GET, POST"),
        ("PATCH", "/data", "GET, POST"),
        ("POST", "/data/01JB8ZJ9R7Y1V6Q2K3M4N5P6Q7", "GET"),
        ("DELETE", "/data/01JB8ZJ9R7Y1V6Q2K3M4N5P6Q7", "GET"),
        ("POST", "/openapi.json", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(aws: Aws, context: Any, method: str, path: str, allow: str) -> None:
    answer = call_api(context, method, path, body=OK)
    assert answer.status == 405
    assert answer.headers["Allow"] == allow
    assert method in answer.message
    assert aws.published() == []


# ---------------------------------------------------------------- /openapi.json


def _strip_meta(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def test_openapi_document_is_valid_and_matches_the_schemas(aws: Aws, context: Any) -> None:
    answer = call_api(context, "GET", "/openapi.json", user=None)
    assert answer.status == 200
    doc = answer.body
    validate_openapi(doc)
    assert doc["openapi"].startswith("3.")
    assert {"/data", "/data/{id}"} <= set(doc["paths"])
    assert {"get", "post"} <= set(doc["paths"]["/data"])
    assert "get" in doc["paths"]["/data/{id}"]
    schemas = doc["components"]["schemas"]
    # The request schema is the JSON Schema file itself: same rules, no second copy to drift.
    assert schemas["Data"] == _strip_meta(load_schema("data.v1.json"))
    item = schemas["Item"]
    assert item["required"] == load_schema("item.v1.json")["required"]
    assert item["additionalProperties"] is False
    data_rules = load_schema("data.v1.json")["properties"]
    for field in ("informationOne", "informationTwo"):
        assert item["properties"][field] == data_rules[field]
    post_op = doc["paths"]["/data"]["post"]
    assert {"202", "400", "413"} <= set(post_op["responses"])
    assert post_op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Data"}
    assert any(p["name"] == "Idempotency-Key" for p in post_op["parameters"])
    limit = next(p for p in doc["paths"]["/data"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)


def test_openapi_limits_agree_with_what_the_api_enforces(aws: Aws, context: Any) -> None:
    schema = call_api(context, "GET", "/openapi.json").body["components"]["schemas"]["Data"]
    limit = schema["properties"]["informationOne"]["maxLength"]
    assert post(context, {"informationOne": "x" * limit, "informationTwo": "y"}).status == 202
    assert post(context, {"informationOne": "x" * (limit + 1), "informationTwo": "y"}).status == 400


def test_roles_in_context_are_split_exactly(aws: Aws, context: Any) -> None:
    assert post(context, roles=BOTH).status == 202
    assert post(context, roles=("data.read", "data.write.extra")).status == 403


def test_post_time_is_close_to_now(aws: Aws, context: Any) -> None:
    before = time.time()
    post(context)
    (event,) = aws.published()
    stamp = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    assert before - 1 <= stamp <= time.time() + 1


def test_a_key_still_in_progress_is_409(aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers.core import idempotency

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise idempotency.KeyInProgress("a request with this Idempotency-Key is still in progress")

    monkeypatch.setattr(idempotency, "once", busy)
    answer = post(context, headers={"Idempotency-Key": "busy"})
    assert answer.status == 409
    assert "Idempotency-Key" in answer.message
    assert aws.published() == []


def test_printable_unicode_idempotency_key_is_accepted(aws: Aws, context: Any) -> None:
    # The contract asks for printable characters, not ASCII only.
    first = post(context, headers={"Idempotency-Key": "commande-é-42"})
    again = post(context, headers={"Idempotency-Key": "commande-é-42"})
    assert first.status == again.status == 202 and first.body["id"] == again.body["id"]
    assert len(aws.published()) == 1


def test_token_expired_while_its_policy_was_cached_is_401(aws: Aws, context: Any) -> None:
    # API Gateway reuses a cached policy past the token's exp; the api handler refuses it itself.
    import time as _time

    from unit_support import api_event

    from handlers import api

    for exp, status in ((int(_time.time()) - 1, 401), (int(_time.time()) + 60, 202)):
        event = api_event("POST", "/data", body=OK)
        event["requestContext"]["authorizer"]["exp"] = exp
        answer = api.handler(event, context)
        assert answer["statusCode"] == status, answer["body"]
