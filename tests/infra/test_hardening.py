"""Security hardening of the AWS stacks: external audience, WAF, CDN logs and TLS, Cognito, API edge."""

from __future__ import annotations

import copy
import json

import pulumi
import pytest

from fanout.topology import TopologyError
from infra import mocks, plan
from infra.paths import ROOT
from infra.settings import from_raw
from tests.infra.helpers import as_list, has_tls_deny, statements

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


CERT = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"


def hardened_config() -> dict:
    """dev with every hardening option switched on the other way from the defaults."""
    config, _ = mocks.read_stack_file("dev")
    config = copy.deepcopy(config)
    config["waf"] = {"enabled": True, "rateLimitPer5Min": 300, "blockDirectApi": False, "blockedAlarmThreshold": 7}
    config["customDomain"] = {"names": ["app.example.com", "www.example.com"], "certificateArn": CERT}
    config["identity"] = {"mode": "cognito", "mfa": "required", "threatProtection": "enforced"}
    config["alarms"] = True
    config["alarmEmail"] = "ops@example.com"
    return config


@pytest.fixture(scope="module")
def hardened():
    return plan.run_config("dev", hardened_config(), "eu-central-1")


def registered(recorded, typ: str) -> dict[str, dict]:
    return {r.name: r.inputs for r in recorded.resources if r.type == typ}


def one(recorded, typ: str) -> dict:
    found = registered(recorded, typ)
    assert len(found) == 1, (typ, list(found))
    return next(iter(found.values()))


def rate_rule(acl: dict) -> dict:
    rules = [r for r in acl.get("rules", []) if "rateBasedStatement" in r["statement"]]
    assert len(rules) == 1, acl.get("rules")
    return rules[0]


# --- item 4: per-client rate limits (WAF) ---------------------------------------------------------


def test_prd_cdn_has_a_per_ip_rate_limit_in_us_east_1(builds):
    recorded, _ = builds["prd"]
    acls = registered(recorded, "aws:wafv2/webAcl:WebAcl")
    edge = next(a for a in acls.values() if a["scope"] == "CLOUDFRONT")
    # CloudFront-scoped web ACLs exist only in us-east-1, whatever the stack's region.
    assert edge["region"] == "us-east-1"
    assert edge["defaultAction"] == {"allow": {}}
    rule = rate_rule(edge)
    statement = rule["statement"]["rateBasedStatement"]
    assert statement["aggregateKeyType"] == "IP" and "forwardedIpConfig" not in statement
    assert statement["limit"] == 1000 and statement["evaluationWindowSec"] == 300
    block = rule["action"]["block"]["customResponse"]
    assert block["responseCode"] == 429
    bodies = {b["key"]: b for b in edge["customResponseBodies"]}
    body = bodies[block["customResponseBodyKey"]]
    assert body["contentType"] == "APPLICATION_JSON" and "message" in json.loads(body["content"])
    assert rule["visibilityConfig"]["cloudwatchMetricsEnabled"] is True


@pulumi.runtime.test
def test_prd_distribution_is_guarded_by_the_edge_acl_and_the_stage_by_the_regional_one(prd):
    firewall = prd.firewall
    assert firewall is not None, "the WAF is on by default in prd"

    def check(args):
        web_acl_id, edge_arn, associated_acl, api_arn, associated_stage, stage_arn, headers, secret = args
        assert web_acl_id == edge_arn
        assert associated_acl == api_arn and associated_stage == stage_arn
        api_origin = [h for h in headers if h]
        assert api_origin == [[{"name": "x-fanout-origin-verify", "value": secret}]]

    origins = prd.website.distribution.origins.apply(lambda os: [o.custom_headers for o in os])
    return pulumi.Output.all(
        prd.website.distribution.web_acl_id,
        firewall.edge_acl.arn,
        firewall.api_association.web_acl_arn,
        firewall.api_acl.arn,
        firewall.api_association.resource_arn,
        prd.api.stage.arn,
        origins.apply(lambda hs: [[{"name": h.name, "value": h.value} for h in (x or [])] for x in hs]),
        firewall.origin_secret.result,
    ).apply(check)


def test_prd_stage_answers_only_requests_that_came_through_the_cdn(builds):
    recorded, _ = builds["prd"]
    acls = registered(recorded, "aws:wafv2/webAcl:WebAcl")
    api = next(a for a in acls.values() if a["scope"] == "REGIONAL")
    (rule,) = api["rules"]
    assert rule["action"]["block"]["customResponse"]["responseCode"] == 403
    match = rule["statement"]["notStatement"]["statement"]["byteMatchStatement"]
    assert match["fieldToMatch"] == {"singleHeader": {"name": "x-fanout-origin-verify"}}
    assert match["positionalConstraint"] == "EXACTLY" and len(match["searchString"]) >= 16
    # The API's JSON error shape, and only the body that rule answers with.
    (body,) = api["customResponseBodies"]
    assert body["key"] == rule["action"]["block"]["customResponse"]["customResponseBodyKey"]
    assert body["contentType"] == "APPLICATION_JSON" and "message" in json.loads(body["content"])
    assert "region" not in api  # REGIONAL: the stack's own region


def test_direct_callers_get_their_own_per_ip_limit_and_cdn_traffic_is_not_lumped_per_edge(hardened):
    """Requests from CloudFront arrive from a few edge addresses: a per-IP limit on them would throttle
    every user behind one edge location together, so the stage limits only requests without the header."""
    recorded, _ = hardened
    acls = registered(recorded, "aws:wafv2/webAcl:WebAcl")
    api = next(a for a in acls.values() if a["scope"] == "REGIONAL")
    statement = rate_rule(api)["statement"]["rateBasedStatement"]
    assert statement["aggregateKeyType"] == "IP" and statement["limit"] == 300
    match = statement["scopeDownStatement"]["notStatement"]["statement"]["byteMatchStatement"]
    assert match["fieldToMatch"] == {"singleHeader": {"name": "x-fanout-origin-verify"}}
    edge = next(a for a in acls.values() if a["scope"] == "CLOUDFRONT")
    assert rate_rule(edge)["statement"]["rateBasedStatement"]["limit"] == 300


def test_blocked_requests_raise_alarms_in_the_region_of_their_metrics(hardened):
    recorded, _ = hardened
    alarms = {a["name"]: a for a in registered(recorded, "aws:cloudwatch/metricAlarm:MetricAlarm").values()}
    edge, api = alarms["fanout-dev-waf-edge-blocked"], alarms["fanout-dev-waf-api-blocked"]
    for alarm in (edge, api):
        assert alarm["namespace"] == "AWS/WAFV2" and alarm["metricName"] == "BlockedRequests"
        assert alarm["threshold"] == 7 and alarm["period"] == 300 and alarm["statistic"] == "Sum"
    # CloudFront's WAF metrics are in us-east-1 without a Region dimension; alarms notify same-region topics.
    assert edge["region"] == "us-east-1" and set(edge["dimensions"]) == {"WebACL", "Rule"}
    assert api.get("region") is None and api["dimensions"]["Region"] == "eu-central-1"
    topics = registered(recorded, "aws:sns/topic:Topic")
    edge_topic = next(t for t in topics.values() if t.get("region") == "us-east-1")
    (edge_action,) = edge["alarmActions"]
    (api_action,) = api["alarmActions"]
    assert edge_action.endswith(f":{edge_topic['name']}") and api_action.endswith(":fanout-dev-alarms")
    subscriptions = registered(recorded, "aws:sns/topicSubscription:TopicSubscription")
    assert any(s.get("region") == "us-east-1" and s["endpoint"] == "ops@example.com" for s in subscriptions.values())


def test_waf_is_off_by_default_in_dev_and_refuses_unknown_or_contradictory_keys(builds):
    recorded, built = builds["dev"]
    assert built.firewall is None and not registered(recorded, "aws:wafv2/webAcl:WebAcl")
    with pytest.raises(
        TopologyError, match=r"fanout:waf\.rateLimit is not a known key \(did you mean fanout:waf\.rateLimitPer5Min\?\)"
    ):
        from_raw("prd", {"waf": {"rateLimit": 5}})
    with pytest.raises(TopologyError, match=r"fanout:waf\.rateLimitPer5Min"):
        from_raw("prd", {"waf": {"rateLimitPer5Min": 5}})  # AWS's minimum is 10
    with pytest.raises(TopologyError, match=r"fanout:waf\.blockDirectApi needs"):
        from_raw("prd", {"waf": {"enabled": False, "blockDirectApi": True}})


# --- item 11: CDN access logs ---------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prd"])
def test_cdn_access_logs_reach_a_private_bucket_through_log_delivery(builds, stack):
    recorded, built = builds[stack]
    logs = built.cdn_logs
    source = one(recorded, "aws:cloudwatch/logDeliverySource:LogDeliverySource")
    destination = one(recorded, "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination")
    delivery = one(recorded, "aws:cloudwatch/logDelivery:LogDelivery")
    assert source["logType"] == "ACCESS_LOGS" and source["resourceArn"].startswith("arn:aws:cloudfront::")
    # CloudFront's delivery source, and so its destination and delivery, live in us-east-1.
    assert source["region"] == destination["region"] == delivery["region"] == "us-east-1"
    assert delivery["deliverySourceName"] == source["name"]
    buckets = registered(recorded, "aws:s3/bucket:Bucket")
    log_bucket = next(name for name, b in buckets.items() if "cdnlog" in b["bucketPrefix"])
    assert destination["deliveryDestinationConfiguration"]["destinationResourceArn"].endswith("-cdnlog-mock")
    # No query strings (the sign-in redirect carries the authorization code there) and no cookies.
    assert "cs-uri-query" not in delivery["recordFields"] and "cs(Cookie)" not in delivery["recordFields"]
    assert {"c-ip", "sc-status", "cs-uri-stem", "x-edge-request-id"} <= set(delivery["recordFields"])
    prefix = log_bucket.removesuffix("-bucket")
    ownership = registered(recorded, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")[f"{prefix}-ownership"]
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"  # ACLs off: v2 logging needs none
    private = registered(recorded, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")[f"{prefix}-private"]
    assert all(private[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls"))
    expiry = registered(recorded, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")[
        f"{prefix}-expiry"
    ]
    assert expiry["rules"][0]["expiration"]["days"] == built.settings.log_retention_days
    policy = registered(recorded, "aws:s3/bucketPolicy:BucketPolicy")[f"{prefix}-bucket-policy"]["policy"]
    assert has_tls_deny(policy, "s3:")
    writes = [s for s in statements(policy) if "s3:PutObject" in as_list(s["Action"])]
    assert len(writes) == 1
    (write,) = writes
    assert write["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert write["Condition"]["StringEquals"]["aws:SourceAccount"] == mocks.ACCOUNT
    assert write["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:logs:us-east-1:{mocks.ACCOUNT}:delivery-source:*"
    assert logs.bucket is not None


# --- item 11: TLS ---------------------------------------------------------------------------------


def test_custom_domain_serves_tls_1_2_or_later_only(hardened):
    recorded, _ = hardened
    distribution = one(recorded, "aws:cloudfront/distribution:Distribution")
    assert distribution["aliases"] == ["app.example.com", "www.example.com"]
    assert distribution["viewerCertificate"] == {
        "acmCertificateArn": CERT,
        "sslSupportMethod": "sni-only",
        "minimumProtocolVersion": "TLSv1.2_2021",
    }
    client = one(recorded, "aws:cognito/userPoolClient:UserPoolClient")
    assert client["callbackUrls"] == ["https://app.example.com/"]  # sign-in returns to the name users open


def test_default_certificate_is_used_only_without_a_custom_domain(builds):
    """On *.cloudfront.net CloudFront fixes the policy at TLSv1 (documented in docs/deploy.md)."""
    recorded, _ = builds["prd"]
    distribution = one(recorded, "aws:cloudfront/distribution:Distribution")
    assert distribution["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}
    assert "aliases" not in distribution


@pytest.mark.parametrize(
    ("domain", "names"),
    [
        ({"names": ["app.example.com"], "certificateArn": CERT.replace("us-east-1", "eu-west-1")}, "us-east-1"),
        ({"names": ["App.Example.com"], "certificateArn": CERT}, r"customDomain\.names"),
        ({"names": ["*.example.com"], "certificateArn": CERT}, r"customDomain\.names"),
        ({"names": ["app.example.com"]}, r"fanout:customDomain must be"),
    ],
)
def test_bad_custom_domain_names_the_key(domain, names):
    with pytest.raises(TopologyError, match=names):
        from_raw("prd", {"customDomain": domain})


# --- item 11: Cognito MFA and threat protection ---------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prd"])
def test_cognito_offers_totp_mfa_to_every_user(builds, stack):
    recorded, _ = builds[stack]
    pool = one(recorded, "aws:cognito/userPool:UserPool")
    assert pool["mfaConfiguration"] == "OPTIONAL"
    assert pool["softwareTokenMfaConfiguration"] == {"enabled": True}
    assert "userPoolAddOns" not in pool and "userPoolTier" not in pool  # threat protection: off by default


def test_cognito_mfa_can_be_required_and_threat_protection_enforced(hardened):
    recorded, _ = hardened
    pool = one(recorded, "aws:cognito/userPool:UserPool")
    assert pool["mfaConfiguration"] == "ON"
    assert pool["userPoolAddOns"] == {"advancedSecurityMode": "ENFORCED"}
    assert pool["userPoolTier"] == "PLUS"  # threat protection exists only in the Plus plan
    with pytest.raises(TopologyError, match=r"fanout:identity\.threatProtection"):
        from_raw("prd", {"identity": {"threatProtection": "on"}})


# --- item 11: the execute-api endpoint ------------------------------------------------------------


def test_execute_api_endpoint_stays_the_cdn_origin_and_is_closed_to_others_in_prd(builds):
    """Disabling the default endpoint would cut CloudFront off (its origin is the execute-api name);
    instead prd's stage web ACL refuses what did not come through the CDN (see the WAF tests)."""
    recorded, built = builds["prd"]
    api = one(recorded, "aws:apigateway/restApi:RestApi")
    assert not api.get("disableExecuteApiEndpoint")
    assert built.settings.waf.block_direct_api is True
    distribution = one(recorded, "aws:cloudfront/distribution:Distribution")
    api_origins = [o for o in distribution["origins"] if o["originId"] == "api"]
    assert len(api_origins) == 1 and ".execute-api." in api_origins[0]["domainName"]


def test_deploy_doc_has_a_security_section_covering_protections_duties_and_gaps():
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "\n## Security\n" in text
    section = text.split("\n## Security\n", 1)[1].split("\n## ", 1)[0]
    for topic in ("**Tokens.**", "**Isolation.**", "**Encryption.**", "**WAF**", "**TLS.**", "**Logs.**"):
        assert topic in section, topic
    assert "**What you must configure.**" in section and "**Not covered.**" in section
    for duty in ("token.audience", "mfa", "customDomain"):
        assert duty in section, duty
