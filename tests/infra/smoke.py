"""Post-deploy smoke test: the end-to-end round trip against a deployed stack, through CloudFront.

    pulumi stack output --json --show-secrets --stack dev > outputs.json
    .venv/bin/python -m tests.infra.smoke --outputs outputs.json

Gets a token the way the stack's identity allows (Cognito: a throwaway user, deleted afterwards;
external issuer: $SMOKE_TOKEN; hs256: the secret from Secrets Manager), then checks the web app,
POST /data -> 202, the item readable through GET /data/{id} and GET /data, 401 without a token,
404 for an unknown path, the OpenAPI document, and the AsyncAPI document published at
`asyncapi_url` (this stack's topic, a receive operation per consumer). Needs AWS credentials only
for the token.
Throwaway users (and the items they stored) never outlive a run for long: every run first deletes
smoke users older than `--ttl-minutes` (a runner that died mid-run could not), and
`--clean-up-only` (the workflow's always-run step) deletes every smoke user of the pool and
nothing else.
Not collected by pytest (no test_ prefix): it talks to AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any


class SmokeFailure(Exception):
    pass


def request(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)
    print(f"ok  {message}")


SMOKE_USER_PREFIX = "smoke-"


def stale_smoke_users(users: list[dict[str, Any]], now: datetime, ttl: timedelta) -> list[str]:
    """Usernames of smoke users created more than `ttl` before `now` (ListUsers' entries)."""
    return [
        u["Username"] for u in users if u["Username"].startswith(SMOKE_USER_PREFIX) and now - u["UserCreateDate"] >= ttl
    ]


def delete_items_of(outputs: dict[str, Any], sub: str) -> int:
    """Deletes what a smoke user stored in the data table (pk USER#<sub>); returns how many items."""
    import boto3

    region = outputs["topic_arn"].split(":")[3]
    table, pk = outputs["table_name"], f"USER#{sub}"
    ddb = boto3.client("dynamodb", region_name=region)
    deleted = 0
    for page in ddb.get_paginator("query").paginate(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ProjectionExpression="pk, sk",
    ):
        for item in page["Items"]:
            ddb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
            deleted += 1
    return deleted


def _sub(attributes: list[dict[str, str]]) -> str | None:
    return next((a["Value"] for a in attributes if a["Name"] == "sub"), None)


def clean_up_smoke_users(outputs: dict[str, Any], ttl: timedelta) -> list[str]:
    """Deletes the pool's smoke users older than `ttl`; returns their names. No pool: nothing to do."""
    pool = outputs.get("user_pool_id")
    if outputs.get("identity_mode") != "cognito" or not pool:
        return []
    import boto3

    idp = boto3.client("cognito-idp", region_name=pool.split("_", 1)[0])
    users: list[dict[str, Any]] = []
    for page in idp.get_paginator("list_users").paginate(UserPoolId=pool, Filter=f'username ^= "{SMOKE_USER_PREFIX}"'):
        users += page["Users"]
    stale = stale_smoke_users(users, datetime.now(UTC), ttl)
    subs = {u["Username"]: _sub(u.get("Attributes", [])) for u in users}
    for username in stale:
        sub = subs.get(username)
        if sub:
            delete_items_of(outputs, sub)
        idp.admin_delete_user(UserPoolId=pool, Username=username)
        print(f"deleted smoke user {username}")
    return stale


@contextmanager
def cognito_token(outputs: dict[str, Any]) -> Iterator[str]:
    import boto3

    pool, client_id = outputs["user_pool_id"], outputs["client_id"]
    idp = boto3.client("cognito-idp", region_name=pool.split("_", 1)[0])
    username = f"{SMOKE_USER_PREFIX}{secrets.token_hex(6)}@example.com"
    password = "Sm0ke-" + secrets.token_urlsafe(18) + "-A1"
    created = idp.admin_create_user(UserPoolId=pool, Username=username, MessageAction="SUPPRESS")
    sub = _sub(created["User"].get("Attributes", []))
    try:
        idp.admin_set_user_password(UserPoolId=pool, Username=username, Password=password, Permanent=True)
        for group in ("data.read", "data.write"):
            idp.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=group)
        auth = idp.admin_initiate_auth(
            UserPoolId=pool,
            ClientId=client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        # The ID token: its `aud` is the app client, which is what the authorizer checks.
        yield auth["AuthenticationResult"]["IdToken"]
    finally:
        # What it stored goes with it: prd keeps no smoke-test items.
        if sub:
            delete_items_of(outputs, sub)
        idp.admin_delete_user(UserPoolId=pool, Username=username)


@contextmanager
def hs256_token(outputs: dict[str, Any]) -> Iterator[str]:
    import boto3
    import jwt

    arn = outputs["jwt_secret_arn"]
    secret = boto3.client("secretsmanager", region_name=arn.split(":")[3]).get_secret_value(SecretId=arn)
    now = int(time.time())
    claims = {"sub": f"smoke-{secrets.token_hex(4)}", "exp": now + 600, "iat": now, "Role": ["data.read", "data.write"]}
    yield jwt.encode(claims, secret["SecretString"], algorithm="HS256")


@contextmanager
def token_for(outputs: dict[str, Any]) -> Iterator[str]:
    mode = outputs.get("identity_mode")
    if mode == "cognito":
        with cognito_token(outputs) as token:
            yield token
    elif mode == "hs256":
        with hs256_token(outputs) as token:
            yield token
    else:
        token = os.environ.get("SMOKE_TOKEN")
        if not token:
            raise SmokeFailure("an external issuer signs the tokens: set SMOKE_TOKEN to a token with both roles")
        yield token


def round_trip(base: str, token: str, wait_seconds: float) -> None:
    status, _ = request("GET", f"{base}/")
    expect(status == 200, "the web app answers at /")
    status, config = request("GET", f"{base}/config.json")
    expect(status == 200 and isinstance(config, dict) and "mode" in config, "config.json says how to sign in")
    status, doc = request("GET", f"{base}/openapi.json")
    expect(status == 200 and isinstance(doc, dict) and "openapi" in doc, "GET /openapi.json is an OpenAPI document")
    status, body = request("GET", f"{base}/data")
    expect(status == 401 and body == {"message": "Unauthorized"}, "GET /data without a token is 401 Unauthorized")
    status, body = request("GET", f"{base}/data/nothing/here", token)
    expect(status == 404 and isinstance(body, dict) and "message" in body, "an unknown path is a JSON 404")

    marker = f"smoke {secrets.token_hex(4)}"
    status, body = request("POST", f"{base}/data", token, {"informationOne": marker, "informationTwo": "round trip"})
    expect(status == 202 and isinstance(body, dict) and body.get("id"), f"POST /data is accepted ({status})")
    event_id = body["id"]
    deadline = time.monotonic() + wait_seconds
    while True:
        status, item = request("GET", f"{base}/data/{event_id}", token)
        if status == 200:
            break
        if time.monotonic() > deadline:
            raise SmokeFailure(f"GET /data/{event_id} still {status} after {wait_seconds:.0f} s: not persisted")
        time.sleep(1)
    expect(item.get("informationOne") == marker, "the item is persisted and readable by id")
    status, page = request("GET", f"{base}/data?limit=100", token)
    expect(status == 200 and any(i["id"] == event_id for i in page["items"]), "GET /data lists it")


def published_contract(outputs: dict[str, Any]) -> None:
    """The AsyncAPI document the stack publishes for subscribers, at its asyncapi_url, with its own topic."""
    url = outputs.get("asyncapi_url")
    expect(bool(url), "the stack outputs asyncapi_url")
    status, doc = request("GET", url)
    expect(status == 200 and isinstance(doc, dict) and doc.get("asyncapi") == "3.0.0", "asyncapi_url is AsyncAPI 3.0")
    expect(doc["channels"]["topic"].get("x-arn") == outputs["topic_arn"], "the document names this stack's topic")
    receive = {n for n, op in doc.get("operations", {}).items() if op.get("action") == "receive"}
    expect(set(outputs.get("consumers", {})) <= receive, "every consumer of the stack has its receive operation")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.infra.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", required=True, help="file with `pulumi stack output --json --show-secrets`")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the item to be persisted")
    parser.add_argument(
        "--ttl-minutes", type=float, default=60.0, help="smoke users older than this are deleted first (default 60)"
    )
    parser.add_argument("--clean-up-only", action="store_true", help="delete every smoke user of the pool, then stop")
    args = parser.parse_args(argv)
    with open(args.outputs, encoding="utf-8") as fh:
        outputs = json.load(fh)
    if args.clean_up_only:
        clean_up_smoke_users(outputs, timedelta(0))
        return 0
    clean_up_smoke_users(outputs, timedelta(minutes=args.ttl_minutes))
    base = outputs["web_url"].rstrip("/")
    print(f"smoke test against {base}")
    try:
        with token_for(outputs) as token:
            round_trip(base, token, args.wait)
        published_contract(outputs)
    except SmokeFailure as exc:
        print(f"FAILED {exc}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
