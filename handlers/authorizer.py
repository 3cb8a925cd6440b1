"""API Gateway TOKEN authorizer: a verified JWT becomes an IAM policy scoped to the token's roles.

Imports only PyJWT and the Logger: no boto3 (unless an HS256 secret must be read from
Secrets Manager), no Tracer, so cold start stays small. Never logs the token.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from handlers.core import auth
from handlers.core.settings import auth_settings

logger = Logger(service="authorizer")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method_arn = event.get("methodArn", "")
    try:
        token = auth.bearer_token(event.get("authorizationToken"))
        principal = auth.verify(token, auth_settings())
    except auth.Unauthorized as exc:
        # The reason names the defect (expired, bad signature...), never the token itself.
        logger.info("token refused", extra={"reason": str(exc), "method_arn": method_arn})
        # API Gateway turns exactly this message into 401 {"message": "Unauthorized"}.
        raise Exception("Unauthorized") from None
    logger.append_keys(principal=principal.sub)
    logger.info("token accepted", extra={"roles": list(principal.roles), "method_arn": method_arn})
    return auth.policy(principal, method_arn)
