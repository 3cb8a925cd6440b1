"""Properties over the whole in-process data path: POST -> SNS -> persister -> GET."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit_support import Aws, call_api, sqs_event

from fanout_kit import ids
from handlers import persister
from handlers.core import cursor

# One moto world per test function; every example uses its own users, so examples never interfere.
SHARED = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

field = st.text(min_size=1, max_size=1024) | st.sampled_from(["x" * 1024, "😀" * 1024, "\u0000", " ", "é\u0301"])
payloads = st.fixed_dictionaries({"informationOne": field, "informationTwo": field})


@settings(SHARED, max_examples=50)
@given(payload=payloads)
def test_any_accepted_payload_round_trips_exactly(aws: Aws, context: Any, payload: dict[str, str]) -> None:
    user = f"user-{uuid.uuid4()}"
    posted = call_api(context, "POST", "/data", user=user, body=json.dumps(payload, ensure_ascii=False).encode())
    assert posted.status == 202, posted.body
    (published,) = aws.published()
    assert persister.handler(sqs_event(published), context) == {"batchItemFailures": []}
    item = call_api(context, "GET", f"/data/{posted.body['id']}", user=user)
    assert item.status == 200
    assert item.body["informationOne"] == payload["informationOne"]
    assert item.body["informationTwo"] == payload["informationTwo"]
    listed = call_api(context, "GET", "/data", user=user)
    assert listed.body["items"] == [item.body]
    assert aws.announced()[0]["detail"]["data"] == item.body


def _seed(context: Any, aws: Aws, user: str, count: int) -> list[str]:
    posted = []
    for i in range(count):
        answer = call_api(
            context, "POST", "/data", user=user, body={"informationOne": f"{user} {i}", "informationTwo": "x"}
        )
        posted.append(answer.body["id"])
    assert persister.handler(sqs_event(*aws.published()), context) == {"batchItemFailures": []}
    return posted


def _mutations(genuine: str) -> st.SearchStrategy[str]:
    flip = st.tuples(st.integers(0, len(genuine) - 1), st.characters(codec="ascii")).map(
        lambda t: genuine[: t[0]] + t[1] + genuine[t[0] + 1 :]
    )
    forged_payload = st.builds(
        lambda ms: cursor._b64(json.dumps({"v": 1, "k": ids.new_id(ms)}).encode()), st.integers(0, 2**48 - 1)
    )
    forged = st.tuples(forged_payload, st.just(genuine.split(".")[1])).map(".".join)
    return (
        st.text(max_size=300) | flip | forged | st.just(genuine) | st.builds(lambda s: genuine + s, st.text(max_size=5))
    )


_WORLDS: dict[int, tuple[str, set[str], str, set[str], str]] = {}


def _world(context: Any, aws: Aws) -> tuple[str, set[str], str, set[str], str]:
    """Two users with items, seeded once per test function (the examples only read)."""
    if id(aws) not in _WORLDS:
        _WORLDS.clear()
        alice, bob = f"alice-{uuid.uuid4()}", f"bob-{uuid.uuid4()}"
        alice_ids, bob_ids = set(_seed(context, aws, alice, 3)), set(_seed(context, aws, bob, 2))
        genuine = call_api(context, "GET", "/data", user=alice, query={"limit": "1"}).body["nextCursor"]
        _WORLDS[id(aws)] = (alice, alice_ids, bob, bob_ids, genuine)
    return _WORLDS[id(aws)]


@settings(SHARED, max_examples=150)
@given(data=st.data())
def test_no_cursor_reads_another_users_data(aws: Aws, context: Any, data: st.DataObject) -> None:
    _, alice_ids, bob, bob_ids, alices_cursor = _world(context, aws)
    candidate = data.draw(_mutations(alices_cursor))
    answer = call_api(context, "GET", "/data", user=bob, query={"cursor": candidate, "limit": "100"})
    assert answer.status in (200, 400)
    if answer.status == 400:
        assert "cursor" in answer.body["message"]
    else:
        got = {i["id"] for i in answer.body["items"]}
        assert got <= bob_ids
        assert not got & alice_ids
