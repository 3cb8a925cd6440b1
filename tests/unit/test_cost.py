"""One cost model (fanout/cost.py) for `make bench` and the console's cost panel."""

from __future__ import annotations

import pytest

from bench import cost as bench_cost
from bench.calls import CallCounter
from fanout import cost, topology
from fanout.local.costpanel import Meter

PUBLISH = {
    "service": "sns",
    "operation": "Publish",
    "params": {"TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "x"},
}


def test_units_and_dollars_follow_the_price_list() -> None:
    units = cost.units_of([PUBLISH, PUBLISH])
    assert units == {("sns", "publish", "t"): 2}
    lines = cost.dollars(units, lambda_requests={"api": 4}, lambda_gb_s={"api": 2.0}, api_requests=4)
    assert lines["SNS publish"] == pytest.approx(2 * cost.SNS_PUBLISH)
    assert lines["Lambda requests"] == pytest.approx(4 * cost.LAMBDA_REQUEST)
    assert lines["Lambda GB-s (arm64)"] == pytest.approx(2 * cost.LAMBDA_GB_SECOND_ARM)
    assert lines["API Gateway requests"] == pytest.approx(4 * cost.API_GATEWAY_REST_REQUEST)


def test_the_console_panel_prices_per_million_events() -> None:
    meter = Meter()
    meter.calls([PUBLISH] * 10)
    for _ in range(10):
        meter.invocation("api", 99.2)  # billed as 100 ms at the api's 512 MB
    panel = meter.panel(events=10)
    per_m = panel["dollarsPerMillionEvents"]
    assert per_m["SNS publish"] == pytest.approx(0.50)
    assert per_m["API Gateway requests"] == pytest.approx(3.50)
    assert per_m["Lambda GB-s (arm64)"] == pytest.approx(0.1 * 0.5 * cost.LAMBDA_GB_SECOND_ARM * 1_000_000)
    assert panel["pricesAsOf"] == cost.AS_OF and panel["invocations"] == {"api": 10}
    meter.invocation("persister-1", 10)  # a poller's environment counts as its function
    assert meter.panel(events=10)["invocations"]["persister"] == 1
    assert Meter().panel(events=0)["totalPerMillionEvents"] == 0


def test_bench_prices_with_the_same_model() -> None:
    counter = CallCounter()
    counter.units.update(cost.units_of([PUBLISH] * 4))
    ours = {"accepted": 4, "invocations": {}, "invocation_ms_each": {"api": [10.0] * 4}, "statuses": {"202": 4}}
    model = bench_cost.model(counter, ours, topology.load("dev"), seed_put_ms=5.0)
    expected = cost.dollars(
        dict(counter.units),
        lambda_requests={"api": 4},
        lambda_gb_s={"api": cost.gb_seconds([10.0] * 4, cost.MEMORY_MB["api"])},
        api_requests=4,
    )
    assert model["dollars_per_million_events"] == {k: v * 250_000 for k, v in expected.items() if v}
    assert model["prices_as_of"] == cost.AS_OF
