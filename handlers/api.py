"""The REST API: POST /data, GET /data, GET /data/{id}, GET /openapi.json.

The caller is whoever the authorizer says (its context), never anything in the request.
Domain errors become HTTP answers in one place, as {"message": ...}.

No `from __future__ import annotations` here: Powertools builds the OpenAPI document from the routes'
annotations, and as strings (`"Response[str]"`) they failed to resolve depending on import order, which
broke /openapi.json.
"""

import base64
import binascii
import json
import re
import time
import warnings
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from fanout_kit import DataGenerated, ids, observability, schemas
from handlers.core import auth, clients, cursor, idempotency, jsonbody, publisher, store
from handlers.core.settings import cursor_key

MAX_BODY_BYTES = 64 * 1024
DEFAULT_LIMIT, MAX_LIMIT = 25, 100
ROUTES = {"/data": {"GET", "POST"}, "/data/{id}": {"GET"}, "/openapi.json": {"GET"}}

logger = Logger(service="api")
metrics = observability.metrics("api")
tracer = observability.tracer("api")
clients.warm("sns", "dynamodb")
app = APIGatewayRestResolver()
# Reads and 4xx answers publish no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", "No application metrics to publish")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        headers=headers,
    )


@app.exception_handler(ApiError)
def _api_error(exc: ApiError) -> Response[str]:
    return _answer(exc.status, {"message": exc.message})


@app.exception_handler(schemas.SchemaError)
def _schema_error(exc: schemas.SchemaError) -> Response[str]:
    return _answer(400, {"message": str(exc)})


@app.exception_handler(idempotency.KeyReused)
def _key_reused(exc: idempotency.KeyReused) -> Response[str]:
    return _answer(422, {"message": str(exc)})


@app.exception_handler(idempotency.KeyInProgress)
def _key_in_progress(exc: idempotency.KeyInProgress) -> Response[str]:
    return _answer(409, {"message": str(exc)})


@app.not_found
def _not_found(_: Exception) -> Response[str]:
    path = app.current_event.path
    for pattern, methods in ROUTES.items():
        if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", pattern), path):
            allow = ", ".join(sorted(methods))
            return _answer(
                405,
                {"message": f"method {app.current_event.http_method} not allowed on {path}"},
                {"Allow": allow},
            )
    return _answer(404, {"message": f"no route for {path}"})


def _caller(role: str) -> str:
    """The user id from the authorizer context; the role is re-checked as defence in depth."""
    ctx = app.current_event.request_context.authorizer.raw_event or {}
    sub = ctx.get("sub") or ctx.get("principalId")
    if not sub:
        raise ApiError(401, "Unauthorized")
    # API Gateway caches the authorizer's answer per token for its TTL, even past the token's exp.
    exp = ctx.get("exp")
    if exp is not None and float(exp) <= time.time():
        raise ApiError(401, "Unauthorized")
    if role not in str(ctx.get("roles", "")).split(","):
        raise ApiError(403, f"this token lacks the role {role}")
    return str(sub)


def _json_body() -> Any:
    event = app.current_event
    raw = event.body or ""
    try:
        data = base64.b64decode(raw, validate=True) if event.is_base64_encoded else raw.encode("utf-8")
    except binascii.Error:
        raise ApiError(400, "body is not valid base64 (isBase64Encoded is set)") from None
    except UnicodeEncodeError:
        raise ApiError(400, "body is not valid UTF-8") from None
    if len(data) > MAX_BODY_BYTES:
        raise ApiError(413, f"body is larger than {MAX_BODY_BYTES // 1024} KiB")
    if not data.strip():
        raise ApiError(400, "body is empty; expected a JSON object")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "body is not valid UTF-8") from None

    try:
        # Strict: duplicate keys and NaN/Infinity refused, errors worded as the local gateway words them.
        document = jsonbody.loads(text)
    except jsonbody.JsonBodyError as exc:
        raise ApiError(400, str(exc)) from None
    try:
        # A \ud800-style escape decodes to a lone surrogate, which no UTF-8 message can carry.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "body is not valid UTF-8: it escapes an unpaired surrogate") from None
    except RecursionError:
        raise ApiError(400, "body is nested too deeply") from None
    return document


@app.post("/data")
@tracer.capture_method
def post_data() -> Response[str]:
    user = _caller(auth.WRITE)
    body = _json_body()
    schemas.validate("data.v1.json", body)
    key = app.current_event.headers.get("Idempotency-Key") or app.current_event.headers.get("idempotency-key")
    correlation_id = app.current_event.request_context.request_id

    def publish() -> dict[str, Any]:
        event = DataGenerated.new(source="fanout.api", subject=user, data=body, correlation_id=correlation_id)
        publisher.publish(event)
        return {"id": event.id}

    if key is None:
        result = publish()
    else:
        if not idempotency.valid_key(key):
            raise ApiError(400, "Idempotency-Key must be 1 to 255 printable characters")
        result = idempotency.once(user, key, body, publish, app.lambda_context)
    metrics.add_metric(name="DataAccepted", unit=MetricUnit.Count, value=1)
    logger.info("data accepted", extra={"event_id": result["id"]})
    return _answer(202, result)


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


@app.get("/data")
@tracer.capture_method
def list_data() -> Response[str]:
    user = _caller(auth.READ)
    params = app.current_event.query_string_parameters or {}
    unknown = set(params) - {"limit", "cursor"}
    if unknown:
        names = ", ".join(jsonbody.quoted(n) for n in sorted(unknown))
        raise ApiError(400, f"unknown query parameter{'s' if len(unknown) > 1 else ''} {names}")
    limit = _limit(params.get("limit"))
    after = None
    if "cursor" in params:
        try:
            after = cursor.decode(cursor_key(), user, params["cursor"])
        except cursor.InvalidCursor as exc:
            raise ApiError(400, str(exc)) from None
    records, last = store.page(user, limit, after)
    return _answer(
        200,
        {
            "items": [r.to_api() for r in records],
            "nextCursor": cursor.encode(cursor_key(), user, last) if last else None,
        },
    )


@app.get("/data/<item_id>")
@tracer.capture_method
def get_data(item_id: str) -> Response[str]:
    user = _caller(auth.READ)
    # Another user's item and a missing one look the same: 404, nothing to probe.
    record = store.get(user, item_id) if ids.is_id(item_id) else None
    if record is None:
        raise ApiError(404, f"no item {item_id}")
    return _answer(200, record.to_api())


@app.get("/openapi.json")
def openapi() -> Response[str]:
    from handlers.core.openapi import document

    return _answer(200, document(app))


# log_event=False always: the event carries the Authorization header, and POWERTOOLS_LOGGER_LOG_EVENT=true
# (a debugging switch) must not put tokens in the logs.
# clear_state: no key of the previous invocation (a warm container) reaches this one's lines.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
