"""Tokens that must be refused: alg confusion, kid injection, `none`, missing exp, wrong iss/aud.

Over HTTP against the local stack (HS256), and in-process against the AWS configuration
(RS256/ES256 keys from a JWKS served on 127.0.0.1, issuer and audience set), where the
classic confusion attacks live. A valid token is accepted in each setting (positive control).
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.fuzz.live import remember
from tests.support.stack import SECRET, Stack

ISSUER, AUDIENCE = "https://issuer.fanout.test/", "fanout-api"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/dev/GET/data"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)])


def _hs(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """An HS256 token built by hand: PyJWT refuses to sign with an empty key or a PEM public key."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(hmac.new(key, signing_input.encode(), 'sha256').digest())}"


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "mallory", "Role": ["data.read", "data.write"], "iat": now, "exp": now + 600}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


# ------------------------------------------------------------------ over HTTP, local stack (HS256)
def _http_cases() -> dict[str, str]:
    good = _claims()
    return {
        "alg none": jwt.encode(good, None, algorithm="none"),
        "alg None, signature kept": _forge({"alg": "None", "typ": "JWT"}, good, b"sig"),
        "wrong secret": jwt.encode(good, "w" * 48, algorithm="HS256"),
        "HS512 with the right secret": jwt.encode(good, SECRET, algorithm="HS512"),
        "missing exp": jwt.encode(_claims(exp=None), SECRET, algorithm="HS256"),
        "expired": jwt.encode(_claims(exp=int(time.time()) - 3600), SECRET, algorithm="HS256"),
        "missing sub": jwt.encode(_claims(sub=None), SECRET, algorithm="HS256"),
        "kid path injection, empty key": _hs({"alg": "HS256", "kid": "../../../../../../dev/null"}, good, b""),
        "kid sql injection, wrong key": jwt.encode(
            good, "k" * 48, algorithm="HS256", headers={"kid": "x' UNION SELECT 'k'--"}
        ),
        "jku to an attacker": jwt.encode(
            good, "a" * 48, algorithm="HS256", headers={"jku": "http://127.0.0.1:9/jwks.json"}
        ),
        "payload swapped after signing": ".".join(
            [
                jwt.encode(_claims(sub="someone"), SECRET, algorithm="HS256").split(".")[0],
                _b64(json.dumps(_claims(sub="admin")).encode()),
                jwt.encode(_claims(sub="someone"), SECRET, algorithm="HS256").split(".")[2],
            ]
        ),
        "empty": "",
        "two dots": "..",
    }


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_http_refuses_bad_tokens(stack: Stack) -> None:
    for name, token in _http_cases().items():
        remember(token) if token.strip(".") else None
        r = requests.get(f"{stack.api_url}/data", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert r.json() == {"message": "Unauthorized"}, name
    ok = remember(jwt.encode(_claims(), SECRET, algorithm="HS256"))
    assert (
        requests.get(f"{stack.api_url}/data", headers={"Authorization": f"Bearer {ok}"}, timeout=10).status_code == 200
    )


# ------------------------------------------------------ in-process, AWS-like config (JWKS, iss, aud)
class Keys:
    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa_pub_pem = self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwks(self) -> dict[str, Any]:
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        return {
            "keys": [
                {**rsa_jwk, "kid": "rsa-1", "alg": "RS256", "use": "sig"},
                {**ec_jwk, "kid": "ec-1", "alg": "ES256", "use": "sig"},
            ]
        }


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def jwks_url(keys: Keys) -> Iterator[str]:
    body = json.dumps(keys.jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


@pytest.fixture
def authorizer(jwks_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from handlers.core import auth, settings

    for name, value in {
        "JWT_ALGORITHMS": "RS256,ES256",
        "JWKS_URL": jwks_url,
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "ROLES_CLAIM": "Role",
        "POWERTOOLS_SERVICE_NAME": "authorizer",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("JWT_SECRET", "JWT_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    settings.auth_settings.cache_clear()
    auth._jwks_client.cache_clear()
    from handlers import authorizer as module

    yield module.handler
    settings.auth_settings.cache_clear()
    auth._jwks_client.cache_clear()


class _Ctx:
    function_name = "authorizer"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:authorizer"
    aws_request_id = "00000000-0000-0000-0000-000000000000"


def _call(handler: Any, token: str) -> dict[str, Any] | None:
    try:
        return handler({"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": METHOD_ARN}, _Ctx())
    except Exception as exc:
        assert str(exc) == "Unauthorized", f"an error, not a refusal: {type(exc).__name__}: {exc}"
        return None


def _aws_claims(**over: Any) -> dict[str, Any]:
    return _claims(**{"iss": ISSUER, "aud": AUDIENCE, **over})


def test_aws_config_accepts_a_valid_token(authorizer: Any, keys: Keys) -> None:
    for alg, key, kid in (("RS256", keys.rsa, "rsa-1"), ("ES256", keys.ec, "ec-1")):
        answer = _call(authorizer, jwt.encode(_aws_claims(), key, algorithm=alg, headers={"kid": kid}))
        assert answer is not None and answer["principalId"] == "mallory", alg


def test_aws_config_refuses_attacks(authorizer: Any, keys: Keys) -> None:
    good = _aws_claims()
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = keys.rsa_pub_pem
    cases = {
        # Algorithm confusion: HMAC keyed with the public key the server holds.
        "HS256 signed with the RSA public key": _forge(
            {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
            good,
            __import__("hmac")
            .new(
                pem,
                (
                    _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
                    + "."
                    + _b64(json.dumps(good).encode())
                ).encode(),
                "sha256",
            )
            .digest(),
        ),
        "alg none": _forge({"alg": "none", "kid": "rsa-1"}, good),
        "RS256 header over an EC kid": jwt.encode(good, keys.rsa, algorithm="RS256", headers={"kid": "ec-1"}),
        "ES256 header over an RSA kid": jwt.encode(good, keys.ec, algorithm="ES256", headers={"kid": "rsa-1"}),
        "unknown kid": jwt.encode(good, keys.rsa, algorithm="RS256", headers={"kid": "rsa-2"}),
        "kid path injection": jwt.encode(good, keys.rsa, algorithm="RS256", headers={"kid": "../../../etc/passwd"}),
        "no kid": jwt.encode(good, keys.rsa, algorithm="RS256"),
        "attacker key, embedded jwk": jwt.encode(
            good,
            other_rsa,
            algorithm="RS256",
            headers={"kid": "rsa-1", "jwk": json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(other_rsa.public_key()))},
        ),
        "attacker key, jku": jwt.encode(
            good, other_rsa, algorithm="RS256", headers={"kid": "rsa-1", "jku": "http://127.0.0.1:9/jwks.json"}
        ),
        "missing exp": jwt.encode(_aws_claims(exp=None), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}),
        "expired": jwt.encode(
            _aws_claims(exp=int(time.time()) - 3600), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}
        ),
        "wrong issuer": jwt.encode(
            _aws_claims(iss="https://evil.test/"), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}
        ),
        "no issuer": jwt.encode(_aws_claims(iss=None), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}),
        "wrong audience": jwt.encode(
            _aws_claims(aud="another-api"), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}
        ),
        "no audience": jwt.encode(_aws_claims(aud=None), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}),
        "not yet valid": jwt.encode(
            _aws_claims(nbf=int(time.time()) + 3600), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}
        ),
        "HS256 with an empty secret": _hs({"alg": "HS256", "kid": "rsa-1"}, good, b""),
    }
    accepted = [name for name, token in cases.items() if _call(authorizer, token) is not None]
    assert not accepted, f"accepted: {accepted}"


def test_hs256_cannot_be_mixed_with_public_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configuration can never switch on HS256 beside RS256 (the root of alg confusion) or `none`."""
    from handlers.core import settings

    for algorithms in ("HS256,RS256", "none", "RS256,none"):
        monkeypatch.setenv("JWT_ALGORITHMS", algorithms)
        settings.auth_settings.cache_clear()
        with pytest.raises(settings.ConfigurationError):
            settings.auth_settings()
    settings.auth_settings.cache_clear()
