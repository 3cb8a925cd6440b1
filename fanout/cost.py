"""The one cost model: AWS list prices, billed units per API call, and dollars from counted units.

`make bench` (bench/) and the local console's cost panel (GET /_local/cost) both price what the
stack did with this module: the calls the functions made are turned into billed units (items,
entries, 64 KB chunks) by `request_units`/`response_units`, and units into dollars by `dollars`.
Prices: region us-east-1, on-demand, no free tier, per unit (not per million) so the arithmetic
stays obvious; checked against the public pricing pages on AS_OF, never fetched at run time, so
re-check them when that date gets old.

Per event means what traffic adds. What a stack costs with no traffic (Lambda's pollers' empty
receives, the WAF, alarms, KMS keys) is idle cost: empty receives are counted apart (`idle_receive`)
and never enter the per-event lines. Not counted per event: CloudFront and the WAF's per-request
charge (the web app's traffic, not the API's), X-Ray (off by default), CloudWatch metrics and alarms
(a monthly price per metric, not per event), storage (S3, DynamoDB, log retention), data transfer.

Two figures are a model, not a measurement, and say so:
- Lambda duration: locally a function's calls wait on the emulator (moto), far slower than AWS. The
  time the calls spent there is measured (fanout.local.metering) and replaced by AWS_CALL_MS per call,
  an assumed in-region round trip; the handler's own time is kept as measured.
- CloudWatch Logs ingestion: the bytes each function writes per invocation at the deployed level
  (INFO, metrics on), measured by tests/unit/test_log_volume.py, plus Lambda's own START/END/REPORT
  lines and one API Gateway access log line per request.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import Counter
from typing import Any

AS_OF = "2025-06-01"
REGION = "us-east-1"
SOURCES = {
    "sns": "https://aws.amazon.com/sns/pricing/",
    "sqs": "https://aws.amazon.com/sqs/pricing/",
    "dynamodb": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "events": "https://aws.amazon.com/eventbridge/pricing/",
    "lambda": "https://aws.amazon.com/lambda/pricing/",
    "apigateway": "https://aws.amazon.com/api-gateway/pricing/",
    "s3": "https://aws.amazon.com/s3/pricing/",
    "logs": "https://aws.amazon.com/cloudwatch/pricing/",
}

MILLION = 1_000_000
CHUNK_BYTES = 64 * 1024  # SNS, SQS and EventBridge bill every started 64 KB of payload as one request

# Dollars per billed unit.
SNS_PUBLISH = 0.50 / MILLION  # per publish request (per 64 KB chunk); a PublishBatch bills its total payload
SNS_TO_SQS_DELIVERY = 0.0  # SNS charges nothing to deliver to SQS ...
SQS_REQUEST = 0.40 / MILLION  # ... but the queue bills each delivered message as a request (counted as one here)
DDB_WRITE_UNIT = 0.625 / MILLION  # on-demand WRU: one per started 1 KB of each item written (since 2024-11-01)
DDB_READ_UNIT = 0.125 / MILLION  # on-demand RRU: one strongly consistent read of 4 KB; eventual reads cost half
EVENTBRIDGE_EVENT = 1.00 / MILLION  # custom events put on a bus, per entry (per 64 KB chunk)
LAMBDA_REQUEST = 0.20 / MILLION
LAMBDA_GB_SECOND_ARM = 0.0000133334  # arm64, first tier; the stack deploys arm64 (infra/package.py)
LAMBDA_GB_SECOND_X86 = 0.0000166667
API_GATEWAY_REST_REQUEST = 3.50 / MILLION  # REST API, first 333 million a month
S3_PUT = 0.005 / 1000  # PUT, COPY, POST, LIST requests (S3 Standard)
S3_GET = 0.0004 / 1000  # GET and other requests
LOGS_INGESTED_BYTE = 0.50 / 1024**3  # CloudWatch Logs ingestion, standard log class, per GB

# CloudWatch Logs bytes per invocation at the deployed level (INFO, metrics on); measured against the
# handlers by tests/unit/test_log_volume.py. Consumers of the kit write their metrics line (EMF) per
# invocation; their per-record lines are DEBUG.
LAMBDA_PLATFORM_LOG_BYTES = 260  # Lambda's START, END and REPORT lines (stated: their usual length)
FUNCTION_LOG_BYTES = {"api": 760, "authorizer": 600, "generator": 700}
CONSUMER_LOG_BYTES = 760  # the batch's "events received" line and the metrics line, per invocation
CONSUMER_LOG_BYTES_PER_RECORD = 30  # each event id on that line
ACCESS_LOG_BYTES = 450  # one API Gateway access log line (infra/components/api.py ACCESS_LOG_FORMAT)

# Assumed round trip of one call from Lambda to the service in the same region, in ms: stated, not
# measured here (the local emulator's own time is what it replaces).
AWS_CALL_MS = {"dynamodb": 10, "sqs": 10, "sns": 20, "events": 20, "s3": 30, "secretsmanager": 20}
AWS_CALL_MS_OTHER = 20
EMULATOR_SERVICE = "local"  # fanout.local.metering's record of an invocation's time spent in the emulator

# Idle: a Lambda SQS event source mapping polls its queue whether or not events come (stated: five
# pollers long-polling 20 s, about 648,000 ReceiveMessage requests a month per consumer).
IDLE_RECEIVES_PER_CONSUMER_MONTH = 5 * 3 * 60 * 24 * 30

# What the functions are deployed with (infra/stack.py, fanout/topology.py), for GB-s.
MEMORY_MB = {"api": 512, "authorizer": 256, "persister": 256, "generator": 256}


def _chunks(size: int) -> int:
    return max(1, math.ceil(size / CHUNK_BYTES))


def _attr_size(value: dict[str, Any]) -> int:
    (kind, raw), *_ = value.items()
    if kind in ("S", "N", "B"):
        return len(str(raw).encode("utf-8"))
    if kind in ("M",):
        return sum(len(k.encode()) + _attr_size(v) for k, v in raw.items())
    if kind in ("L",):
        return sum(_attr_size(v) for v in raw)
    return len(json.dumps(raw).encode())


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values, in bytes."""
    return sum(len(name.encode("utf-8")) + _attr_size(value) for name, value in item.items())


def write_units(item: dict[str, Any]) -> int:
    return max(1, math.ceil(item_size(item) / 1024))


def _name(arn_or_url: str) -> str:
    return arn_or_url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def request_units(service: str, operation: str, params: dict[str, Any]) -> dict[tuple[str, str, str], float]:
    """Billed units a request costs, by (service, unit, resource); corrected in response_units."""
    if service == "sns" and operation == "Publish":
        return {("sns", "publish", _name(params.get("TopicArn", ""))): _chunks(len(params.get("Message", "").encode()))}
    if service == "sns" and operation == "PublishBatch":
        entries = params.get("PublishBatchRequestEntries", [])
        total = sum(len(e.get("Message", "").encode()) for e in entries)
        return {("sns", "publish", _name(params.get("TopicArn", ""))): _chunks(total)}
    if service == "sqs":
        # Only sends carry payload worth chunking; every other SQS action is one request.
        bodies = [params.get("MessageBody", "")] + [e.get("MessageBody", "") for e in params.get("Entries", [])]
        size = sum(len(str(b).encode()) for b in bodies)
        return {("sqs", "request", _name(params.get("QueueUrl", ""))): _chunks(size)}
    if service == "dynamodb" and operation == "BatchWriteItem":
        out: Counter[tuple[str, str, str]] = Counter()
        for table, reqs in params.get("RequestItems", {}).items():
            out[("dynamodb", "wru", table)] += sum(
                write_units(r["PutRequest"]["Item"]) for r in reqs if "PutRequest" in r
            )
        return dict(out)
    if service == "dynamodb" and operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return {("dynamodb", "wru", params.get("TableName", "")): write_units(params.get("Item") or {"k": {"S": ""}})}
    if service == "dynamodb" and operation in ("GetItem", "Query", "Scan", "BatchGetItem"):
        return {("dynamodb", "read_calls", params.get("TableName", "")): 1}
    if service == "events" and operation == "PutEvents":
        entries = params.get("Entries", [])
        bus = _name(entries[0].get("EventBusName", "default")) if entries else "default"
        return {("events", "entries", bus): sum(_chunks(len(json.dumps(e).encode())) for e in entries)}
    if service == "s3" and operation in ("PutObject", "CopyObject", "CompleteMultipartUpload", "ListObjectsV2"):
        return {("s3", "put", params.get("Bucket", "")): 1}
    if service == "s3" and operation == "GetObject":
        return {("s3", "get", params.get("Bucket", "")): 1}
    if service == EMULATOR_SERVICE and operation == "Invocation":
        return _emulator_units(params)
    return {}


def _emulator_units(params: dict[str, Any]) -> dict[tuple[str, str, str], float]:
    """MB-ms to take off the measured duration (time waiting on the emulator) and to add back (AWS's)."""
    function, memory = str(params.get("function", "")), float(params.get("memory_mb") or 0)
    aws_ms = sum(AWS_CALL_MS.get(str(service), AWS_CALL_MS_OTHER) for service in params.get("calls") or [])
    return {
        ("lambda", "emulator_mb_ms", function): float(params.get("emulator_ms") or 0) * memory,
        ("lambda", "aws_call_mb_ms", function): aws_ms * memory,
    }


def response_units(
    service: str, operation: str, params: dict[str, Any], parsed: dict[str, Any]
) -> dict[tuple[str, str, str], int]:
    if service == "dynamodb" and operation == "BatchWriteItem":
        # Only processed items are billed; UnprocessedItems are sent (and counted) again.
        out: Counter[tuple[str, str, str]] = Counter()
        for table, reqs in (parsed.get("UnprocessedItems") or {}).items():
            out[("dynamodb", "wru", table)] -= sum(
                write_units(r["PutRequest"]["Item"]) for r in reqs if "PutRequest" in r
            )
        return dict(out)
    if service == "sqs" and operation == "ReceiveMessage":
        queue = _name(params.get("QueueUrl", ""))
        if not parsed.get("Messages"):
            # An empty receive is a poller waiting: idle cost, whatever the traffic, not per event.
            return {("sqs", "request", queue): -1, ("sqs", "idle_receive", queue): 1}
        # A first receive means SNS delivered it: SQS bills that delivery as one request (SNS bills nothing).
        first = sum(
            1 for m in parsed.get("Messages", []) if m.get("Attributes", {}).get("ApproximateReceiveCount", "1") == "1"
        )
        return {("sqs", "delivery", queue): first} if first else {}
    if service == "events" and operation == "PutEvents":
        failed = parsed.get("FailedEntryCount", 0)
        if failed:
            entries = params.get("Entries", [])
            bus = _name(entries[0].get("EventBusName", "default")) if entries else "default"
            return {("events", "entries", bus): -failed}
    return {}


Units = dict[tuple[str, str, str], float]  # (service, unit, resource) -> amount


def unit(units: Units, service: str, kind: str, resource: str | None = None) -> float:
    return sum(v for (s, k, r), v in units.items() if s == service and k == kind and resource in (None, r))


def gb_seconds(durations_ms: list[float], memory_mb: int) -> float:
    # Lambda bills each invocation's duration rounded up to the millisecond.
    return sum(math.ceil(ms) for ms in durations_ms) / 1000 * memory_mb / 1024


def aws_gb_seconds(units: Units, measured_gb_s: float, function: str | None = None) -> float:
    """GB-s as on AWS: the measured durations, less the time calls waited on the emulator, plus AWS's round trips.

    `function` (its deployed name, as AWS_LAMBDA_FUNCTION_NAME) limits the correction to one function.
    """
    emulator = unit(units, "lambda", "emulator_mb_ms", function) / 1000 / 1024
    aws = unit(units, "lambda", "aws_call_mb_ms", function) / 1000 / 1024
    return max(0.0, measured_gb_s - emulator + aws)


def log_bytes(lambda_requests: dict[str, float], api_requests: float, records: float) -> float:
    """CloudWatch Logs bytes ingested for these invocations, the records consumers got and API requests."""
    functions = sum(
        n * (LAMBDA_PLATFORM_LOG_BYTES + FUNCTION_LOG_BYTES.get(fn, CONSUMER_LOG_BYTES))
        for fn, n in lambda_requests.items()
    )
    return functions + records * CONSUMER_LOG_BYTES_PER_RECORD + api_requests * ACCESS_LOG_BYTES


def dollars(
    units: Units,
    *,
    lambda_requests: dict[str, float],
    lambda_gb_s: dict[str, float],
    api_requests: float,
) -> dict[str, float]:
    """Dollars by line (the service and what it bills) for counted units, invocations and measured GB-seconds.

    Empty receives (idle polling) are not in these lines: see `idle_dollars_per_month`.
    """
    return {
        "API Gateway REST requests": api_requests * API_GATEWAY_REST_REQUEST,
        "Lambda requests": sum(lambda_requests.values()) * LAMBDA_REQUEST,
        "Lambda duration (GB-s, arm64)": aws_gb_seconds(units, sum(lambda_gb_s.values())) * LAMBDA_GB_SECOND_ARM,
        "SNS publish requests": unit(units, "sns", "publish") * SNS_PUBLISH,
        "SQS requests (SNS deliveries, receives, deletes)": (
            unit(units, "sqs", "request") + unit(units, "sqs", "delivery")
        )
        * SQS_REQUEST,
        "DynamoDB write request units": unit(units, "dynamodb", "wru") * DDB_WRITE_UNIT,
        "DynamoDB read request units": unit(units, "dynamodb", "read_calls") * DDB_READ_UNIT,
        "EventBridge custom events": unit(units, "events", "entries") * EVENTBRIDGE_EVENT,
        "S3 requests (archive PUTs)": unit(units, "s3", "put") * S3_PUT + unit(units, "s3", "get") * S3_GET,
        "CloudWatch Logs ingestion": log_bytes(lambda_requests, api_requests, unit(units, "sqs", "delivery"))
        * LOGS_INGESTED_BYTE,
    }


def idle_dollars_per_month(consumers: int) -> float:
    """What the consumers' pollers cost a month with no traffic at all (SQS empty receives)."""
    return consumers * IDLE_RECEIVES_PER_CONSUMER_MONTH * SQS_REQUEST


def units_of(records: list[dict[str, Any]]) -> Units:
    """Billed units of recorded calls ({"service", "operation", "params", "parsed"} each)."""
    out: Counter[tuple[str, str, str]] = Counter()
    for r in records:
        service, operation, params = r["service"], r["operation"], r.get("params") or {}
        with contextlib.suppress(Exception):  # an odd call must never break what observes it
            out.update(request_units(service, operation, params))
            out.update(response_units(service, operation, params, r.get("parsed") or {}))
    return dict(out)
