"""JWT verification and the API Gateway policy that follows from a token's roles.

Every check is on: signature, `exp`, `sub`, issuer and audience when configured, and
an algorithm allow-list (never `none`). No token text is ever logged or put in errors.

Limits (docs/deploy.md "Security"): `exp` must be a finite number at most MAX_LIFETIME (30 days,
the longest `fanout token --ttl`) ahead, with no skew; `iat` and `nbf` may be up to CLOCK_SKEW
seconds in the future (an identity provider whose clock runs ahead); `sub` is 1 to 256 characters
without control, format or surrogate characters. Anything else a signed token carries is a 401,
never an error.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import jwt

from handlers.core import charset
from handlers.core.settings import AuthSettings, ConfigurationError

READ = "data.read"
WRITE = "data.write"
ASYMMETRIC = {"RS256", "ES256"}
MAX_LIFETIME = 30 * 24 * 3600
CLOCK_SKEW = 5
MAX_SUB = 256


class Unauthorized(Exception):
    """The token is missing, malformed, unverifiable or expired (the reason is for logs only)."""


@dataclass(frozen=True)
class Principal:
    sub: str
    roles: tuple[str, ...]
    exp: int = 0


def bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthorized("no Authorization header")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization is not a Bearer token")
    return token.strip()


@functools.cache
def _jwks_client(url: str) -> jwt.PyJWKClient:
    # Caches the key set and refetches on an unknown kid, so key rotation needs no redeploy.
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)


@functools.cache
def _secret_from_arn(arn: str) -> str:
    from aws_lambda_powertools.utilities.parameters import get_secret

    return str(get_secret(arn, max_age=300))


def _signing_key(token: str, header: dict[str, Any], settings: AuthSettings) -> Any:
    alg = header.get("alg")
    if alg not in settings.algorithms:
        raise Unauthorized(f"algorithm {alg!r} is not allowed")
    if alg == "HS256":
        secret = settings.secret or (settings.secret_arn and _secret_from_arn(settings.secret_arn))
        if not secret:
            raise ConfigurationError("HS256 is allowed but neither JWT_SECRET nor JWT_SECRET_ARN is set")
        return secret
    if not settings.jwks_url:
        raise ConfigurationError(f"{alg} is allowed but JWKS_URL is not set")
    try:
        jwk = _jwks_client(settings.jwks_url).get_signing_key_from_jwt(token)
    except jwt.PyJWKClientError as exc:
        raise Unauthorized(f"no signing key for this token: {exc}") from None
    # A kid naming a key of another type (an EC key for an RS256 token) would make PyJWT raise
    # TypeError, an authorizer error (500) instead of a refusal (401).
    if jwk.algorithm_name != alg:
        raise Unauthorized(f"the key of this kid is for {jwk.algorithm_name}, not {alg}")
    return jwk.key


def _time_claim(claims: dict[str, Any], name: str) -> int | float | None:
    value = claims.get(name)
    if value is None:
        return None
    # bool is an int to Python; inf/nan come from JSON's Infinity/NaN, which json.loads accepts.
    # An int is finite however large (math.isfinite would overflow on 10**400; comparisons do not).
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(f"{name} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise Unauthorized(f"{name} is not a finite number")
    return value


def check_times(claims: dict[str, Any], now: float) -> int:
    """exp (required, no skew, at most MAX_LIFETIME ahead), iat and nbf (CLOCK_SKEW allowed); returns exp."""
    exp = _time_claim(claims, "exp")
    if exp is None:
        raise Unauthorized("exp is missing")
    if exp <= now:
        raise Unauthorized("the token has expired")
    if exp > now + MAX_LIFETIME:
        raise Unauthorized(f"exp is more than {MAX_LIFETIME // 86400} days away")
    iat, nbf = _time_claim(claims, "iat"), _time_claim(claims, "nbf")
    if iat is not None and iat > now + CLOCK_SKEW:
        raise Unauthorized("the token is issued in the future (iat)")
    if nbf is not None and nbf > now + CLOCK_SKEW:
        raise Unauthorized("the token is not yet valid (nbf)")
    return int(exp)


def check_sub(sub: Any) -> str:
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUB:
        raise Unauthorized(f"sub must be a non-empty string of at most {MAX_SUB} characters")
    # The sub becomes the event's subject, an SNS attribute, a DynamoDB key and a log field.
    if not charset.is_identifier_text(sub):
        raise Unauthorized("sub holds a control, format or surrogate character")
    return sub


def verify(token: str, settings: AuthSettings) -> Principal:
    try:
        header = jwt.get_unverified_header(token)
        key = _signing_key(token, header, settings)
        claims = jwt.decode(
            token,
            key,
            algorithms=list(settings.algorithms),
            audience=settings.audience,
            issuer=settings.issuer,
            # The time claims are checked below: PyJWT's leeway would apply to exp as well, and its
            # int() of them overflows on Infinity.
            options={
                "require": ["exp", "sub"],
                "verify_aud": settings.audience is not None,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"{type(exc).__name__}: {exc}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # Odd shapes PyJWT does not wrap (deeply nested JSON, a header that is not an object...).
        raise Unauthorized(f"malformed token ({type(exc).__name__})") from None
    if not isinstance(claims, dict):
        raise Unauthorized("the payload is not a JSON object")
    exp = check_times(claims, time.time())
    sub = check_sub(claims.get("sub"))
    roles = claims.get(settings.roles_claim, [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized(f"claim {settings.roles_claim} must be a list of strings")
    # Roles travel to the API comma-joined in the authorizer context, so a comma inside one is refused.
    return Principal(sub=sub, roles=tuple(r for r in roles if r and "," not in r), exp=exp)


def _api_prefix(method_arn: str) -> str:
    """arn:aws:execute-api:region:account:api/stage/METHOD/path -> arn:...:api/stage"""
    arn, _, rest = method_arn.partition(":execute-api:")
    parts = rest.split("/")
    if not arn.startswith("arn:") or len(parts) < 3:
        raise ValueError(f"not an execute-api method ARN: {method_arn}")
    return f"{arn}:execute-api:{parts[0]}/{parts[1]}"


def allowed_resources(roles: tuple[str, ...], method_arn: str) -> list[str]:
    """Every route the roles allow, not just the one called: API Gateway caches the policy per token."""
    prefix = _api_prefix(method_arn)
    resources = []
    if WRITE in roles:
        resources.append(f"{prefix}/POST/data")
    if READ in roles:
        resources += [f"{prefix}/GET/data", f"{prefix}/GET/data/*"]
    return resources


def policy(principal: Principal, method_arn: str) -> dict[str, Any]:
    resources = allowed_resources(principal.roles, method_arn)
    statement = (
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resources}
        if resources
        else {
            "Action": "execute-api:Invoke",
            "Effect": "Deny",
            "Resource": [f"{_api_prefix(method_arn)}/*/*"],
        }
    )
    return {
        "principalId": principal.sub,
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        # Context values must be strings, numbers or booleans.
        # exp lets the API refuse a token that expired while API Gateway still had its policy cached.
        "context": {"sub": principal.sub, "roles": ",".join(principal.roles), "exp": principal.exp},
    }
