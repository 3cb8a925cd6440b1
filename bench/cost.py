"""Counted calls and units -> calls per 1,000 events and dollars per million events, beside one function per message.

The comparison design, one function per message: per event one SQS SendMessage (API -> queue),
one Lambda invocation and one DynamoDB PutItem. Its invocation is billed at 128 MB (the smallest,
in its favour) for one DynamoDB round trip (fanout/cost.py AWS_CALL_MS), its only work: the same
assumption that prices fanout's own functions' calls.
"""

from __future__ import annotations

import math
from typing import Any

from bench.calls import CallCounter
from fanout import cost as P


def model(counter: CallCounter, ours: dict[str, Any], topo: Any, seed_put_ms: float) -> dict[str, Any]:
    n = ours["accepted"]
    per_k = 1000 / n
    per_m = 1_000_000 / n
    units: dict[tuple[str, str, str], float] = dict(counter.units)

    def unit(service: str, kind: str, resource: str | None = None) -> float:
        return sum(v for (s, k, r), v in units.items() if s == service and k == kind and resource in (None, r))

    persister_queue = topo.queue_name(topo.consumer("persister"))
    table = topo.table_name
    invocations = ours["invocations"]
    each = ours["invocation_ms_each"]

    lambda_requests = {fn: len(ms) for fn, ms in each.items()}
    lambda_gb_s = {fn: P.gb_seconds(ms, P.MEMORY_MB.get(fn, 256)) for fn, ms in each.items()}

    # Dollars for the whole run, by line: the one cost model (fanout/cost.py), as the local console's panel.
    lines = P.dollars(
        units, lambda_requests=lambda_requests, lambda_gb_s=lambda_gb_s, api_requests=ours["statuses"].get("202", 0)
    )
    ours_total = {k: v * per_m for k, v in lines.items()}

    # The persistence path: from the accepted event to the stored item (topic, persister queue,
    # persister function, data table). Announcing on the bus is a feature the comparison lacks: shown apart.
    persister_gb_s = P.aws_gb_seconds(units, lambda_gb_s.get("persister", 0.0), f"{topo.prefix}-persister")
    persistence = {
        "SNS publish": unit("sns", "publish") * P.SNS_PUBLISH,
        "SQS persister queue": (unit("sqs", "request", persister_queue) + unit("sqs", "delivery", persister_queue))
        * P.SQS_REQUEST,
        "Lambda persister requests": lambda_requests.get("persister", 0) * P.LAMBDA_REQUEST,
        "Lambda persister GB-s": persister_gb_s * P.LAMBDA_GB_SECOND_ARM,
        "DynamoDB data table WRU": unit("dynamodb", "wru", table) * P.DDB_WRITE_UNIT,
    }
    ours_persist = {k: v * per_m for k, v in persistence.items()}
    wru_per_event = unit("dynamodb", "wru", table) / n
    one_call_ms = P.AWS_CALL_MS["dynamodb"]
    seed_persist = {
        "SQS SendMessage": 1_000_000 * P.SQS_REQUEST,
        "Lambda requests": 1_000_000 * P.LAMBDA_REQUEST,
        "Lambda GB-s (128 MB)": 1_000_000 * math.ceil(one_call_ms) / 1000 * 0.125 * P.LAMBDA_GB_SECOND_ARM,
        "DynamoDB PutItem WRU": 1_000_000 * wru_per_event * P.DDB_WRITE_UNIT,
    }
    calls_per_k = {
        f"{service} {operation}": calls * per_k for (service, operation), calls in sorted(counter.calls.items())
    }
    calls_per_k.update(
        {f"lambda Invoke {fn}": count * per_k for fn, count in sorted(invocations.items())},
    )
    calls_per_k["sqs (SNS delivery, derived)"] = unit("sqs", "delivery") * per_k
    persist_calls = (
        unit("sns", "publish")
        + unit("sqs", "request", persister_queue)
        + unit("sqs", "delivery", persister_queue)
        + lambda_requests.get("persister", 0)
        + sum(c for (s, o), c in counter.calls.items() if s == "dynamodb" and o == "BatchWriteItem")
    ) * per_k
    ours_sum, seed_sum = sum(ours_persist.values()), sum(seed_persist.values())
    consumers = len(topo.consumers)
    return {
        "events": n,
        "calls_per_1000_events": calls_per_k,
        "http_attempts_per_1000_events": counter.total_attempts() * per_k,
        "units_per_1000_events": {f"{s}.{k}[{r}]": v * per_k for (s, k, r), v in sorted(units.items())},
        "dollars_per_million_events": ours_total,
        "dollars_per_million_events_total": sum(ours_total.values()),
        "idle": {
            "consumers": consumers,
            "dollars_per_month": P.idle_dollars_per_month(consumers),
            "empty_receives_counted": unit("sqs", "idle_receive"),
        },
        "assumptions": {
            "aws_call_ms": P.AWS_CALL_MS,
            "log_bytes_per_invocation": {
                **P.FUNCTION_LOG_BYTES,
                "consumer": P.CONSUMER_LOG_BYTES,
                "lambda_platform": P.LAMBDA_PLATFORM_LOG_BYTES,
            },
            "log_bytes_per_consumer_record": P.CONSUMER_LOG_BYTES_PER_RECORD,
            "access_log_bytes_per_request": P.ACCESS_LOG_BYTES,
        },
        "persistence": {
            "ours": ours_persist,
            "seed": seed_persist,
            "ours_total": ours_sum,
            "seed_total": seed_sum,
            "seed_over_ours": seed_sum / ours_sum if ours_sum else None,
            "calls_per_1000_ours": persist_calls,
            "calls_per_1000_seed": 3000.0,
            "wru_per_event": wru_per_event,
            "seed_put_item_ms": seed_put_ms,
            "seed_lambda_ms": one_call_ms,
        },
        "prices_as_of": P.AS_OF,
        "region": P.REGION,
    }
