"""examples/subscriber's handler, in-process: the code another account deploys, on fanout's consumer kit."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from unit_support import REGION

from fanout_kit import DataGenerated
from fanout_kit.testing import eventbridge_envelope, failures, new_event, sqs_event

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/subscriber"
BUCKET = "example-received"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("RECEIVED_BUCKET", BUCKET)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        module = importlib.import_module("subscriber_app.handler")
        module._s3.cache_clear()
        yield module, s3
    sys.modules.pop("subscriber_app.handler", None)
    sys.modules.pop("subscriber_app", None)


def test_it_keeps_each_event_it_receives_and_reports_bad_ones_alone(example: Any, context: Any) -> None:
    module, s3 = example
    good = [new_event(DataGenerated, subject="alice") for _ in range(2)]
    batch = sqs_event(*good, {"not": "an event"})
    response = module.handler(batch, context)
    assert failures(response) == {batch["Records"][2]["messageId"]}
    for event in good:
        key = f"received/alice/{event.id}.json"
        stored = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        assert stored == event.to_dict()


def test_it_reads_an_eventbridge_delivery_too(example: Any, context: Any) -> None:
    module, s3 = example
    event = new_event(DataGenerated, subject="bob")
    assert failures(module.handler(sqs_event(eventbridge_envelope(event)), context)) == set()
    assert s3.get_object(Bucket=BUCKET, Key=f"received/bob/{event.id}.json")
