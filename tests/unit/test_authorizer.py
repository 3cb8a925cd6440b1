"""The TOKEN authorizer: a verified JWT becomes an IAM policy; every defect is "Unauthorized"."""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from unit_support import JWT_SECRET, METHOD_ARN, PREFIX, make_token

from handlers import authorizer
from handlers.core import settings
from handlers.core.settings import ConfigurationError

# The HS512/HS384 defect tokens are signed with the (HS256-sized) test secret on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key is")

ROUTES = [
    ("GET", "data"),
    ("GET", "data/01JB8ZJ9R7Y1V6Q2K3M4N5P6Q7"),
    ("POST", "data"),
    ("DELETE", "data"),
    ("PUT", "data/01JB8ZJ9R7Y1V6Q2K3M4N5P6Q7"),
    ("POST", "data/01JB8ZJ9R7Y1V6Q2K3M4N5P6Q7"),
]
ALLOWED = {
    (): set(),
    ("data.read",): {ROUTES[0], ROUTES[1]},
    ("data.write",): {ROUTES[2]},
    ("data.read", "data.write"): {ROUTES[0], ROUTES[1], ROUTES[2]},
}


def authorize(context: Any, token: str | None, *, scheme: str = "Bearer", method_arn: str = METHOD_ARN) -> dict:
    event: dict[str, Any] = {"type": "TOKEN", "methodArn": method_arn}
    if token is not None:
        event["authorizationToken"] = f"{scheme} {token}" if scheme else token
    return authorizer.handler(event, context)


def refused(context: Any, token: str | None, **kwargs: Any) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$") as info:
        authorize(context, token, **kwargs)
    # API Gateway turns exactly Exception("Unauthorized") into 401; anything else would be a 500.
    assert type(info.value) is Exception


def evaluate(policy: dict[str, Any], method: str, path: str) -> bool:
    """IAM evaluation as API Gateway does it: an explicit Deny wins, then an Allow, else deny."""
    arn = f"{PREFIX}/{method}/{path}"
    allowed = False
    for statement in policy["policyDocument"]["Statement"]:
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        if statement["Action"] not in ("execute-api:Invoke", "*"):
            continue
        if any(fnmatch.fnmatchcase(arn, r) for r in resources):
            if statement["Effect"] == "Deny":
                return False
            allowed = True
    return allowed


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings.auth_settings.cache_clear()


# ---------------------------------------------------------------- policies per role combination


@pytest.mark.parametrize("roles", list(ALLOWED), ids=lambda r: "+".join(r) or "no-role")
@pytest.mark.parametrize("called", ["GET/data", "POST/data", "GET/data/01JB8ZJ9R7Y1V6Q2K3M4N5P6Q7"])
def test_policy_allows_exactly_the_routes_of_the_roles_whatever_route_was_called(
    context: Any, roles: tuple[str, ...], called: str
) -> None:
    token = make_token(JWT_SECRET, sub="alice", roles=roles)
    policy = authorize(context, token, method_arn=f"{PREFIX}/{called}")
    # The policy is cached per token by API Gateway: it must cover every route, not just the one called.
    assert {r for r in ROUTES if evaluate(policy, *r)} == ALLOWED[roles]
    assert policy["principalId"] == "alice"
    assert policy["context"]["sub"] == "alice"
    assert policy["context"]["roles"].split(",") == list(roles) or (not roles and policy["context"]["roles"] == "")
    assert all(isinstance(v, str | int | float | bool) for v in policy["context"].values())
    statements = policy["policyDocument"]["Statement"]
    assert policy["policyDocument"]["Version"] == "2012-10-17"
    if roles:
        assert [s["Effect"] for s in statements] == ["Allow"]
    else:
        assert [s["Effect"] for s in statements] == ["Deny"]


def test_allow_resources_are_exactly_the_api_routes(context: Any) -> None:
    policy = authorize(context, make_token(JWT_SECRET, roles=("data.read", "data.write")))
    (statement,) = policy["policyDocument"]["Statement"]
    assert sorted(statement["Resource"]) == sorted(
        [f"{PREFIX}/GET/data", f"{PREFIX}/GET/data/*", f"{PREFIX}/POST/data"]
    )


def test_unknown_roles_are_ignored(context: Any) -> None:
    policy = authorize(context, make_token(JWT_SECRET, roles=["admin", "data.readx", "DATA.READ"]))
    assert not any(evaluate(policy, *r) for r in ROUTES)


def test_missing_roles_claim_means_no_role(context: Any) -> None:
    policy = authorize(context, make_token(JWT_SECRET, roles=None))
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_roles_claim_name_is_configurable(context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, ROLES_CLAIM="cognito:groups")
    token = make_token(JWT_SECRET, roles=None, claims={"cognito:groups": ["data.read"], "Role": ["data.write"]})
    policy = authorize(context, token)
    assert {r for r in ROUTES if evaluate(policy, *r)} == ALLOWED[("data.read",)]


def test_subject_with_unicode_is_the_principal(context: Any) -> None:
    policy = authorize(context, make_token(JWT_SECRET, sub="usér-ß-😀"))
    assert policy["principalId"] == "usér-ß-😀"
    assert policy["context"]["sub"] == "usér-ß-😀"


# ---------------------------------------------------------------- token defects (HS256)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned_token(payload: dict[str, Any], alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}."


def hmac_token(key: bytes, payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """Signs by hand, as an attacker would (PyJWT refuses a PEM as an HMAC key)."""
    head = _b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def good_claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "mallory", "Role": ["data.read", "data.write"], "exp": int(time.time()) + 300, **extra}


DEFECTS = {
    "garbage": lambda: "not-a-jwt",
    "three-garbage-segments": lambda: "aaa.bbb.ccc",
    "empty-segments": lambda: "..",
    "expired": lambda: make_token(JWT_SECRET, exp_in=-60),
    "alg-none": lambda: unsigned_token(good_claims()),
    "alg-None-capitalised": lambda: unsigned_token(good_claims(), alg="None"),
    "wrong-secret": lambda: make_token("another-secret-that-is-also-long-enough-000"),
    "tampered-payload": lambda: _tamper(make_token(JWT_SECRET, roles=("data.read",))),
    "no-sub": lambda: make_token(JWT_SECRET, sub=None),
    "empty-sub": lambda: make_token(JWT_SECRET, sub=""),
    "blank-sub": lambda: make_token(JWT_SECRET, sub="   "),
    "sub-not-a-string": lambda: make_token(JWT_SECRET, sub=42),
    "sub-too-long": lambda: make_token(JWT_SECRET, sub="u" * 257),
    "no-exp": lambda: make_token(JWT_SECRET, exp_in=None),
    "exp-not-a-number": lambda: make_token(JWT_SECRET, exp_in=None, claims={"exp": "tomorrow"}),
    "roles-a-number": lambda: make_token(JWT_SECRET, roles=7),
    "roles-an-object": lambda: make_token(JWT_SECRET, roles={"data.read": True}),
    "roles-list-of-non-strings": lambda: make_token(JWT_SECRET, roles=[1, 2]),
    "hs512-not-in-allow-list": lambda: make_token(JWT_SECRET, alg="HS512"),
    "hs384-not-in-allow-list": lambda: make_token(JWT_SECRET, alg="HS384"),
    "not-yet-valid": lambda: make_token(JWT_SECRET, claims={"nbf": int(time.time()) + 3600}),
}


def _tamper(token: str) -> str:
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["Role"] = ["data.read", "data.write"]
    return f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_every_token_defect_is_unauthorized(context: Any, defect: str) -> None:
    refused(context, DEFECTS[defect]())


def test_missing_header_is_unauthorized(context: Any) -> None:
    refused(context, None)


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "   "])
def test_empty_header_is_unauthorized(context: Any, header: str) -> None:
    refused(context, header, scheme="")


@pytest.mark.parametrize("scheme", ["Basic", "Token", "", "Bearer:"])
def test_non_bearer_scheme_is_unauthorized(context: Any, scheme: str) -> None:
    token = make_token(JWT_SECRET)
    refused(context, token, scheme=scheme)


def test_bearer_scheme_is_case_insensitive(context: Any) -> None:
    assert authorize(context, make_token(JWT_SECRET), scheme="bearer")["principalId"] == "alice"


def test_hs256_token_signed_with_the_wrong_key_is_refused_even_with_valid_claims(context: Any) -> None:
    refused(context, hmac_token(b"guess", good_claims()))


@pytest.mark.parametrize(
    ("env", "claims", "ok"),
    [
        ({"JWT_ISSUER": "https://issuer.example"}, {"iss": "https://issuer.example"}, True),
        ({"JWT_ISSUER": "https://issuer.example"}, {"iss": "https://evil.example"}, False),
        ({"JWT_ISSUER": "https://issuer.example"}, {}, False),
        ({"JWT_AUDIENCE": "fanout-api"}, {"aud": "fanout-api"}, True),
        ({"JWT_AUDIENCE": "fanout-api"}, {"aud": ["other", "fanout-api"]}, True),
        ({"JWT_AUDIENCE": "fanout-api"}, {"aud": "someone-else"}, False),
        ({"JWT_AUDIENCE": "fanout-api"}, {}, False),
        ({}, {"iss": "anyone", "aud": "anything"}, True),
    ],
)
def test_issuer_and_audience_checked_when_configured(
    context: Any, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], claims: dict[str, Any], ok: bool
) -> None:
    set_env(monkeypatch, **env)
    token = make_token(JWT_SECRET, claims=claims)
    if ok:
        assert authorize(context, token)["principalId"] == "alice"
    else:
        refused(context, token)


def test_no_leeway_on_expiry(context: Any) -> None:
    # The contract answers an expired token with 401: a second past exp is expired.
    refused(context, make_token(JWT_SECRET, exp_in=-1))
    refused(context, make_token(JWT_SECRET, exp_in=-30))
    assert authorize(context, make_token(JWT_SECRET, exp_in=30))["context"]["exp"] > time.time()


def test_roles_claim_must_be_a_list(context: Any) -> None:
    refused(context, make_token(JWT_SECRET, roles="data.read data.write"))


# ---------------------------------------------------------------- asymmetric tokens through a JWKS


class Keys:
    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.requests = 0

    def jwks(self) -> dict[str, Any]:
        rsa_jwk = RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True)
        ec_jwk = ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True)
        return {
            "keys": [
                {**rsa_jwk, "kid": "rsa-1", "use": "sig", "alg": "RS256"},
                # No "alg": the algorithm follows from the key type and curve.
                {**ec_jwk, "kid": "ec-1", "use": "sig"},
            ]
        }

    def rsa_public_pem(self) -> bytes:
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.fixture(scope="module")
def jwks() -> Iterator[tuple[Keys, str]]:
    keys = Keys()
    body = json.dumps(keys.jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            keys.requests += 1
            if self.path != "/.well-known/jwks.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield keys, f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def asymmetric(monkeypatch: pytest.MonkeyPatch, jwks: tuple[Keys, str]) -> Keys:
    keys, url = jwks
    monkeypatch.delenv("JWT_SECRET")
    set_env(
        monkeypatch,
        JWT_ALGORITHMS="RS256,ES256",
        JWKS_URL=url,
        JWT_ISSUER="https://issuer.example",
        JWT_AUDIENCE="fanout-api",
    )
    return keys


def asym_claims(**extra: Any) -> dict[str, Any]:
    return {
        "sub": "carol",
        "Role": ["data.read"],
        "exp": int(time.time()) + 300,
        "iss": "https://issuer.example",
        "aud": "fanout-api",
        **extra,
    }


def test_rs256_verified_against_the_jwks(context: Any, asymmetric: Keys) -> None:
    token = jwt.encode(asym_claims(), asymmetric.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
    policy = authorize(context, token)
    assert policy["principalId"] == "carol"
    assert {r for r in ROUTES if evaluate(policy, *r)} == ALLOWED[("data.read",)]


def test_es256_verified_against_the_jwks(context: Any, asymmetric: Keys) -> None:
    token = jwt.encode(asym_claims(Role=["data.write"]), asymmetric.ec, algorithm="ES256", headers={"kid": "ec-1"})
    policy = authorize(context, token)
    assert {r for r in ROUTES if evaluate(policy, *r)} == ALLOWED[("data.write",)]


def test_jwks_is_cached_between_calls(context: Any, asymmetric: Keys) -> None:
    token = jwt.encode(asym_claims(), asymmetric.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
    before = asymmetric.requests
    for _ in range(5):
        authorize(context, token)
    assert asymmetric.requests - before <= 1


def test_unknown_kid_refused(context: Any, asymmetric: Keys) -> None:
    token = jwt.encode(asym_claims(), asymmetric.rsa, algorithm="RS256", headers={"kid": "unknown"})
    refused(context, token)


def test_missing_kid_refused(context: Any, asymmetric: Keys) -> None:
    refused(context, jwt.encode(asym_claims(), asymmetric.rsa, algorithm="RS256"))


def test_rs256_signed_by_another_key_with_a_known_kid_refused(context: Any, asymmetric: Keys) -> None:
    token = jwt.encode(asym_claims(), asymmetric.rsa_other, algorithm="RS256", headers={"kid": "rsa-1"})
    refused(context, token)


def test_rs256_key_used_with_the_ec_kid_refused(context: Any, asymmetric: Keys) -> None:
    # Regression: PyJWT raised TypeError here (a 500 from the authorizer) instead of a refusal.
    token = jwt.encode(asym_claims(), asymmetric.rsa, algorithm="RS256", headers={"kid": "ec-1"})
    refused(context, token)


@pytest.mark.parametrize(("claim", "value"), [("iss", "https://evil.example"), ("aud", "other-api")])
def test_asymmetric_wrong_issuer_or_audience_refused(context: Any, asymmetric: Keys, claim: str, value: str) -> None:
    token = jwt.encode(asym_claims(**{claim: value}), asymmetric.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
    refused(context, token)


def test_hs256_token_refused_when_only_asymmetric_algorithms_are_allowed(context: Any, asymmetric: Keys) -> None:
    refused(context, make_token(JWT_SECRET, claims={"iss": "https://issuer.example", "aud": "fanout-api"}))


def test_alg_confusion_hs256_signed_with_the_rsa_public_key_refused(context: Any, asymmetric: Keys) -> None:
    token = hmac_token(asymmetric.rsa_public_pem(), asym_claims(), {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
    refused(context, token)


def test_mixing_hs256_with_asymmetric_algorithms_is_refused_as_configuration(
    context: Any, asymmetric: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The configuration that would make alg confusion possible cannot be deployed at all.
    set_env(monkeypatch, JWT_ALGORITHMS="RS256,ES256,HS256", JWT_SECRET=JWT_SECRET)
    token = hmac_token(asymmetric.rsa_public_pem(), asym_claims(), {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
    with pytest.raises(ConfigurationError, match="cannot mix HS256"):
        authorize(context, token)


@pytest.mark.parametrize("algorithms", ["none", "RS256,none", "HS384", ""])
def test_unsupported_algorithm_configuration_is_refused(
    context: Any, monkeypatch: pytest.MonkeyPatch, algorithms: str
) -> None:
    set_env(monkeypatch, JWT_ALGORITHMS=algorithms, JWT_SECRET=JWT_SECRET)
    with pytest.raises(ConfigurationError):
        authorize(context, make_token(JWT_SECRET))


def test_es256_token_naming_the_rsa_kid_refused(context: Any, asymmetric: Keys) -> None:
    token = jwt.encode(asym_claims(), asymmetric.ec, algorithm="ES256", headers={"kid": "rsa-1"})
    refused(context, token)


def test_alg_none_refused_with_asymmetric_config(context: Any, asymmetric: Keys) -> None:
    refused(context, unsigned_token(asym_claims()))


# ---------------------------------------------------------------- the token never reaches the logs


def test_token_never_logged(context: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [make_token(JWT_SECRET)] + [build() for build in DEFECTS.values()]
    for token in tokens:
        with contextlib.suppress(Exception):  # refusals are what we are provoking
            authorize(context, token)
    out = capsys.readouterr()
    logged = out.out + out.err + caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "token refused" in logged and "token accepted" in logged  # the logs were indeed captured
    for token in tokens:
        if len(token) > 20:
            assert token not in logged
        for segment in token.split("."):
            if len(segment) > 20:
                assert segment not in logged
