"""What a team outside the repository relies on, against the local stack: the published AsyncAPI document."""

from __future__ import annotations

import json

import requests

from tests.support.asyncapi_spec import errors
from tests.support.stack import Stack


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
