"""IAM and resource-policy documents: the one implementation lives in the consumer package, shared here."""

from __future__ import annotations

from fanout_subscriber.policies import Statement, allow, assume_role, deny_insecure_transport, document, parse

__all__ = ["Statement", "allow", "assume_role", "deny_insecure_transport", "document", "parse"]
