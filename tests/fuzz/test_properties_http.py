"""Properties through the running stack: exact round trip of any accepted payload; no forged cursor
reads another user's data."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.live import auth
from tests.support.stack import Stack

SLOW = settings(
    deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
# Any string the schema accepts: 1 to 1024 characters of any Unicode scalar value.
FIELD = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=1024) | st.sampled_from(
    ["x" * 1024, "😀" * 1024, "\u0000", " ", "e\u0301", "\u202eRTL", "<script>", '"; DROP TABLE', "\\u0000"]
)


def _wait_item(stack: Stack, user: str, item_id: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(f"{stack.api_url}/data/{item_id}", headers=auth(stack, user), timeout=10)
        if r.status_code == 200:
            return r.json()
        assert r.status_code == 404, r.text
        assert time.monotonic() < deadline, f"{item_id} not readable within {timeout} s"
        time.sleep(0.1)


@settings(SLOW, max_examples=25)
@given(one=FIELD, two=FIELD)
def test_any_accepted_payload_round_trips_exactly(stack: Stack, one: str, two: str) -> None:
    user = f"rt-{uuid.uuid4().hex[:10]}"
    body = json.dumps({"informationOne": one, "informationTwo": two}, ensure_ascii=False).encode()
    r = requests.post(
        f"{stack.api_url}/data",
        data=body,
        headers={**auth(stack, user), "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    item = _wait_item(stack, user, r.json()["id"])
    assert item["informationOne"] == one and item["informationTwo"] == two
    listed = requests.get(f"{stack.api_url}/data", headers=auth(stack, user), timeout=10).json()
    assert listed["items"] == [item]


_WORLD: dict[str, Any] = {}


def _world(stack: Stack) -> dict[str, Any]:
    if not _WORLD:
        alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
        ids: dict[str, set[str]] = {alice: set(), bob: set()}
        for user, n in ((alice, 3), (bob, 2)):
            for i in range(n):
                r = requests.post(
                    f"{stack.api_url}/data",
                    json={"informationOne": f"{user} {i}", "informationTwo": "x"},
                    headers=auth(stack, user),
                    timeout=10,
                )
                ids[user].add(r.json()["id"])
        for user in ids:
            for i in ids[user]:
                _wait_item(stack, user, i)
        cursor = requests.get(
            f"{stack.api_url}/data", params={"limit": 1}, headers=auth(stack, alice), timeout=10
        ).json()["nextCursor"]
        _WORLD.update(alice=alice, bob=bob, ids=ids, cursor=cursor)
    return _WORLD


@settings(SLOW, max_examples=80)
@given(data=st.data())
def test_no_cursor_reads_another_users_data(stack: Stack, data: st.DataObject) -> None:
    w = _world(stack)
    genuine: str = w["cursor"]
    payload, _, tag = genuine.partition(".")
    candidate = data.draw(
        st.just(genuine)
        | st.text(max_size=200)
        | st.tuples(st.integers(0, len(genuine) - 1), st.characters(codec="ascii")).map(
            lambda t: genuine[: t[0]] + t[1] + genuine[t[0] + 1 :]
        )
        | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=60).map(
            lambda p: f"{p}.{tag}"
        )
        | st.just(payload + "." + tag[::-1])
    )
    r = requests.get(
        f"{stack.api_url}/data", params={"cursor": candidate, "limit": 100}, headers=auth(stack, w["bob"]), timeout=10
    )
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert "cursor" in r.json()["message"]
    else:
        got = {i["id"] for i in r.json()["items"]}
        assert got <= w["ids"][w["bob"]] and not got & w["ids"][w["alice"]]
