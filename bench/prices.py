"""AWS list prices the bench turns call counts into dollars with. The one place they live.

Region us-east-1, on-demand, no free tier, prices per unit (not per million) so the
arithmetic stays obvious. Checked against the public pricing pages on the date below;
the bench never fetches prices at run time, so re-check them when this date gets old.
"""

from __future__ import annotations

AS_OF = "2025-06-01"
REGION = "us-east-1"
SOURCES = {
    "sns": "https://aws.amazon.com/sns/pricing/",
    "sqs": "https://aws.amazon.com/sqs/pricing/",
    "dynamodb": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "events": "https://aws.amazon.com/eventbridge/pricing/",
    "lambda": "https://aws.amazon.com/lambda/pricing/",
    "apigateway": "https://aws.amazon.com/api-gateway/pricing/",
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

# What the functions are deployed with (infra/stack.py, fanout/topology.py), for GB-s.
MEMORY_MB = {"api": 512, "authorizer": 256, "persister": 256, "generator": 256}
