"""What a team outside the repository relies on, against the local stack: the published AsyncAPI document."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e.helpers import BODY, post, user, wait_for
from tests.support.asyncapi_spec import errors
from tests.support.stack import Stack

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/subscriber"
DEFAULT_BUCKET = "subscriber-example-received"  # examples/subscriber/subscriber_app/handler.py, without RECEIVED_BUCKET


def test_the_local_stack_serves_its_asyncapi_document(stack: Stack) -> None:
    answer = requests.get(f"{stack.api_url}/asyncapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    doc = answer.json()
    assert errors(doc) == []
    assert doc["asyncapi"] == "3.0.0"
    status = json.loads(stack.cli("status", "--json").stdout)
    # The topic as the stack has it, and every consumer of its topology as a receive operation.
    assert doc["channels"]["topic"]["x-arn"] == status["topic_arn"]
    assert doc["channels"]["bus"]["address"] == status["event_bus_name"]
    receive = {name for name, op in doc["operations"].items() if op["action"] == "receive"}
    assert {"persister", "archive"} <= receive
    assert {"fanout.data.generated.v1", "fanout.data.persisted.v1"} <= set(doc["components"]["messages"])
    assert doc["servers"]["local"]["host"] == status["aws_endpoint"].removeprefix("http://")


def test_the_example_subscribers_handler_runs_against_the_local_stack(stack: Stack) -> None:
    """examples/subscriber's own handler, the code its project deploys to another account, run by `make run`."""
    s3 = stack.boto("s3")
    s3.create_bucket(Bucket=DEFAULT_BUCKET)
    name = "example-" + uuid.uuid4().hex[:6]
    out = stack.cli(
        "subscribe",
        name,
        "--filter-policy",
        json.dumps({"type": ["fanout.data.generated.v1"]}),
        "--handler",
        "subscriber_app.handler:handler",
        "--path",
        str(EXAMPLE),
    ).stdout
    assert out.strip().splitlines()[-1].endswith(name)
    try:
        alice = user()
        event_id = post(stack, alice).json()["id"]
        key = f"received/{alice}/{event_id}.json"

        def stored() -> dict | None:
            try:
                return json.loads(s3.get_object(Bucket=DEFAULT_BUCKET, Key=key)["Body"].read())
            except s3.exceptions.NoSuchKey:
                return None

        event = wait_for(stored, timeout=20)
        assert event["id"] == event_id and event["subject"] == alice
        assert event["type"] == "fanout.data.generated.v1" and event["data"] == BODY
    finally:
        stack.cli("unsubscribe", name, check=False)


def test_the_post_deploy_smoke_check_of_the_published_document_passes_on_the_local_one(stack: Stack) -> None:
    from tests.infra import smoke

    status = json.loads(stack.cli("status", "--json").stdout)
    outputs = {
        "asyncapi_url": f"{stack.api_url}/asyncapi.json",
        "topic_arn": status["topic_arn"],
        "consumers": {"persister": {}, "archive": {}},
    }
    smoke.published_contract(outputs)
    with pytest.raises(smoke.SmokeFailure, match="this stack's topic"):
        smoke.published_contract(outputs | {"topic_arn": "arn:aws:sns:eu-west-1:123456789012:another"})
