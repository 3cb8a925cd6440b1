"""The data table: one partition per user, one item per event id.

Key design: pk = "USER#<sub>", sk = "DATA#<event id>". Event ids are ULIDs, so sort
keys are time-ordered and unique per event: `GET /data` is one Query newest first, and
a redelivered event overwrites its own item instead of creating a second one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from handlers.core.clients import client
from handlers.core.settings import table_name

BATCH_WRITE_MAX = 25
# Every error code DynamoDB throttles with, not only the provisioned-capacity one.
THROTTLES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})
ITEM_FIELDS = ("id", "informationOne", "informationTwo", "createdAt")


def pk(user: str) -> str:
    return f"USER#{user}"


def sk(event_id: str) -> str:
    return f"DATA#{event_id}"


@dataclass(frozen=True)
class Record:
    """A stored item: the owner, and the fields GET /data returns."""

    user: str
    id: str
    information_one: str
    information_two: str
    created_at: str
    correlation_id: str | None = None

    def to_api(self) -> dict[str, str]:
        return {
            "id": self.id,
            "informationOne": self.information_one,
            "informationTwo": self.information_two,
            "createdAt": self.created_at,
        }

    def to_dynamodb(self) -> dict[str, dict[str, str]]:
        item = {
            "pk": {"S": pk(self.user)},
            "sk": {"S": sk(self.id)},
            "id": {"S": self.id},
            "informationOne": {"S": self.information_one},
            "informationTwo": {"S": self.information_two},
            "createdAt": {"S": self.created_at},
        }
        if self.correlation_id:
            item["correlationId"] = {"S": self.correlation_id}
        return item

    @classmethod
    def from_dynamodb(cls, item: dict[str, dict[str, str]]) -> Record:
        return cls(
            user=item["pk"]["S"].removeprefix("USER#"),
            id=item["id"]["S"],
            information_one=item["informationOne"]["S"],
            information_two=item["informationTwo"]["S"],
            created_at=item["createdAt"]["S"],
            correlation_id=item.get("correlationId", {}).get("S"),
        )


def _chunks(seq: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def write(
    records: list[Record],
    *,
    attempts: int = 6,
    base_delay: float = 0.05,
    sleep: Callable[[float], None] = time.sleep,
) -> set[tuple[str, str]]:
    """BatchWriteItem 25 at a time, retrying UnprocessedItems with jittered exponential backoff.

    Returns the (user, id) keys that still failed after every attempt, so the caller can report
    exactly those messages as failures; an empty set means everything is stored.
    """
    # BatchWriteItem rejects a request holding the same key twice (a duplicate delivery in one batch).
    unique = {(r.user, r.id): r for r in records}
    failed: set[tuple[str, str]] = set()
    ddb = client("dynamodb")
    name = table_name()
    for chunk in _chunks(list(unique.values()), BATCH_WRITE_MAX):
        pending = [{"PutRequest": {"Item": r.to_dynamodb()}} for r in chunk]
        for attempt in range(attempts):
            if attempt:
                sleep(random.uniform(0, min(2.0, base_delay * 2**attempt)))  # noqa: S311 (jitter, not crypto)
            try:
                response = ddb.batch_write_item(RequestItems={name: pending})
            except ddb.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in THROTTLES:
                    raise
                continue  # botocore already retried; back off further and try the same requests again
            pending = response.get("UnprocessedItems", {}).get(name, [])
            if not pending:
                break
        for req in pending:
            item = req["PutRequest"]["Item"]
            failed.add((item["pk"]["S"].removeprefix("USER#"), item["id"]["S"]))
    return failed


def get(user: str, event_id: str) -> Record | None:
    response = client("dynamodb").get_item(
        TableName=table_name(), Key={"pk": {"S": pk(user)}, "sk": {"S": sk(event_id)}}
    )
    item = response.get("Item")
    return Record.from_dynamodb(item) if item else None


def page(user: str, limit: int, after_id: str | None = None) -> tuple[list[Record], str | None]:
    """Newest first. Returns the page and the id to continue after, or None on the last page."""
    params: dict[str, Any] = {
        "TableName": table_name(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :data)",
        "ExpressionAttributeValues": {":pk": {"S": pk(user)}, ":data": {"S": "DATA#"}},
        "ScanIndexForward": False,
        # One more than asked tells whether another page exists, so the last page has no cursor.
        "Limit": limit + 1,
    }
    if after_id:
        params["ExclusiveStartKey"] = {"pk": {"S": pk(user)}, "sk": {"S": sk(after_id)}}
    items = client("dynamodb").query(**params).get("Items", [])
    records = [Record.from_dynamodb(i) for i in items[:limit]]
    more = len(items) > limit
    return records, (records[-1].id if more and records else None)
