"""Logs never contain a token: the shared stack's DEBUG log, for the tokens this file sends, and the
handlers' own output in-process at DEBUG. Every other token the fuzz and security suites send is
checked against the same log when the session ends (tests/fuzz/live.py), whatever order they ran in."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import jwt
import pytest
import requests

from tests.fuzz.live import log_path, remember, secrets, token
from tests.support.stack import SECRET, Stack


def test_stack_logs_hold_no_token(stack: Stack) -> None:
    user = f"log-{uuid.uuid4().hex[:8]}"
    sent: set[str] = set()
    for i in range(30):
        good = token(stack, f"{user}-{i}")
        requests.post(
            f"{stack.api_url}/data",
            json={"informationOne": f"a{i}", "informationTwo": "b"},
            headers={"Authorization": f"Bearer {good}"},
            timeout=10,
        )
        bad = remember(jwt.encode({"sub": f"{user}-{i}", "exp": int(time.time()) + 60}, "z" * 48, algorithm="HS256"))
        requests.get(f"{stack.api_url}/data", headers={"Authorization": f"Bearer {bad}"}, timeout=10)
        sent |= {good, bad}
    time.sleep(1)
    text = log_path(stack).read_text(encoding="utf-8", errors="replace")
    assert "token refused" in text and "token accepted" in text, "the DEBUG logs were not captured"
    assert len(sent) == 60
    leaked = [s[:16] + "..." for s in secrets(sent) if s in text]
    assert not leaked, f"{len(leaked)} tokens found in the stack's logs: {leaked[:3]}"


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers.core import clients, settings

    for name, value in {
        "JWT_ALGORITHMS": "HS256",
        "JWT_SECRET": SECRET,
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    settings.auth_settings.cache_clear()
    clients.reset()


def test_handlers_log_no_token_at_debug(
    handler_env: None, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The authorizer sees the raw header; the api function gets it among the request headers."""
    from handlers import api, authorizer

    caplog.set_level(logging.DEBUG)
    now = int(time.time())
    good = jwt.encode({"sub": "logcheck", "Role": ["data.read"], "exp": now + 60}, SECRET, algorithm="HS256")
    bad = jwt.encode({"sub": "logcheck", "Role": ["data.read"], "exp": now - 60}, SECRET, algorithm="HS256")
    arn = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/dev/GET/data"

    class Ctx:
        function_name, memory_limit_in_mb, aws_request_id = "fn", 256, "req-1"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"

        def get_remaining_time_in_millis(self) -> int:
            return 10_000

    authorizer.handler({"type": "TOKEN", "authorizationToken": f"Bearer {good}", "methodArn": arn}, Ctx())
    with pytest.raises(Exception, match="Unauthorized"):
        authorizer.handler({"type": "TOKEN", "authorizationToken": f"Bearer {bad}", "methodArn": arn}, Ctx())
    event: dict[str, Any] = {
        "resource": "/data/{id}",
        "path": "/data/not-an-id",
        "httpMethod": "GET",
        "headers": {"Authorization": f"Bearer {good}"},
        "multiValueHeaders": {"Authorization": [f"Bearer {good}"]},
        "queryStringParameters": None,
        "pathParameters": {"id": "not-an-id"},
        "requestContext": {
            "requestId": "r-1",
            "stage": "dev",
            "authorizer": {"sub": "logcheck", "roles": "data.read", "principalId": "logcheck"},
        },
        "body": None,
        "isBase64Encoded": False,
    }
    answer = api.handler(event, Ctx())
    assert json.loads(answer["body"])["message"]
    out = capfd.readouterr()
    logged = out.out + out.err + caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "token refused" in logged and "token accepted" in logged
    for secret in secrets({good, bad}):
        assert secret not in logged
