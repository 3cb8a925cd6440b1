"""Security hardening of the AWS stacks (issue 13): external audience, WAF, CDN logs and TLS, Cognito, API edge."""

from __future__ import annotations

import pytest

from fanout.topology import TopologyError
from infra.settings import from_raw

EXTERNAL_TOKEN = {"algorithms": ["RS256"], "jwksUrl": "https://idp.example/jwks", "issuer": "https://idp.example/"}


@pytest.mark.parametrize("stack", ["dev", "prd"])
def test_external_issuer_without_audience_is_refused_naming_the_key(stack):
    """Without aud, a token the identity provider issued for any other application would be accepted."""
    with pytest.raises(TopologyError, match=r"fanout:token\.audience"):
        from_raw(stack, {"identity": {"mode": "external"}, "token": EXTERNAL_TOKEN})
    # The same when external is the mode implied by a JWKS URL.
    with pytest.raises(TopologyError, match=r"fanout:token\.audience"):
        from_raw(stack, {"token": EXTERNAL_TOKEN})
    accepted = from_raw(stack, {"identity": {"mode": "external"}, "token": {**EXTERNAL_TOKEN, "audience": "api://x"}})
    assert accepted.topology.auth.audience == "api://x"
