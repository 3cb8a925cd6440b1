"""The authorizer holds against hostile tokens and reuse of its container: per-invocation log state, no JWKS
without an audience, odd claims refused (never an error), clock skew on iat/nbf but not exp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from unit_support import JWT_SECRET, METHOD_ARN, call_api, make_token

from handlers import authorizer
from handlers.core import auth, charset, settings
from handlers.core.settings import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


def _authorize(context: Any, token: str) -> dict[str, Any] | None:
    """The policy, or None for a refusal; any other outcome (an error, a 500 on AWS) fails the test."""
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": METHOD_ARN}
    try:
        return authorizer.handler(event, context)
    except Exception as exc:
        assert type(exc) is Exception and str(exc) == "Unauthorized", f"{type(exc).__name__}: {exc}"
        return None


def _signed(claims: dict[str, Any]) -> str:
    # Signed through PyJWS: jwt.encode refuses some odd claims itself (a non-string iss), which an
    # identity provider's tokens could still carry. json.dumps writes inf and nan as Infinity and NaN.
    return jwt.api_jws.encode(json.dumps(claims).encode(), JWT_SECRET, algorithm="HS256")


# ---------------------------------------------------------------- item 1: log state per invocation
def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The records as the authorizer's Powertools formatter writes them (appended keys included)."""
    formatter = authorizer.logger.registered_formatter
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "authorizer"]


def test_refusal_log_does_not_name_the_previous_caller(context: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="authorizer")
    assert _authorize(context, make_token(JWT_SECRET, sub="alice-real-user")) is not None
    caplog.clear()
    assert _authorize(context, jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "f" * 48)) is None
    refused = [line for line in _lines(caplog) if line.get("message") == "token refused"]
    assert refused, _lines(caplog)
    assert "alice-real-user" not in json.dumps(refused), refused


def test_accepted_log_names_this_caller(context: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="authorizer")
    for user in ("first-user", "second-user"):
        caplog.clear()
        assert _authorize(context, make_token(JWT_SECRET, sub=user)) is not None
        accepted = [line for line in _lines(caplog) if line.get("message") == "token accepted"]
        assert [line["principal"] for line in accepted] == [user]


# ------------------------------------------------------- item 2: a JWKS URL needs an audience
def _jwks_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ALGORITHMS", "RS256")
    monkeypatch.setenv("JWKS_URL", "http://127.0.0.1:9/.well-known/jwks.json")
    monkeypatch.setenv("JWT_ISSUER", "https://issuer.example/")
    monkeypatch.delenv("JWT_AUDIENCE", raising=False)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    settings.auth_settings.cache_clear()


def test_jwks_without_audience_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, context: Any) -> None:
    _jwks_env(monkeypatch)
    with pytest.raises(ConfigurationError, match="JWT_AUDIENCE"):
        settings.auth_settings()
    # Every invocation fails (an error, never an Allow), whatever the token.
    with pytest.raises(ConfigurationError):
        authorizer.handler({"type": "TOKEN", "authorizationToken": "Bearer x.y.z", "methodArn": METHOD_ARN}, context)
    monkeypatch.setenv("JWT_AUDIENCE", "fanout-api")
    settings.auth_settings.cache_clear()
    assert settings.auth_settings().audience == "fanout-api"


def test_authorizer_cold_start_fails_with_jwks_but_no_audience() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "JWKS_"))}
    env.update(
        AWS_LAMBDA_FUNCTION_NAME="authorizer",
        JWT_ALGORITHMS="RS256",
        JWKS_URL="http://127.0.0.1:9/.well-known/jwks.json",
        POWERTOOLS_TRACE_DISABLED="true",
    )
    run = subprocess.run(
        [sys.executable, "-c", "import handlers.authorizer"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode != 0 and "JWT_AUDIENCE" in run.stderr, run.stderr[-500:]
    env["JWT_AUDIENCE"] = "fanout-api"
    ok = subprocess.run(
        [sys.executable, "-c", "import handlers.authorizer"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr[-500:]


# ------------------------------------------------------------ item 6: odd claims are a 401
def _odd_tokens() -> dict[str, str]:
    now = int(time.time())
    base = {"sub": "alice", "Role": ["data.read", "data.write"], "iat": now, "exp": now + 300}

    def with_(**over: Any) -> str:
        return _signed({**base, **over})

    return {
        "exp 10**400": with_(exp=10**400),
        "exp Infinity": with_(exp=float("inf")),
        "exp NaN": with_(exp=float("nan")),
        "exp a string": with_(exp=str(now + 300)),
        "exp true": with_(exp=True),
        "exp a list": with_(exp=[now + 300]),
        "exp past the maximum lifetime": with_(exp=now + auth.MAX_LIFETIME + 60),
        "iat Infinity": with_(iat=float("inf")),
        "iat -Infinity": with_(iat=float("-inf")),
        "iat a dict": with_(iat={}),
        "nbf 10**400": with_(nbf=10**400),
        "sub with NUL": with_(sub="alice\x00"),
        "sub with ESC": with_(sub="alice\x1b[2J"),
        "sub with a newline": with_(sub="alice\nadmin"),
        "sub with DEL": with_(sub="alice\x7f"),
        "sub with a C1 control": with_(sub="alice\x9b"),
        "sub with a lone surrogate": with_(sub="alice\ud800"),
        "sub with U+FFFF": with_(sub="alice\uffff"),
        "sub with a bidi override": with_(sub="alice\u202e"),
        "sub of 257 characters": with_(sub="a" * 257),
        "sub blank": with_(sub="   "),
        "sub a number": with_(sub=7),
        "payload a list": jwt.api_jws.encode(b"[1, 2]", JWT_SECRET, algorithm="HS256"),
        "header nested 20000 deep": ".".join(
            [
                jwt.utils.base64url_encode(b"[" * 20000 + b"]" * 20000).decode(),
                jwt.utils.base64url_encode(json.dumps(base).encode()).decode(),
                "c2ln",
            ]
        ),
    }


@pytest.mark.parametrize("case", list(_odd_tokens()))
def test_odd_claims_are_refused_not_errors(context: Any, case: str) -> None:
    assert _authorize(context, _odd_tokens()[case]) is None, case


def test_unusual_but_valid_claims_are_accepted(context: Any) -> None:
    now = int(time.time())
    for claims in (
        {"sub": "alice", "exp": now + auth.MAX_LIFETIME - 60},
        {"sub": "alice", "exp": now + 300.5},
        {"sub": "ünïcødé 用户 🙂", "exp": now + 300},
        {"sub": "a" * 256, "exp": now + 300},
    ):
        answer = _authorize(context, _signed({"Role": ["data.read"], **claims}))
        assert answer is not None, claims
        assert isinstance(answer["context"]["exp"], int)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([10**400, -(10**400), 2**63, 2**64, 10**20])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)


class Soon(int):
    """A time claim drawn as an offset from now, resolved when the test runs (drawing stays deterministic)."""


@st.composite
def claim_sets(draw: st.DrawFn) -> dict[str, Any]:
    near = st.builds(Soon, st.integers(min_value=-100, max_value=auth.MAX_LIFETIME + 100))
    claims: dict[str, Any] = {
        "sub": draw(st.text(min_size=0, max_size=300) | json_values),
        "exp": draw(near | st.floats(allow_nan=True, allow_infinity=True) | json_values),
        "Role": draw(st.just(["data.read", "data.write"]) | json_values),
    }
    for name in ("iat", "nbf", "iss", "aud"):
        if draw(st.booleans()):
            claims[name] = draw(near | json_values)
    return claims


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(claims=claim_sets())
def test_no_signed_token_makes_an_error(context: Any, claims: dict[str, Any]) -> None:
    """Whatever a correctly signed token carries, the answer is a policy or a refusal; and a policy's
    context is one the api can use (it answers 404 for an unknown id, not 500)."""
    now = int(time.time())
    claims = {k: now + int(v) if isinstance(v, Soon) else v for k, v in claims.items()}
    answer = _authorize(context, _signed(claims))
    if answer is None:
        return
    ctx = answer["context"]
    assert isinstance(ctx["exp"], int) and ctx["exp"] <= time.time() + auth.MAX_LIFETIME
    assert charset.is_identifier_text(ctx["sub"]), ctx["sub"]
    api_answer = call_api(context, "GET", "/data/not-an-id", user=ctx["sub"], roles=("data.read",))
    assert api_answer.status in (403, 404), api_answer


# ------------------------------------------------------------------ item 7: skew on iat and nbf
def test_iat_and_nbf_tolerate_a_few_seconds_of_skew(context: Any) -> None:
    now = int(time.time())
    ahead = auth.CLOCK_SKEW - 2
    assert _authorize(context, _signed({"sub": "alice", "iat": now + ahead, "exp": now + 300})) is not None
    assert _authorize(context, _signed({"sub": "alice", "nbf": now + ahead, "exp": now + 300})) is not None
    assert _authorize(context, _signed({"sub": "alice", "iat": now + 120, "exp": now + 300})) is None
    assert _authorize(context, _signed({"sub": "alice", "nbf": now + 120, "exp": now + 300})) is None


def test_exp_has_no_skew(context: Any) -> None:
    now = time.time()
    assert _authorize(context, _signed({"sub": "alice", "exp": int(now) - 1})) is None
    assert _authorize(context, _signed({"sub": "alice", "exp": now - 0.5})) is None
