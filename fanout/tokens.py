"""Tokens for the local stack only: HS256 with the local secret, never used on AWS."""

from __future__ import annotations

import json
import time

import jwt

from handlers.core import auth, charset

ROLES = ("data.read", "data.write")
MAX_TTL = auth.MAX_LIFETIME  # the authorizer refuses any token that lives longer


def mint(secret: str, sub: str, roles: tuple[str, ...] | list[str] = ROLES, ttl: int = 3600) -> str:
    if not sub or not sub.strip() or len(sub) > 256:
        raise ValueError("sub must be 1 to 256 characters")
    if not charset.is_identifier_text(sub):
        raise ValueError("sub must not contain control, format or surrogate characters")
    if not 1 <= ttl <= MAX_TTL:
        raise ValueError(f"ttl must be from 1 to {MAX_TTL} seconds")
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown role {json.dumps(str(bad[0]))}; roles are {', '.join(ROLES)}")
    now = int(time.time())
    claims = {"sub": sub, "Role": list(roles), "iat": now, "exp": now + ttl, "iss": "fanout-local"}
    return jwt.encode(claims, secret, algorithm="HS256")
