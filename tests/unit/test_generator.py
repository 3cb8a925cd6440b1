"""The scheduled generator: deterministic synthetic events, published 10 a PublishBatch call."""

from __future__ import annotations

from typing import Any

import pytest
from unit_support import Aws, assert_valid

from handlers import generator
from handlers.core import clients, publisher


def test_seed_makes_the_data_deterministic() -> None:
    first = [e.to_dict() for e in generator.synthesize(20, ["alice", "bob", "carol"], seed=42)]
    second = [e.to_dict() for e in generator.synthesize(20, ["alice", "bob", "carol"], seed=42)]
    assert [(e["subject"], e["data"]) for e in first] == [(e["subject"], e["data"]) for e in second]
    # Ids are still new: every event's must be unique.
    assert not {e["id"] for e in first} & {e["id"] for e in second}
    other = [e.to_dict() for e in generator.synthesize(20, ["alice", "bob", "carol"], seed=43)]
    assert [e["data"] for e in other] != [e["data"] for e in first]


def test_every_synthesized_event_is_valid_and_realistic() -> None:
    batch = [e.to_dict() for e in generator.synthesize(200, ["alice", "bob"], seed=7)]
    assert len({e["id"] for e in batch}) == 200
    for e in batch:
        assert_valid("fanout.data.generated.v1.json", e)
        assert e["subject"] in ("alice", "bob")
        assert e["source"] == "fanout.generator"
        assert e["data"]["informationOne"].strip() and e["data"]["informationTwo"].strip()
    assert {e["subject"] for e in batch} == {"alice", "bob"}


@pytest.mark.parametrize("count", [1, 9, 10, 11, 23, 100])
def test_count_is_honoured_in_publish_batch_calls_of_10(aws: Aws, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    sns = clients.client("sns")
    real = sns.publish_batch
    sizes: list[int] = []

    def counting(**kwargs: Any) -> Any:
        sizes.append(len(kwargs["PublishBatchRequestEntries"]))
        return real(**kwargs)

    monkeypatch.setattr(sns, "publish_batch", counting)
    monkeypatch.setattr(sns, "publish", lambda **_: pytest.fail("generator must use PublishBatch"))
    ids = generator.generate(count, ["alice", "bob"], seed=1)
    assert len(ids) == len(set(ids)) == count
    assert sizes == [10] * (count // 10) + ([count % 10] if count % 10 else [])
    published = aws.published_with_attributes()
    assert sorted(e["id"] for e, _ in published) == sorted(ids)
    for event, attributes in published:
        assert_valid("fanout.data.generated.v1.json", event)
        assert attributes["type"]["StringValue"] == "fanout.data.generated.v1"
        assert attributes["subject"]["StringValue"] == event["subject"]


@pytest.mark.parametrize("count", [0, -1, 10_001, "5", 1.5, True, None, [3]])
def test_invalid_count_is_a_value_error(aws: Aws, count: Any) -> None:
    with pytest.raises(ValueError, match="count"):
        generator.generate(count, ["alice"])
    assert aws.published() == []


@pytest.mark.parametrize("users", [[], [""], ["  "], [1], ["ok", None], None, "alice", ("x" * 257,)])
def test_invalid_users_is_a_value_error(aws: Aws, users: Any) -> None:
    with pytest.raises(ValueError):
        generator.generate(3, users)
    assert aws.published() == []


def test_handler_with_event_and_defaults(aws: Aws, context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = generator.handler({"count": 3, "users": ["dave"], "seed": 5}, context)
    assert answer["published"] == 3 and len(answer["ids"]) == 3
    assert {e["subject"] for e in aws.published()} == {"dave"}
    monkeypatch.setenv("GENERATOR_COUNT", "4")
    monkeypatch.setenv("GENERATOR_USERS", "erin, frank")
    answer = generator.handler(None, context)
    assert answer["published"] == 4
    assert {e["subject"] for e in aws.published()} <= {"erin", "frank"}


def test_handler_refuses_a_bad_count_from_the_schedule(aws: Aws, context: Any) -> None:
    with pytest.raises(ValueError):
        generator.handler({"count": 0}, context)
    assert aws.published() == []


def test_publish_batch_retries_failed_entries_only(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    sns = clients.client("sns")
    real = sns.publish_batch
    sizes: list[int] = []

    def flaky(**kwargs: Any) -> Any:
        entries = kwargs["PublishBatchRequestEntries"]
        sizes.append(len(entries))
        if len(sizes) == 1:
            response = real(**{**kwargs, "PublishBatchRequestEntries": entries[1:]})
            failed = {"Id": entries[0]["Id"], "Code": "InternalError", "SenderFault": False}
            return {"Successful": response["Successful"], "Failed": [failed]}
        return real(**kwargs)

    monkeypatch.setattr(sns, "publish_batch", flaky)
    monkeypatch.setattr(publisher.time, "sleep", lambda _: None)
    ids = generator.generate(5, ["alice"], seed=3)
    assert sizes == [5, 1]
    assert sorted(e["id"] for e in aws.published()) == sorted(ids)


def test_publish_batch_raises_when_an_entry_never_goes_out(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    sns = clients.client("sns")

    def failing(**kwargs: Any) -> Any:
        entries = kwargs["PublishBatchRequestEntries"]
        return {"Successful": [], "Failed": [{"Id": e["Id"], "Code": "InternalError"} for e in entries]}

    monkeypatch.setattr(sns, "publish_batch", failing)
    monkeypatch.setattr(publisher.time, "sleep", lambda _: None)
    with pytest.raises(publisher.PublishError):
        generator.generate(3, ["alice"])
