"""Units of handlers/core: ids, cursors, events, schemas, store, settings, auth helpers."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unit_support import Aws, assert_valid

from fanout_kit import DataGenerated, events, ids, schemas
from handlers.core import auth, clients, cursor, idempotency, store
from handlers.core import settings as config

KEY = b"k" * 32

# ---------------------------------------------------------------- ids


def test_ids_are_ulids_sorted_by_time() -> None:
    earlier = [ids.new_id(now_ms=ms) for ms in (1, 2, 1_000, 1_700_000_000_000, 2**48 - 1)]
    assert earlier == sorted(earlier)
    assert all(ids.is_id(i) and len(i) == 26 for i in earlier)
    assert ids.new_id(now_ms=0)[:10] == "0" * 10


def test_new_ids_are_unique_and_valid_event_ids() -> None:
    many = [ids.new_id() for _ in range(2000)]
    assert len(set(many)) == 2000
    pattern = re.compile(
        json.loads(schemas.SCHEMA_DIR.joinpath("cloudevent.v1.json").read_text())["properties"]["id"]["pattern"]
    )
    assert all(pattern.match(i) for i in many)


@given(st.integers(min_value=0, max_value=2**48 - 2), st.integers(min_value=1, max_value=10**6))
def test_later_millisecond_sorts_after(ms: int, delta: int) -> None:
    later = min(ms + delta, 2**48 - 1)
    assert ids.new_id(now_ms=ms) < ids.new_id(now_ms=later)


@pytest.mark.parametrize(
    "value", ["", "x", "0" * 25, "0" * 27, "8" + "0" * 25, "0" * 25 + "I", "0" * 25 + "u", None, 5]
)
def test_is_id_refuses_non_ulids(value: Any) -> None:
    assert not ids.is_id(value)


# ---------------------------------------------------------------- cursors


def test_cursor_round_trip_and_binding() -> None:
    last = ids.new_id()
    token = cursor.encode(KEY, "alice", last)
    assert re.fullmatch(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+", token)  # URL-safe, no padding
    assert cursor.decode(KEY, "alice", token) == last
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(KEY, "bob", token)
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(b"other-key" * 4, "alice", token)


@given(st.text(max_size=600))
def test_any_string_is_an_invalid_cursor_never_a_crash(text: str) -> None:
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(KEY, "alice", text)


@given(st.data())
def test_any_tampering_is_detected(data: st.DataObject) -> None:
    token = cursor.encode(KEY, "alice", ids.new_id())
    index = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != token[index]))
    tampered = token[:index] + replacement + token[index + 1 :]
    try:
        decoded = cursor.decode(KEY, "alice", tampered)
    except cursor.InvalidCursor:
        return
    # Only a non-canonical base64 spelling of the very same bytes may pass, and it decodes identically.
    assert decoded == cursor.decode(KEY, "alice", token)


def test_cursor_with_a_valid_mac_but_a_non_id_key_is_refused() -> None:
    payload = cursor._b64(json.dumps({"v": 1, "k": "USER#bob"}).encode())
    token = f"{payload}.{cursor._b64(cursor._mac(KEY, 'alice', payload))}"
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(KEY, "alice", token)


def test_cursor_key_is_derived_from_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    first = config.cursor_key()
    assert first != b"unit-test-cursor-secret" and len(first) == 32
    monkeypatch.setenv("CURSOR_SECRET", "another")
    config.cursor_key.cache_clear()
    assert config.cursor_key() != first


# ---------------------------------------------------------------- schemas and events


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"informationOne": "a"}, ("informationTwo",)),
        ({"informationOne": 1, "informationTwo": "b"}, ('field "informationOne"', "must be a string")),
        ({"informationOne": "a", "informationTwo": "b", "x": 1}, ("x",)),
        ([], ("body", "object")),
    ],
)
def test_schema_errors_name_the_field(document: Any, words: tuple[str, ...]) -> None:
    with pytest.raises(schemas.SchemaError) as info:
        schemas.validate("data.v1.json", document)
    for word in words:
        assert word in str(info.value)


@given(
    st.fixed_dictionaries(
        {"informationOne": st.text(min_size=1, max_size=1024), "informationTwo": st.text(min_size=1, max_size=1024)}
    )
)
@settings(max_examples=50)
def test_fastjsonschema_and_jsonschema_agree_on_valid_payloads(data: dict[str, str]) -> None:
    schemas.validate("data.v1.json", data)
    assert_valid("data.v1.json", data)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=15), c),
        max_leaves=8,
    )
)
@settings(max_examples=100)
def test_fastjsonschema_never_accepts_what_jsonschema_refuses(document: Any) -> None:
    from unit_support import schema_validator

    reference_ok = schema_validator("data.v1.json").is_valid(document)
    try:
        schemas.validate("data.v1.json", document)
        ours_ok = True
    except schemas.SchemaError:
        ours_ok = False
    assert ours_ok == reference_ok


def test_build_validates_and_carries_the_correlation_id() -> None:
    event = events.build(
        DataGenerated.TYPE,
        source="s",
        subject="alice",
        data={"informationOne": "a", "informationTwo": "b"},
        correlation_id="c" * 300,
    )
    assert len(event["correlationid"]) == 256
    assert_valid("fanout.data.generated.v1.json", event)
    assert events.parse(json.dumps(event), DataGenerated).to_dict() == event
    assert events.sns_attributes(event) == {
        "type": {"DataType": "String", "StringValue": DataGenerated.TYPE},
        "subject": {"DataType": "String", "StringValue": "alice"},
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event_type": "fanout.unknown.v1"}, "unknown event type"),
        ({"data": {"informationOne": "", "informationTwo": "b"}}, "informationOne"),
        ({"subject": ""}, "subject"),
        ({"event_id": "nope"}, "id"),
        ({"time": "2024-01-01 00:00:00"}, "time"),
    ],
)
def test_build_refuses_invalid_events(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "event_type": DataGenerated.TYPE,
        "source": "s",
        "subject": "alice",
        "data": {"informationOne": "a", "informationTwo": "b"},
        **kwargs,
    }
    event_type = args.pop("event_type")
    with pytest.raises(events.InvalidEvent, match=message):
        events.build(event_type, **args)


def test_utc_now_iso_format() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", events.utc_now_iso())


# ---------------------------------------------------------------- store


def test_record_dynamodb_round_trip() -> None:
    record = store.Record("alice", ids.new_id(), "😀 one", "two", "2024-01-01T00:00:00.000Z", "corr")
    assert store.Record.from_dynamodb(record.to_dynamodb()) == record
    bare = store.Record("bob", ids.new_id(), "a", "b", "2024-01-01T00:00:00.000Z")
    assert "correlationId" not in bare.to_dynamodb()
    assert store.Record.from_dynamodb(bare.to_dynamodb()) == bare


def test_user_with_key_like_characters_stays_in_its_partition(aws: Aws) -> None:
    weird = "USER#alice#DATA#x"
    record = store.Record(weird, ids.new_id(), "a", "b", "2024-01-01T00:00:00.000Z")
    assert store.write([record]) == set()
    assert store.get(weird, record.id) == record
    assert store.get("alice", record.id) is None
    assert store.page("alice", 10) == ([], None)


def test_page_after_an_id_continues_strictly_older(aws: Aws) -> None:
    records = [
        store.Record("alice", ids.new_id(1_000 + i), str(i), str(i), "2024-01-01T00:00:00.000Z") for i in range(5)
    ]
    store.write(records)
    page, last = store.page("alice", 2)
    assert [r.id for r in page] == [records[4].id, records[3].id] and last == records[3].id
    page, last = store.page("alice", 2, last)
    assert [r.id for r in page] == [records[2].id, records[1].id]
    page, last = store.page("alice", 2, last)
    assert [r.id for r in page] == [records[0].id] and last is None


def test_write_empty_is_a_no_op(aws: Aws) -> None:
    assert store.write([]) == set()


# ---------------------------------------------------------------- settings, clients, auth helpers


@pytest.mark.parametrize(
    "name", ["TOPIC_ARN", "TABLE_NAME", "IDEMPOTENCY_TABLE_NAME", "EVENT_BUS_NAME", "CURSOR_SECRET"]
)
def test_missing_setting_names_itself(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "  ")
    getter = {
        "TOPIC_ARN": config.topic_arn,
        "TABLE_NAME": config.table_name,
        "IDEMPOTENCY_TABLE_NAME": config.idempotency_table_name,
        "EVENT_BUS_NAME": config.event_bus_name,
        "CURSOR_SECRET": config.cursor_key,
    }[name]
    getter.cache_clear()
    with pytest.raises(config.ConfigurationError, match=name):
        getter()


def test_auth_settings_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ALGORITHMS", " RS256 , ES256,, ")
    monkeypatch.setenv("ROLES_CLAIM", "groups")
    config.auth_settings.cache_clear()
    parsed = config.auth_settings()
    assert parsed.algorithms == ("RS256", "ES256")
    assert parsed.roles_claim == "groups"
    assert parsed.issuer is None and parsed.audience is None


def test_generator_count_must_be_an_integer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENERATOR_COUNT", "many")
    with pytest.raises(config.ConfigurationError, match="GENERATOR_COUNT"):
        config.generator_count()


def test_clients_are_built_once_until_reset() -> None:
    first = clients.client("sqs")
    assert clients.client("sqs") is first
    clients.reset()
    assert clients.client("sqs") is not first


def test_hs256_without_a_secret_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWT_SECRET")
    config.auth_settings.cache_clear()
    import jwt

    token = jwt.encode({"sub": "a", "exp": 9_999_999_999}, "x" * 32, algorithm="HS256")
    with pytest.raises(config.ConfigurationError, match="JWT_SECRET"):
        auth.verify(token, config.auth_settings())


@pytest.mark.parametrize("arn", ["", "nonsense", "arn:aws:lambda:us-east-1:1:function:x"])
def test_policy_refuses_a_malformed_method_arn(arn: str) -> None:
    with pytest.raises(ValueError):
        auth.allowed_resources(("data.read",), arn)


@pytest.mark.parametrize(
    ("key", "ok"),
    [("a", True), ("k" * 255, True), ("k" * 256, False), ("", False), (" a", False), ("a ", False), ("a\x00", False)],
)
def test_idempotency_key_rule(key: str, ok: bool) -> None:
    assert idempotency.valid_key(key) is ok


def test_bearer_token_parsing() -> None:
    assert auth.bearer_token("Bearer abc") == "abc"
    assert auth.bearer_token("  bearer   abc  ") == "abc"
    for bad in (None, "", "Bearer", "Basic abc", "abc"):
        with pytest.raises(auth.Unauthorized):
            auth.bearer_token(bad)


def test_base64_helpers_round_trip() -> None:
    raw = bytes(range(256))
    assert cursor._unb64(cursor._b64(raw)) == raw
    assert "=" not in cursor._b64(raw)
    assert base64.urlsafe_b64decode(cursor._b64(b"ab") + "==") == b"ab"


def test_unit_tests_cannot_reach_the_network() -> None:
    import socket

    with pytest.raises(ConnectionRefusedError, match="offline"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    with pytest.raises(ConnectionRefusedError, match="offline"):
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).connect(("::1", 443))
