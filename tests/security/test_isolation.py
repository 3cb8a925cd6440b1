"""A token for user A never reads B's data, whatever the route, parameter, header or body says."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.fuzz.live import auth
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def two_users(stack: Stack) -> dict[str, Any]:
    alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
    ids: dict[str, list[str]] = {alice: [], bob: []}
    for user in (alice, bob):
        for i in range(3):
            r = requests.post(
                f"{stack.api_url}/data",
                json={"informationOne": f"secret of {user} {i}", "informationTwo": "x"},
                headers=auth(stack, user),
                timeout=10,
            )
            assert r.status_code == 202
            ids[user].append(r.json()["id"])
    deadline = time.monotonic() + 15
    for user, mine in ids.items():
        while True:
            page = requests.get(f"{stack.api_url}/data", headers=auth(stack, user), timeout=10).json()
            if {i["id"] for i in page["items"]} >= set(mine):
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
    return {"alice": alice, "bob": bob, "ids": ids}


def _leaks(text: str, victim: str, victim_ids: list[str]) -> bool:
    return victim in text or any(i in text for i in victim_ids)


def test_list_and_params_never_cross_users(stack: Stack, two_users: dict[str, Any]) -> None:
    alice, bob, ids = two_users["alice"], two_users["bob"], two_users["ids"]
    attempts = [
        {},
        {"limit": "100"},
        {"user": bob},
        {"sub": bob},
        {"pk": f"USER#{bob}"},
        {"owner": bob},
        {"cursor": ""},
        {"limit": "100", "limit ": "1"},
    ]
    for params in attempts:
        r = requests.get(f"{stack.api_url}/data", params=params, headers=auth(stack, alice), timeout=10)
        assert r.status_code in (200, 400), (params, r.status_code)
        assert not _leaks(r.text, bob, ids[bob]), params
        if r.status_code == 200:
            assert {i["id"] for i in r.json()["items"]} == set(ids[alice])


def test_item_route_never_crosses_users(stack: Stack, two_users: dict[str, Any]) -> None:
    alice, bob, ids = two_users["alice"], two_users["bob"], two_users["ids"]
    for victim_id in ids[bob]:
        for path in (
            f"/data/{victim_id}",
            f"/data/{victim_id.lower()}",
            f"/data/{quote(victim_id)}%00",
            f"/data/{victim_id}?user={bob}",
            f"/data/..%2F{victim_id}",
            f"/data/USER%23{bob}%2FDATA%23{victim_id}",
            f"/DATA/{victim_id}",
        ):
            r = requests.get(f"{stack.api_url}{path}", headers=auth(stack, alice), timeout=10)
            assert r.status_code in (400, 403, 404, 405), (path, r.status_code)
            # Messages may echo the path the caller typed; they never carry the victim's data.
            assert "secret of" not in r.text and "informationOne" not in r.text, path


def test_identity_comes_only_from_the_token(stack: Stack, two_users: dict[str, Any]) -> None:
    """Headers and body fields naming another user change nothing: the authorizer's sub decides."""
    alice, bob, ids = two_users["alice"], two_users["bob"], two_users["ids"]
    spoof = {"X-User": bob, "X-Forwarded-User": bob, "X-Amz-Principal": bob, "principalId": bob}
    r = requests.get(f"{stack.api_url}/data", headers={**auth(stack, alice), **spoof}, timeout=10)
    assert {i["id"] for i in r.json()["items"]} == set(ids[alice])
    r = requests.post(
        f"{stack.api_url}/data",
        json={"informationOne": "x", "informationTwo": "y", "subject": bob},
        headers={**auth(stack, alice), **spoof},
        timeout=10,
    )
    assert r.status_code == 400  # extra field refused, never stored under anyone
    # Lookalike subjects are other users, not prefixes of one.
    for lookalike in (bob + " ", bob.upper(), f"USER#{bob}", bob + "\u200b"):
        r = requests.get(f"{stack.api_url}/data", headers=auth(stack, lookalike), timeout=10)
        if r.status_code == 200:
            assert r.json()["items"] == [], lookalike
        else:
            assert r.status_code in (401, 403)


def test_roles_are_enforced_per_route(stack: Stack) -> None:
    user = f"ro-{uuid.uuid4().hex[:8]}"
    r = requests.post(
        f"{stack.api_url}/data",
        json={"informationOne": "x", "informationTwo": "y"},
        headers=auth(stack, user, roles=("data.read",)),
        timeout=10,
    )
    assert r.status_code == 403
    r = requests.get(f"{stack.api_url}/data", headers=auth(stack, user, roles=("data.write",)), timeout=10)
    assert r.status_code == 403
    r = requests.get(
        f"{stack.api_url}/data/01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=auth(stack, user, roles=()), timeout=10
    )
    assert r.status_code == 403
