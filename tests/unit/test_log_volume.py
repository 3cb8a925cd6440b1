"""What the functions write to CloudWatch Logs at the deployed level (INFO, metrics on), against the cost model.

CloudWatch Logs bills every byte ingested ($0.50 per GB): the cost model (fanout/cost.py) prices the
bytes per invocation measured here, so a line added per record shows up as a failing test here.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from unit_support import JWT_SECRET, METHOD_ARN, call_api, make_token, sqs_event

from fanout import cost, topology, tracing
from fanout_kit import DataGenerated, events
from handlers import api as api_module
from handlers import archive, authorizer, persister

Written = Callable[[], str]


def generated(i: int) -> dict[str, Any]:
    return events.build(
        DataGenerated.TYPE,
        source="fanout.test",
        subject="alice",
        data={"informationOne": f"temperature at warehouse-{i}", "informationTwo": "21.4 °C"},
    )


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Written]:
    """Everything the handlers write from here on, as on Lambda: log lines at INFO, then the metrics line."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "fanout")
    buffer = io.StringIO()
    restore = []
    for logger in (archive.handler.logger, persister.handler.logger, api_module.logger, authorizer.logger):
        restore.append((logger, logger.log_level, logger.registered_handler.stream))
        logger.setLevel("INFO")
        logger.registered_handler.setStream(buffer)

    def take() -> str:
        out = buffer.getvalue() + capsys.readouterr().out  # Powertools prints the metrics (EMF) line
        buffer.seek(0)
        buffer.truncate()
        return out

    take()
    yield take
    for logger, level, stream in restore:
        logger.setLevel(level)
        logger.registered_handler.setStream(stream)


def size(text: str) -> int:
    return len(text.encode())


def test_a_consumer_writes_per_batch_not_per_record(s3: Any, context: Any, written: Written) -> None:
    archive.handler(sqs_event(generated(0)), context)
    one = size(written())
    archive.handler(sqs_event(*[generated(i) for i in range(50)]), context)
    fifty = written()
    # 49 more records add their ids to the batch's line (about 29 bytes each), not a line each (about 440).
    assert size(fifty) - one <= 49 * cost.CONSUMER_LOG_BYTES_PER_RECORD
    assert "event received" not in fifty and fifty.count("\n") == 2


@pytest.mark.parametrize("records", [1, 10, 100])
def test_the_cost_model_holds_what_consumers_write(s3: Any, context: Any, written: Written, records: int) -> None:
    persister.handler(sqs_event(*[generated(i) for i in range(records)]), context)
    measured = size(written())
    modelled = cost.CONSUMER_LOG_BYTES + records * cost.CONSUMER_LOG_BYTES_PER_RECORD
    # The model is the upper side (names and ARNs on AWS are longer than in tests), never far above.
    assert measured <= modelled <= measured * 1.3 + 100


def test_the_cost_model_holds_what_the_api_and_authorizer_write(aws: Any, context: Any, written: Written) -> None:
    assert call_api(context, "POST", "/data", body={"informationOne": "a", "informationTwo": "b"}).status == 202
    api_bytes = size(written())
    authorizer.handler(
        {"type": "TOKEN", "authorizationToken": f"Bearer {make_token(JWT_SECRET)}", "methodArn": METHOD_ARN}, context
    )
    authorizer_bytes = size(written())
    for name, measured in (("api", api_bytes), ("authorizer", authorizer_bytes)):
        modelled = cost.FUNCTION_LOG_BYTES[name]
        assert measured <= modelled <= measured * 1.3, (name, measured, modelled)


def test_the_access_log_line_is_the_size_the_model_prices() -> None:
    from infra.components.api import ACCESS_LOG_FORMAT

    typical = {
        "requestId": "6f9c1d2e-3b4a-4c5d-8e7f-0a1b2c3d4e5f",
        "requestTime": "03/Dec/2026:20:00:00 +0000",
        "ip": "203.0.113.42",
        "userAgent": "python-requests/2.32.3",
        "httpMethod": "POST",
        "resourcePath": "/data",
        "path": "/prd/data",
        "status": "202",
        "protocol": "HTTP/1.1",
        "responseLength": "40",
        "latencyMs": "38",
        "integrationLatencyMs": "35",
        "principalId": "9f3e2d1c-0b4a-4c5d-8e7f-112233445566",
        "authorizerError": "-",
        "error": "-",
        "xrayTraceId": "-",
    }
    line = json.dumps({k: typical[k] for k in json.loads(ACCESS_LOG_FORMAT)}, separators=(",", ":"))
    assert re.fullmatch(r"\{.*\}", line) and size(line) <= cost.ACCESS_LOG_BYTES <= size(line) * 1.3


def test_trace_on_aws_reads_an_attempt_from_the_batch_line(s3: Any, context: Any, written: Written) -> None:
    batch = [generated(i) for i in range(3)]
    archive.handler(sqs_event(*batch), context)
    (line,) = [json.loads(x) for x in written().splitlines() if '"events received"' in x]
    assert line["event_ids"] == [e["id"] for e in batch]
    topo = topology.load("dev")
    group = f"/aws/lambda/{topo.prefix}-archive"
    row = {"@log": f"123456789012:{group}", "@message": json.dumps(line), "@timestamp": "2026-01-01 00:00:01.000"}
    doc = tracing.from_logs([row], batch[1]["id"], topo, {group: "archive"})
    assert doc["consumers"]["archive"] == {"state": "processed", "attempts": 1, "error": None}
