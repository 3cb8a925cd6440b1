"""Over HTTP against the local stack: signed tokens with odd claims are 401, never 500,
iat/nbf a little ahead are fine (clock skew), and what a POST publishes is text SQS accepts."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import jwt
import requests

from tests.fuzz.live import remember
from tests.support.stack import SECRET, Stack

SQS_REFUSES = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
BODY = {"informationOne": "a", "informationTwo": "b"}


def _signed(**claims: Any) -> str:
    now = int(time.time())
    base = {"sub": f"odd-{uuid.uuid4().hex[:6]}", "Role": ["data.read", "data.write"], "iat": now, "exp": now + 300}
    payload = json.dumps({**base, **claims}).encode()  # inf and nan as Infinity and NaN, as PyJWT reads them
    return remember(jwt.api_jws.encode(payload, SECRET, algorithm="HS256"))


def test_odd_claims_are_401_on_every_route(stack: Stack) -> None:
    cases = {
        "exp 10**400": _signed(exp=10**400),
        "exp Infinity": _signed(exp=float("inf")),
        "exp a year ahead": _signed(exp=int(time.time()) + 366 * 86400),
        "iat NaN": _signed(iat=float("nan")),
        "sub with a lone surrogate": _signed(sub="bob\ud800"),
        "sub with NUL": _signed(sub="bob\x00admin"),
        "sub with ESC": _signed(sub="bob\x1b]0;owned\x07"),
        "sub with a newline": _signed(sub="bob\nINFO forged line"),
    }
    for name, token in cases.items():
        headers = {"Authorization": f"Bearer {token}"}
        for method, path, body in (("GET", "/data", None), ("GET", "/data/x", None), ("POST", "/data", BODY)):
            r = requests.request(method, f"{stack.api_url}{path}", json=body, headers=headers, timeout=10)
            assert r.status_code == 401, (name, method, path, r.status_code, r.text)
            assert r.json() == {"message": "Unauthorized"}


def test_a_provider_clock_a_little_ahead_is_accepted(stack: Stack) -> None:
    now = int(time.time())
    for claims in ({"iat": now + 2}, {"nbf": now + 2}):
        headers = {"Authorization": f"Bearer {_signed(**claims)}"}
        r = requests.get(f"{stack.api_url}/data", headers=headers, timeout=10)
        assert r.status_code == 200, (claims, r.text)


def test_published_message_is_text_sqs_accepts(stack: Stack) -> None:
    name = f"sec-chars-{uuid.uuid4().hex[:6]}"
    queue_url = stack.cli("subscribe", name).stdout.strip().splitlines()[-1]
    one, two = "a\uffff", "b\ufffe \U0001f642"
    headers = {"Authorization": f"Bearer {_signed()}"}
    r = requests.post(
        f"{stack.api_url}/data", json={"informationOne": one, "informationTwo": two}, headers=headers, timeout=10
    )
    assert r.status_code == 202, r.text
    sqs = stack.boto("sqs")
    deadline, bodies = time.monotonic() + 10, []
    while not bodies and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies = [m["Body"] for m in got.get("Messages", [])]
    [body] = [b for b in bodies if r.json()["id"] in b]
    assert not SQS_REFUSES.search(body), ascii(body)
    assert json.loads(body)["data"] == {"informationOne": one, "informationTwo": two}
