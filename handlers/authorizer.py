"""API Gateway TOKEN authorizer: a verified JWT becomes an IAM policy scoped to the token's roles.

Imports only PyJWT and the Logger: no boto3 (unless an HS256 secret must be read from
Secrets Manager), no Tracer, so cold start stays small. Never logs the token.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger

from handlers.core import auth
from handlers.core.settings import auth_settings

logger = Logger(service="authorizer")
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    # On Lambda a misconfiguration (a JWKS URL without an audience...) fails the cold start itself.
    auth_settings()


# clear_state: a warm container must not carry the previous caller's keys into this invocation's lines.
@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Fails the invocation (never a 401) when misconfigured, e.g. a JWKS URL without an audience.
    settings = auth_settings()
    method_arn = event.get("methodArn", "")
    try:
        token = auth.bearer_token(event.get("authorizationToken"))
        principal = auth.verify(token, settings)
    except auth.Unauthorized as exc:
        # The reason names the defect (expired, bad signature...), never the token itself.
        logger.info("token refused", extra={"reason": str(exc), "method_arn": method_arn})
        # API Gateway turns exactly this message into 401 {"message": "Unauthorized"}.
        raise Exception("Unauthorized") from None
    logger.info(
        "token accepted",
        extra={"principal": principal.sub, "roles": list(principal.roles), "method_arn": method_arn},
    )
    return auth.policy(principal, method_arn)
