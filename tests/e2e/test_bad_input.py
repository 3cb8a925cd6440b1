"""Bad input gets a 4xx with a message naming the problem, publishes nothing, and the stack stays healthy."""

from __future__ import annotations

import time

import jwt
import pytest
import requests

from tests.e2e.helpers import all_items, post, user
from tests.support.stack import SECRET, Stack


def raw_post(stack: Stack, sub: str, data: bytes, **headers: str) -> requests.Response:
    return requests.post(
        f"{stack.api_url}/data",
        data=data,
        headers={**stack.auth(sub), "Content-Type": "application/json", **headers},
        timeout=10,
    )


@pytest.mark.parametrize(
    ("data", "status", "names"),
    [
        (b"{not json", 400, "JSON"),
        (b"", 400, "empty"),
        (b"[1, 2]", 400, "object"),
        (b'"text"', 400, "object"),
        (b'{"informationOne": "a"}', 400, "informationTwo"),
        (b'{"informationOne": "a", "informationTwo": "b", "extra": 1}', 400, "extra"),
        (b'{"informationOne": 1, "informationTwo": "b"}', 400, "informationOne"),
        (b'{"informationOne": "", "informationTwo": "b"}', 400, "informationOne"),
        (b'{"informationOne": "' + b"x" * 1025 + b'", "informationTwo": "b"}', 400, "informationOne"),
        (b'{"informationOne": null, "informationTwo": "b"}', 400, "informationOne"),
        (b'{"informationOne": NaN, "informationTwo": "b"}', 400, "NaN"),
        (b'{"informationOne": "\xff\xfe", "informationTwo": "b"}', 400, "UTF-8"),
        (b"[" * 100_00 + b"]" * 100_00, 400, "nested"),
        (b'{"informationOne": "' + b"x" * 70_000 + b'", "informationTwo": "b"}', 413, "KiB"),
    ],
)
def test_rejected_bodies_name_the_problem_and_publish_nothing(
    stack: Stack, data: bytes, status: int, names: str
) -> None:
    sub = user()
    r = raw_post(stack, sub, data)
    assert r.status_code == status, r.text
    assert names.lower() in r.json()["message"].lower()
    time.sleep(0.3)
    assert all_items(stack, sub) == []
    assert requests.get(f"{stack.api_url}/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "eyJ2IjoxLCJrIjoiMDFNOEZENEtDUlkwRU1GQVgxMkhaMkVYN00ifQ.AAAAAAAAAAAAAAAAAAAAAA"}, "cursor"),
        ({"sort": "asc"}, "sort"),
    ],
)
def test_bad_query_parameters(stack: Stack, params: dict[str, str], names: str) -> None:
    r = requests.get(f"{stack.api_url}/data", params=params, headers=stack.auth(user()), timeout=5)
    assert r.status_code == 400 and names in r.json()["message"]


def _token(claims: dict, key: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def _unsigned(claims: dict) -> str:
    return jwt.encode(claims, None, algorithm="none")


NOW = int(time.time())
BAD_TOKENS = {
    "garbage": "not-a-jwt",
    "expired": _token({"sub": "x", "Role": ["data.read"], "exp": NOW - 60}),
    "unsigned": _unsigned({"sub": "x", "Role": ["data.read"], "exp": NOW + 600}),
    "wrong secret": _token(
        {"sub": "x", "Role": ["data.read"], "exp": NOW + 600}, key="another-secret-of-32-bytes-or-more!!"
    ),
    "no sub": _token({"Role": ["data.read"], "exp": NOW + 600}),
    "no exp": _token({"sub": "x", "Role": ["data.read"]}),
    "HS512": _token({"sub": "x", "Role": ["data.read"], "exp": NOW + 600}, alg="HS512"),
}


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_bad_tokens_get_401(stack: Stack, name: str) -> None:
    headers = {"Authorization": f"Bearer {BAD_TOKENS[name]}"}
    r = requests.get(f"{stack.api_url}/data", headers=headers, timeout=5)
    assert r.status_code == 401 and r.json() == {"message": "Unauthorized"}
    r = requests.post(
        f"{stack.api_url}/data", json={"informationOne": "a", "informationTwo": "b"}, headers=headers, timeout=5
    )
    assert r.status_code == 401


def test_missing_or_non_bearer_header_gets_401(stack: Stack) -> None:
    assert requests.get(f"{stack.api_url}/data", timeout=5).status_code == 401
    r = requests.get(f"{stack.api_url}/data", headers={"Authorization": "Basic dXNlcjpwdw=="}, timeout=5)
    assert r.status_code == 401 and r.json() == {"message": "Unauthorized"}


def test_roles_decide_403(stack: Stack) -> None:
    sub = user()
    reader = stack.auth(sub, roles=("data.read",))
    writer = stack.auth(sub, roles=("data.write",))
    nobody = stack.auth(sub, roles=())
    body = {"informationOne": "a", "informationTwo": "b"}
    assert requests.post(f"{stack.api_url}/data", json=body, headers=reader, timeout=5).status_code == 403
    assert requests.get(f"{stack.api_url}/data", headers=writer, timeout=5).status_code == 403
    assert (
        requests.get(f"{stack.api_url}/data/01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=writer, timeout=5).status_code == 403
    )
    assert requests.get(f"{stack.api_url}/data", headers=nobody, timeout=5).status_code == 403
    assert requests.post(f"{stack.api_url}/data", json=body, headers=writer, timeout=5).status_code == 202
    # The cached policy for a token covers every route it allows, not only the first one called.
    assert requests.get(f"{stack.api_url}/data", headers=reader, timeout=5).status_code == 200
    assert (
        requests.get(f"{stack.api_url}/data/01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=reader, timeout=5).status_code == 404
    )


def test_unknown_path_and_wrong_method(stack: Stack) -> None:
    r = requests.get(f"{stack.api_url}/nowhere", timeout=5)
    assert r.status_code == 404 and r.json()["message"]
    r = requests.delete(f"{stack.api_url}/data", headers=stack.auth(user()), timeout=5)
    assert r.status_code == 405 and r.json()["message"] and "GET" in r.headers["Allow"]
    r = requests.put(f"{stack.api_url}/data/01ARZ3NDEKTSV4RRFFQ69G5FAV", timeout=5)
    assert r.status_code == 405


def test_invalid_idempotency_key(stack: Stack) -> None:
    r = post(stack, user(), **{"Idempotency-Key": "k" * 256})
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["message"]


def test_duplicate_keys_are_refused_naming_the_key_and_store_nothing(stack: Stack) -> None:
    sub = user()
    r = raw_post(stack, sub, b'{"informationOne": "a", "informationOne": "b", "informationTwo": "c"}')
    assert r.status_code == 400
    assert r.json() == {"message": 'duplicate field "informationOne": each field may appear once'}
    time.sleep(0.3)
    assert all_items(stack, sub) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"informationOne": "a"}', 'missing field "informationTwo"'),
        (b'{"informationOne": "a", "informationTwo": "b", "x": 1}', 'unknown field "x"'),
        (b'{"informationOne": 1, "informationTwo": "b"}', 'field "informationOne" must be a string'),
    ],
)
def test_400_messages_say_it_as_a_person_would(stack: Stack, data: bytes, message: str) -> None:
    r = raw_post(stack, user(), data)
    assert r.status_code == 400 and r.json() == {"message": message}


@pytest.mark.parametrize(
    "data",
    [b'{"sub": "a", "sub": "b"}', b'{"sub": "a",}', b'{"sub": NaN}'],
    ids=["duplicate", "syntax", "constant"],
)
def test_the_gateway_and_the_api_word_json_errors_the_same(stack: Stack, data: bytes) -> None:
    # The local token endpoint (parsed by the gateway) and POST /data (parsed by the api handler).
    local = requests.post(
        f"{stack.api_url}/_local/token", data=data, headers={"Content-Type": "application/json"}, timeout=5
    )
    api = raw_post(stack, user(), data)
    assert local.status_code == api.status_code == 400
    said = api.json()["message"]
    assert said and "Expecting" not in said and "{'" not in said
    assert local.json()["message"] == f"{said} (this endpoint exists only on the local stack)"
    # And serialised alike: compact, UTF-8 as is.
    assert local.text.startswith('{"message":"') and api.text.startswith('{"message":"')
