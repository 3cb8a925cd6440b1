from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

from tests.support.stack import Stack

BODY = {"informationOne": "hello", "informationTwo": "world"}


def user() -> str:
    return "u-" + uuid.uuid4().hex[:10]


def post(stack: Stack, sub: str, body: Any = None, **headers: str) -> requests.Response:
    return requests.post(
        f"{stack.api_url}/data", json=BODY if body is None else body, headers={**stack.auth(sub), **headers}, timeout=10
    )


def all_items(stack: Stack, sub: str, limit: int = 100) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = requests.get(f"{stack.api_url}/data", params=params, headers=stack.auth(sub), timeout=10)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["nextCursor"]
        if not cursor:
            return items


def wait_for(check: Callable[[], Any], timeout: float = 15, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def dlq(stack: Stack, consumer: str) -> list[dict[str, Any]]:
    """A consumer's DLQ messages as `fanout dlq show --json` lists them, from the /_local endpoint the CLI
    reads: a wait loop looks without starting a CLI process each time."""
    r = requests.get(f"{stack.api_url}/_local/consumers/{consumer}/dlq", timeout=30)
    assert r.status_code == 200, r.text
    messages: list[dict[str, Any]] = r.json()["messages"]
    return messages


def drain(sqs: Any, queue_url: str, expected: int, timeout: float = 15) -> list[dict[str, Any]]:
    """Receive (and delete) until `expected` messages arrived or the timeout passed."""
    got: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        for m in sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", []):
            got[m["MessageId"]] = m
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return list(got.values())


def descendants(pid: int) -> list[int]:
    """Every process below pid (children, their children...), from ps."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = (int(x) for x in line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found
