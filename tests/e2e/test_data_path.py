"""The data path through the running local stack: HTTP in, SNS, SQS, persister, DynamoDB, HTTP out."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.e2e.helpers import BODY, all_items, post, user, wait_for
from tests.support.stack import Stack


def test_health_and_openapi(stack: Stack) -> None:
    assert requests.get(f"{stack.api_url}/healthz", timeout=5).json() == {"status": "ok"}
    doc = requests.get(f"{stack.api_url}/openapi.json", timeout=5).json()
    assert doc["openapi"].startswith("3.")
    assert {"/data", "/data/{id}"} <= set(doc["paths"])


def test_round_trip_within_five_seconds(stack: Stack) -> None:
    sub = user()
    body = {"informationOne": "Grüße, 世界 🚀", "informationTwo": "x" * 1024}
    r = post(stack, sub, body)
    assert r.status_code == 202, r.text
    event_id = r.json()["id"]
    started = time.monotonic()
    item = wait_for(
        lambda: (
            (g := requests.get(f"{stack.api_url}/data/{event_id}", headers=stack.auth(sub), timeout=5)).status_code
            == 200
            and g.json()
        ),
        timeout=5,
    )
    assert time.monotonic() - started < 5
    assert item["id"] == event_id
    assert item["informationOne"] == body["informationOne"] and item["informationTwo"] == body["informationTwo"]
    assert item["createdAt"].endswith("Z")
    page = requests.get(f"{stack.api_url}/data", headers=stack.auth(sub), timeout=5).json()
    assert page == {"items": [item], "nextCursor": None}


def test_users_never_see_each_other(stack: Stack) -> None:
    alice, bob = user(), user()
    a_id = post(stack, alice).json()["id"]
    b_id = post(stack, bob).json()["id"]
    wait_for(lambda: len(all_items(stack, alice)) == 1 and len(all_items(stack, bob)) == 1)
    assert [i["id"] for i in all_items(stack, alice)] == [a_id]
    assert [i["id"] for i in all_items(stack, bob)] == [b_id]
    r = requests.get(f"{stack.api_url}/data/{b_id}", headers=stack.auth(alice), timeout=5)
    assert r.status_code == 404 and r.json()["message"]
    # Alice's cursor is useless to Bob.
    for _ in range(2):
        post(stack, alice)
    wait_for(lambda: len(all_items(stack, alice)) == 3)
    cursor = requests.get(f"{stack.api_url}/data", params={"limit": 1}, headers=stack.auth(alice), timeout=5).json()[
        "nextCursor"
    ]
    r = requests.get(f"{stack.api_url}/data", params={"cursor": cursor}, headers=stack.auth(bob), timeout=5)
    assert r.status_code == 400 and "cursor" in r.json()["message"]


def test_pagination_newest_first(stack: Stack) -> None:
    sub = user()
    ids = []
    for i in range(23):
        r = post(stack, sub, {"informationOne": f"n{i}", "informationTwo": "p"})
        ids.append(r.json()["id"])
    wait_for(lambda: len(all_items(stack, sub)) == 23)
    pages, cursor = [], None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{stack.api_url}/data", params=params, headers=stack.auth(sub), timeout=5).json()
        pages.append(page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    seen = [i["id"] for p in pages for i in p]
    assert seen == list(reversed(ids))  # newest first, each exactly once
    default = requests.get(f"{stack.api_url}/data", headers=stack.auth(sub), timeout=5).json()
    assert len(default["items"]) == 23 and default["nextCursor"] is None


def test_idempotency_key(stack: Stack) -> None:
    sub, other = user(), user()
    first = post(stack, sub, **{"Idempotency-Key": "order-42"})
    again = post(stack, sub, **{"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    changed = post(stack, sub, {"informationOne": "other", "informationTwo": "body"}, **{"Idempotency-Key": "order-42"})
    assert changed.status_code in (409, 422) and "Idempotency-Key" in changed.json()["message"]
    theirs = post(stack, other, **{"Idempotency-Key": "order-42"})
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]
    wait_for(lambda: len(all_items(stack, sub)) == 1 and len(all_items(stack, other)) == 1)
    time.sleep(1)  # nothing more arrives later either
    assert [i["id"] for i in all_items(stack, sub)] == [first.json()["id"]]


def test_three_hundred_concurrent_posts_nothing_lost_nothing_doubled(stack: Stack) -> None:
    sub = user()
    token = stack.token(sub)
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=32, pool_maxsize=32)
    session.mount("http://", adapter)

    def one(i: int) -> str:
        r = session.post(
            f"{stack.api_url}/data",
            json={"informationOne": f"load {i}", "informationTwo": "c"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 202, r.text
        return r.json()["id"]

    with ThreadPoolExecutor(32) as pool:
        ids = list(pool.map(one, range(300)))
    assert len(set(ids)) == 300
    items = wait_for(lambda: (got := all_items(stack, sub)) and len(got) >= 300 and got, timeout=60)
    assert sorted(i["id"] for i in items) == sorted(ids)
    assert sorted(i["informationOne"] for i in items) == sorted(f"load {i}" for i in range(300))


def test_persisted_events_reach_the_bus(stack: Stack) -> None:
    status = json.loads(stack.cli("status", "--json").stdout)
    sqs, events = stack.boto("sqs"), stack.boto("events")
    url = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="tap",
        EventBusName=status["event_bus_name"],
        EventPattern=json.dumps({"detail-type": ["fanout.data.persisted.v1"]}),
    )
    events.put_targets(Rule="tap", EventBusName=status["event_bus_name"], Targets=[{"Id": "q", "Arn": arn}])
    sub = user()
    event_id = post(stack, sub).json()["id"]

    def announced() -> dict | None:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            detail = json.loads(m["Body"])["detail"]
            if detail["id"] == event_id:
                return detail
        return None

    detail = wait_for(announced, timeout=10)
    assert detail["type"] == "fanout.data.persisted.v1" and detail["subject"] == sub
    assert detail["data"] == {**BODY, "id": event_id, "createdAt": detail["data"]["createdAt"]}
