"""Builders shared by the unit tests: tokens, API Gateway REST v1 proxy events, SQS batches."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jsonschema import Draft7Validator
from referencing import Registry, Resource

REGION = "us-east-1"
BUCKET = "fanout-unit-archive"  # the archive consumer's bucket in unit tests
JWT_SECRET = "unit-test-jwt-secret-that-is-long-enough-for-hs256"
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "TOPIC_ARN": f"arn:aws:sns:{REGION}:123456789012:data-events",
    "TABLE_NAME": "fanout-data",
    "IDEMPOTENCY_TABLE_NAME": "fanout-idempotency",
    "EVENT_BUS_NAME": "fanout-bus",
    "CURSOR_SECRET": "unit-test-cursor-secret",
    "JWT_ALGORITHMS": "HS256",
    "JWT_SECRET": JWT_SECRET,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "fanout-unit",
}
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
BOTH = ("data.read", "data.write")
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/dev/GET/data"
PREFIX = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/dev"


def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


def _registry() -> Registry:
    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def schema_validator(name: str) -> Draft7Validator:
    return Draft7Validator(load_schema(name), registry=REGISTRY)


def assert_valid(name: str, document: Any) -> None:
    errors = sorted(schema_validator(name).iter_errors(document), key=str)
    assert not errors, [e.message for e in errors]


def make_token(
    secret: str,
    *,
    sub: Any = "alice",
    roles: Any = BOTH,
    exp_in: int | None = 300,
    alg: str = "HS256",
    claims: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    payload: dict[str, Any] = {"iat": int(time.time())}
    if sub is not None:
        payload["sub"] = sub
    if roles is not None:
        payload["Role"] = list(roles) if isinstance(roles, tuple) else roles
    if exp_in is not None:
        payload["exp"] = int(time.time()) + exp_in
    payload.update(claims or {})
    for name in drop:
        payload.pop(name, None)
    return jwt.encode(payload, secret, algorithm=alg, headers=headers)


def api_event(
    method: str,
    path: str,
    *,
    body: str | bytes | dict[str, Any] | None = None,
    user: str | None = "alice",
    roles: tuple[str, ...] = BOTH,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    base64_body: bool = False,
    request_id: str | None = None,
) -> dict[str, Any]:
    """A REST v1 proxy event as API Gateway sends it after a TOKEN authorizer allowed the call."""
    if isinstance(body, dict):
        body = json.dumps(body)
    is_b64 = False
    if isinstance(body, bytes) or base64_body:
        raw = body if isinstance(body, bytes) else (body or "").encode("utf-8")
        body = base64.b64encode(raw).decode()
        is_b64 = True
    authorizer = None
    if user is not None:
        authorizer = {"sub": user, "roles": ",".join(roles), "principalId": user}
    resource = "/data/{id}" if path.startswith("/data/") else path
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/dev{path}",
            "stage": "dev",
            "requestId": request_id or str(uuid.uuid4()),
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": authorizer,
        },
        "body": body,
        "isBase64Encoded": is_b64,
    }


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, Any]

    @property
    def message(self) -> str:
        return self.body["message"]


def call_api(context: Any, method: str, path: str, **kwargs: Any) -> Answer:
    from handlers import api

    response = api.handler(api_event(method, path, **kwargs), context)
    headers = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name, values[0] if len(values) == 1 else values)
    text = response.get("body") or ""
    if response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    return Answer(response["statusCode"], json.loads(text) if text else None, headers)


def sqs_record(body: str, message_id: str | None = None) -> dict[str, Any]:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "handle-" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {},
        "md5OfBody": "0",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:persister",
        "awsRegion": "us-east-1",
    }


def sqs_event(*bodies: str | dict[str, Any]) -> dict[str, Any]:
    return {"Records": [sqs_record(b if isinstance(b, str) else json.dumps(b)) for b in bodies]}


def failures(response: dict[str, Any]) -> set[str]:
    return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}


@dataclass
class Aws:
    """Handles on the mocked resources, and readers for what handlers sent."""

    ddb: Any
    sns: Any
    sqs: Any
    events: Any
    topic_arn: str
    table: str
    idempotency_table: str
    bus: str
    topic_queue_url: str
    bus_queue_url: str

    def _drain(self, url: str, with_attributes: bool = False) -> list[Any]:
        out: list[Any] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not got:
                return out
            for m in got:
                body = json.loads(m["Body"])
                out.append((body, m.get("MessageAttributes", {})) if with_attributes else body)
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def published(self) -> list[dict[str, Any]]:
        """CloudEvents published on the topic since the last call (raw delivery: the body is the event)."""
        return self._drain(self.topic_queue_url)

    def published_with_attributes(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return self._drain(self.topic_queue_url, with_attributes=True)

    def announced(self) -> list[dict[str, Any]]:
        """EventBridge events put on the bus since the last call (the full EventBridge envelope)."""
        return self._drain(self.bus_queue_url)

    def items(self) -> list[dict[str, Any]]:
        return self.ddb.scan(TableName=self.table)["Items"]
