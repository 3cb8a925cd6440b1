"""Fuzz the running API from its own OpenAPI document: no 5xx, every 4xx a JSON message, nothing
stored by a rejected request.

Requests go over HTTP to a `make run` stack, so the gateway's own checks (413, 401 before the
authorizer, 404/405) are fuzzed too. Each example uses a fresh user, so what a user's partition
holds at the end tells exactly which requests were stored.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import strategies as S
from tests.support.stack import Stack

FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def doc(stack: Stack) -> dict[str, Any]:
    r = requests.get(f"{stack.api_url}/openapi.json", timeout=10)
    assert r.status_code == 200
    return r.json()


def _check(r: requests.Response) -> None:
    assert r.status_code < 500, f"{r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        body = r.json()
        assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], r.text[:300]


def _user(tried: set[str] | None = None) -> str:
    user = f"fz-{uuid.uuid4().hex[:12]}"
    if tried is not None:
        tried.add(user)
    return user


def _assert_stored_exactly(stack: Stack, tried: set[str], accepted: dict[str, set[str]]) -> None:
    """What the table holds for these (fresh) users is exactly the ids answered 202; nothing dead-lettered."""
    ddb, sqs = stack.boto("dynamodb"), stack.boto("sqs")
    info = json.loads(stack.cli("status", "--json").stdout)
    expected = {(u, i) for u, ids in accepted.items() for i in ids}
    deadline = time.monotonic() + 30
    while True:
        stored = set()
        for page in ddb.get_paginator("scan").paginate(TableName=info["table_name"]):
            for item in page["Items"]:
                user = item["pk"]["S"].removeprefix("USER#")
                if user in tried:
                    stored.add((user, item["id"]["S"]))
        if stored >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert stored == expected, (
        f"stored without a 202: {sorted(stored - expected)[:5]}; lost: {sorted(expected - stored)[:5]}"
    )
    dlq = info["consumers"]["persister"]["dlq_url"]
    attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0", "a published event failed validation in the persister"


def test_post_data(stack: Stack, doc: dict[str, Any]) -> None:
    """Fuzzed POSTs; then every stored item of these users belongs to a 202, and every 202 is stored."""
    accepted: dict[str, set[str]] = defaultdict(set)  # user -> ids answered 202
    tried: set[str] = set()
    schema = doc["paths"]["/data"]["post"]["requestBody"]["content"]["application/json"]["schema"]

    @FUZZ
    @given(data=st.data())
    def post(data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(["valid", "valid", "invalid", "raw"]), label="body kind")
        if kind == "valid":
            body = S.dumps(data.draw(S.valid(doc, schema), label="body"))
        elif kind == "invalid":
            body = S.dumps(data.draw(S.invalid(doc, schema), label="body"))
        else:
            body = data.draw(S.raw_bodies(), label="body")
        user = _user(tried)
        headers = {
            "Content-Type": "application/json",
            **S.token_header(data.draw(st.sampled_from(S.TOKEN_KINDS)), user),
        }
        # HTTP clients refuse (and servers strip) surrounding whitespace in a header value, so such keys can
        # never reach the API over HTTP; the unit tests send them to the handler directly.
        sendable = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300).filter(
            lambda k: k == k.strip()
        )
        key = data.draw(st.none() | sendable)
        if key is not None:
            headers["Idempotency-Key"] = key
        r = requests.post(f"{stack.api_url}/data", data=body, headers=headers, timeout=30)
        _check(r)
        if r.status_code == 202:
            accepted[user].add(r.json()["id"])
        else:
            assert r.status_code in (400, 401, 403, 409, 413, 422), r.status_code

    post()
    assert tried
    _assert_stored_exactly(stack, tried, accepted)


@FUZZ
@given(data=st.data())
def test_get_list(stack: Stack, doc: dict[str, Any], data: st.DataObject) -> None:
    params: dict[str, str] = {}
    for p in doc["paths"]["/data"]["get"]["parameters"]:
        choice = data.draw(st.sampled_from(["absent", "valid", "invalid"]), label=p["name"])
        if choice == "valid":
            params[p["name"]] = str(data.draw(S.valid(doc, p["schema"])))
        elif choice == "invalid":
            params[p["name"]] = str(data.draw(S.invalid(doc, p["schema"]) | S.TEXT))
    if data.draw(st.booleans(), label="unknown param"):
        params[data.draw(st.sampled_from(["user", "sub", "pk", "owner", "Limit"]))] = "someone-else"
    kind = data.draw(st.sampled_from(S.TOKEN_KINDS))
    r = requests.get(f"{stack.api_url}/data", params=params, headers=S.token_header(kind, _user()), timeout=30)
    _check(r)
    if r.status_code == 200:
        assert r.json()["items"] == []  # a fresh user owns nothing


@FUZZ
@given(segment=S.TEXT, kind=st.sampled_from(S.TOKEN_KINDS))
def test_get_item(stack: Stack, segment: str, kind: str) -> None:
    r = requests.get(
        f"{stack.api_url}/data/{quote(segment, safe='')}", headers=S.token_header(kind, _user()), timeout=30
    )
    _check(r)
    if r.status_code == 200:  # "/data/" is the list; any other answer would be an item, and a fresh user has none
        assert segment == "" and r.json()["items"] == []


def test_methods_and_paths(stack: Stack) -> None:
    """Every method on known and unknown paths, bodiless: answered cleanly, and none of it stored."""
    tried: set[str] = set()

    @settings(FUZZ, max_examples=60)
    @given(
        method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        path=st.sampled_from(["/data", "/data/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/openapi.json", "/nope", "/data/a/b"]),
        kind=st.sampled_from(S.TOKEN_KINDS),
    )
    def request(method: str, path: str, kind: str) -> None:
        r = requests.request(method, f"{stack.api_url}{path}", headers=S.token_header(kind, _user(tried)), timeout=30)
        _check(r)

    request()
    assert tried
    _assert_stored_exactly(stack, tried, {})
