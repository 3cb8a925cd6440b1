"""One cost model (fanout/cost.py) for `make bench` and the console's cost panel."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bench import cost as bench_cost
from bench.calls import CallCounter
from fanout import cost, topology
from fanout.local import metering
from fanout.local.costpanel import Meter
from tests.support.checkout import STACK_CONFIGS

PUBLISH = {
    "service": "sns",
    "operation": "Publish",
    "params": {"TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "x"},
}
QUEUE = "https://sqs.us-east-1.amazonaws.com/1/fanout-dev-archive"


def receive(messages: int) -> dict[str, Any]:
    return {
        "service": "sqs",
        "operation": "ReceiveMessage",
        "params": {"QueueUrl": QUEUE},
        "parsed": {"Messages": [{"Attributes": {"ApproximateReceiveCount": "1"}}] * messages},
    }


def emulator(ms: float, calls: list[str], function: str = "fanout-dev-api", memory: int = 512) -> dict[str, Any]:
    params = {"function": function, "memory_mb": memory, "emulator_ms": ms, "calls": calls}
    return {"service": cost.EMULATOR_SERVICE, "operation": "Invocation", "params": params}


def test_units_and_dollars_follow_the_price_list() -> None:
    units = cost.units_of([PUBLISH, PUBLISH])
    assert units == {("sns", "publish", "t"): 2}
    lines = cost.dollars(units, lambda_requests={"api": 4}, lambda_gb_s={"api": 2.0}, api_requests=4)
    assert lines["SNS publish requests"] == pytest.approx(2 * cost.SNS_PUBLISH)
    assert lines["Lambda requests"] == pytest.approx(4 * cost.LAMBDA_REQUEST)
    assert lines["Lambda duration (GB-s, arm64)"] == pytest.approx(2 * cost.LAMBDA_GB_SECOND_ARM)
    assert lines["API Gateway REST requests"] == pytest.approx(4 * cost.API_GATEWAY_REST_REQUEST)


def test_cloudwatch_logs_ingestion_is_a_line() -> None:
    """Each invocation's lines, Lambda's own, each consumer record's id and the API's access log, at $0.50/GB."""
    units = cost.units_of([receive(50)])
    lines = cost.dollars(units, lambda_requests={"api": 1000, "archive": 20}, lambda_gb_s={}, api_requests=1000)
    expected = (
        1000 * (cost.LAMBDA_PLATFORM_LOG_BYTES + cost.FUNCTION_LOG_BYTES["api"] + cost.ACCESS_LOG_BYTES)
        + 20 * (cost.LAMBDA_PLATFORM_LOG_BYTES + cost.CONSUMER_LOG_BYTES)
        + 50 * cost.CONSUMER_LOG_BYTES_PER_RECORD
    )
    assert lines["CloudWatch Logs ingestion"] == pytest.approx(expected * 0.50 / 1024**3)
    assert 0.5 < lines["CloudWatch Logs ingestion"] / 1000 * 1_000_000 < 1.0  # about $0.7 per million requests


def test_the_archive_costs_a_put_per_batch() -> None:
    """One PUT for a batch of 50 events: $0.10 per million events (a PUT per event was $5)."""
    put = {"service": "s3", "operation": "PutObject", "params": {"Bucket": "fanout-dev-archive"}}
    lines = cost.dollars(cost.units_of([put]), lambda_requests={}, lambda_gb_s={}, api_requests=0)
    assert lines["S3 requests (archive PUTs)"] / 50 * 1_000_000 == pytest.approx(0.10)


def test_empty_receives_are_idle_cost_not_per_event() -> None:
    idle = cost.units_of([receive(0)] * 1000)
    assert cost.dollars(idle, lambda_requests={}, lambda_gb_s={}, api_requests=0)[
        "SQS requests (SNS deliveries, receives, deletes)"
    ] == pytest.approx(0)
    assert cost.unit(idle, "sqs", "idle_receive") == 1000
    busy = cost.units_of([receive(10)])
    assert cost.unit(busy, "sqs", "request") == 1 and cost.unit(busy, "sqs", "delivery") == 10
    # Five pollers long-polling 20 s, a month: about $0.26 per consumer.
    assert cost.idle_dollars_per_month(2) == pytest.approx(2 * 648_000 * 0.40 / 1_000_000)


def test_lambda_duration_replaces_the_emulators_time_with_aws_round_trips() -> None:
    # 590 ms measured, 560 of them waiting on the emulator for one SNS publish and one DynamoDB call.
    units = cost.units_of([emulator(560.0, ["sns", "dynamodb"])])
    measured = cost.gb_seconds([590.0], 512)
    expected = (590 - 560 + cost.AWS_CALL_MS["sns"] + cost.AWS_CALL_MS["dynamodb"]) / 1000 * 0.5
    assert cost.aws_gb_seconds(units, measured) == pytest.approx(expected)
    assert cost.aws_gb_seconds(units, measured, "fanout-dev-persister") == pytest.approx(measured)
    lines = cost.dollars(units, lambda_requests={"api": 1}, lambda_gb_s={"api": measured}, api_requests=1)
    assert lines["Lambda duration (GB-s, arm64)"] == pytest.approx(expected * cost.LAMBDA_GB_SECOND_ARM)


def test_the_function_process_reports_the_time_its_calls_waited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fanout-dev-archive")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
    now = time.monotonic()
    metering.drain()
    with metering._lock:
        # Two calls in parallel (0-100 ms and 50-150 ms) and a third alone (200-220 ms): 170 ms waited.
        for start, stop in ((0.0, 0.1), (0.05, 0.15), (0.2, 0.22)):
            metering._records.append({"service": "s3", "operation": "PutObject", "_waited": (now + start, now + stop)})
    records = metering.drain()
    assert all("_waited" not in r for r in records[:-1])
    summary = records[-1]
    assert summary["service"] == cost.EMULATOR_SERVICE and summary["params"]["function"] == "fanout-dev-archive"
    assert summary["params"]["emulator_ms"] == pytest.approx(170.0)
    assert summary["params"]["memory_mb"] == 256 and summary["params"]["calls"] == ["s3", "s3", "s3"]
    assert metering.drain() == []  # nothing called: nothing to report


def test_the_console_panel_prices_per_million_events() -> None:
    meter = Meter()
    meter.calls([PUBLISH] * 10)
    for _ in range(10):
        meter.invocation("api", 99.2)  # billed as 100 ms at the api's 512 MB
    panel = meter.panel(events=10)
    per_m = panel["dollarsPerMillionEvents"]
    assert per_m["SNS publish requests"] == pytest.approx(0.50)
    assert per_m["API Gateway REST requests"] == pytest.approx(3.50)
    assert per_m["Lambda duration (GB-s, arm64)"] == pytest.approx(0.1 * 0.5 * cost.LAMBDA_GB_SECOND_ARM * 1_000_000)
    assert panel["pricesAsOf"] == cost.AS_OF and panel["invocations"] == {"api": 10}
    meter.invocation("persister-1", 10)  # a poller's environment counts as its function
    assert meter.panel(events=10)["invocations"]["persister"] == 1
    assert Meter().panel(events=0)["totalPerMillionEvents"] == 0


def test_an_idle_stack_shows_idle_cost_apart() -> None:
    """Pollers waiting on empty queues for an hour and ten events: the per-event figures hold only the events."""
    meter = Meter({"persister": 256, "archive": 256})
    meter.calls([receive(0)] * 7200)
    meter.calls([PUBLISH] * 10 + [receive(10)])
    panel = meter.panel(events=10)
    per_m = panel["dollarsPerMillionEvents"]
    assert per_m["SQS requests (SNS deliveries, receives, deletes)"] == pytest.approx(11 / 10 * 0.40)  # per event
    assert panel["idle"] == {
        "dollarsPerMonth": pytest.approx(cost.idle_dollars_per_month(2)),
        "consumers": 2,
        "emptyReceivesCounted": 7200,
    }


def test_bench_prices_with_the_same_model() -> None:
    counter = CallCounter()
    counter.units.update(cost.units_of([PUBLISH] * 4 + [emulator(20.0, ["sns"])]))
    ours = {"accepted": 4, "invocations": {}, "invocation_ms_each": {"api": [10.0] * 4}, "statuses": {"202": 4}}
    model = bench_cost.model(counter, ours, topology.load("dev", STACK_CONFIGS), seed_put_ms=5.0)
    expected = cost.dollars(
        dict(counter.units),
        lambda_requests={"api": 4},
        lambda_gb_s={"api": cost.gb_seconds([10.0] * 4, cost.MEMORY_MB["api"])},
        api_requests=4,
    )
    assert model["dollars_per_million_events"] == {k: v * 250_000 for k, v in expected.items()}
    assert model["dollars_per_million_events_total"] == pytest.approx(sum(expected.values()) * 250_000)
    assert "CloudWatch Logs ingestion" in model["dollars_per_million_events"]
    assert model["prices_as_of"] == cost.AS_OF
    assert model["idle"]["consumers"] == len(topology.load("dev").consumers)


def test_bench_counts_the_emulator_record_as_no_aws_call() -> None:
    counter = CallCounter()
    counter.enabled = True
    counter.replay([PUBLISH, emulator(5.0, ["sns"])])
    assert dict(counter.calls) == {("sns", "Publish"): 1}
    assert cost.unit(dict(counter.units), "lambda", "emulator_mb_ms") == pytest.approx(5.0 * 512)


def test_the_bench_report_says_what_each_figure_is() -> None:
    from bench import report

    counter = CallCounter()
    counter.units.update(cost.units_of([PUBLISH] * 4))
    ours = {"accepted": 4, "invocations": {}, "invocation_ms_each": {"api": [10.0] * 4}, "statuses": {"202": 4}}
    text = "\n".join(report._cost(bench_cost.model(counter, ours, topology.load("dev"), seed_put_ms=5.0)))
    handler = {"ms": 300.0, "floor": "boto3 + sns", "floor_ms": 250.0, "ratio": 1.2, "target": "<= 1.5x", "met": False}
    text += "\n".join(report._coldstart({"tracing": False, "runs": 3, "handlers": {"handlers.api": handler}}))
    assert "CloudWatch Logs ingestion" in text and "Idle, not per event" in text and "total" in text
    assert "one function per message costs" in text and "Not in these figures: CloudFront, the WAF" in text
    for internal in ("NOT met", "target", "seed", "as specified"):
        assert internal not in text, internal
    assert "met" not in text.split()
