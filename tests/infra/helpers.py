"""Small readers for policy documents, shared by the infra tests."""

from __future__ import annotations

import json
from typing import Any


def statements(policy: str | dict) -> list[dict[str, Any]]:
    doc = json.loads(policy) if isinstance(policy, str) else policy
    found = doc["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def has_tls_deny(policy: str, action_prefix: str) -> bool:
    for s in statements(policy):
        if (
            s.get("Effect") == "Deny"
            and s.get("Principal") == "*"
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            and any(a.startswith(action_prefix) for a in as_list(s.get("Action")))
        ):
            return True
    return False
