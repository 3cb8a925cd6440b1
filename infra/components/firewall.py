"""Firewall: AWS WAF web ACLs that keep one client from starving everyone.

- edge (scope CLOUDFRONT, which AWS keeps in us-east-1): a rate-based rule per client IP on the
  distribution. CloudFront is the one place that sees the real client address of every request.
- api (scope REGIONAL, on the API stage): the execute-api URL stays reachable, because it is the
  CDN's origin (disabling it needs a custom API domain, see docs/deploy.md "Security"). CloudFront
  marks its requests with a secret origin header; requests without it either get 403
  (`waf.blockDirectApi`, the production default) or their own per-IP limit. The stage never
  rate-limits requests that carry the header: they arrive from a few CloudFront addresses, and
  a per-IP limit there would throttle every user behind one edge location together.

Blocked answers keep the API's JSON error shape. With alarms on, blocked requests over a
threshold raise an alarm per ACL; the edge's metrics live in us-east-1, so its alarm and the topic
it notifies are created there (CloudWatch notifies only topics in the alarm's own region).
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra import policies
from infra.context import AwsContext
from infra.settings import Settings

# Where AWS keeps CloudFront-scoped resources: WAF web ACLs, their metrics, CloudFront log sources.
EDGE_REGION = "us-east-1"
ORIGIN_HEADER = "x-fanout-origin-verify"
RATE_RULE = "per-ip-rate"
DIRECT_RULE = "direct-api-access"
TOO_MANY = "too-many-requests"
NOT_HERE = "use-the-cdn"


def _visibility(metric: str) -> dict[str, Any]:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}


def _json_body(key: str, message: str) -> dict[str, str]:
    return {"key": key, "content": json.dumps({"message": message}), "content_type": "APPLICATION_JSON"}


def _rate_rule(limit: int, priority: int, scope_down: dict[str, Any] | None = None) -> dict[str, Any]:
    rate: dict[str, Any] = {"aggregate_key_type": "IP", "limit": limit, "evaluation_window_sec": 300}
    if scope_down is not None:
        rate["scope_down_statement"] = scope_down
    return {
        "name": RATE_RULE,
        "priority": priority,
        "action": {"block": {"custom_response": {"response_code": 429, "custom_response_body_key": TOO_MANY}}},
        "statement": {"rate_based_statement": rate},
        "visibility_config": _visibility(RATE_RULE),
    }


def _from_cdn(secret: pulumi.Input[str]) -> dict[str, Any]:
    """Matches requests that carry CloudFront's origin header with the secret value."""
    return {
        "byte_match_statement": {
            "field_to_match": {"single_header": {"name": ORIGIN_HEADER}},
            "positional_constraint": "EXACTLY",
            "search_string": secret,
            "text_transformations": [{"priority": 0, "type": "NONE"}],
        }
    }


class Firewall(pulumi.ComponentResource):
    origin_secret: random.RandomPassword
    edge_acl: aws.wafv2.WebAcl
    api_acl: aws.wafv2.WebAcl
    api_association: aws.wafv2.WebAclAssociation | None = None
    edge_key: aws.kms.Key | None = None
    edge_topic: aws.sns.Topic | None = None
    edge_topic_policy: aws.sns.TopicPolicy | None = None
    edge_email: aws.sns.TopicSubscription | None = None
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(
        self, name: str, settings: Settings, ctx: AwsContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fanout:aws:Firewall", name, None, opts)
        self._name = name
        self._settings = settings
        self._ctx = ctx
        self.alarms = {}
        waf = settings.waf
        prefix = settings.prefix
        child = pulumi.ResourceOptions(parent=self)
        self.origin_secret = random.RandomPassword(f"{name}-origin-secret", length=40, special=False, opts=child)
        secret = self.origin_secret.result

        self.edge_acl = aws.wafv2.WebAcl(
            f"{name}-edge",
            name=f"{prefix}-edge",
            description="fanout CDN: a request rate limit per client IP",
            scope="CLOUDFRONT",
            region=EDGE_REGION,
            default_action={"allow": {}},
            custom_response_bodies=[_json_body(TOO_MANY, "Too many requests from your address; retry later")],
            rules=[_rate_rule(waf.rate_limit_per_5min, 0)],
            visibility_config=_visibility(f"{prefix}-edge"),
            opts=child,
        )
        if waf.block_direct_api:
            api_rules = [
                {
                    "name": DIRECT_RULE,
                    "priority": 0,
                    "action": {
                        "block": {"custom_response": {"response_code": 403, "custom_response_body_key": NOT_HERE}}
                    },
                    "statement": {"not_statement": {"statement": _from_cdn(secret)}},
                    "visibility_config": _visibility(DIRECT_RULE),
                }
            ]
        else:
            # Direct callers come with their own address: limit them per IP like the edge does.
            api_rules = [_rate_rule(waf.rate_limit_per_5min, 0, {"not_statement": {"statement": _from_cdn(secret)}})]
        self.api_acl = aws.wafv2.WebAcl(
            f"{name}-api",
            name=f"{prefix}-api",
            description="fanout API stage: only the CDN, or a rate limit per IP for direct callers",
            scope="REGIONAL",
            default_action={"allow": {}},
            # Only the body its rule refers to.
            custom_response_bodies=[
                _json_body(NOT_HERE, "Forbidden: use the web app's URL, not the execute-api one")
                if waf.block_direct_api
                else _json_body(TOO_MANY, "Too many requests from your address; retry later")
            ],
            rules=api_rules,
            visibility_config=_visibility(f"{prefix}-api"),
            opts=child,
        )
        self.register_outputs({"edge_acl": self.edge_acl.arn, "api_acl": self.api_acl.arn})

    @property
    def origin_header(self) -> tuple[str, pulumi.Output[str]]:
        """(name, value) CloudFront adds to every request it sends to the API origin."""
        return ORIGIN_HEADER, self.origin_secret.result

    def protect_stage(self, stage: aws.apigateway.Stage) -> None:
        self.api_association = aws.wafv2.WebAclAssociation(
            f"{self._name}-api-stage",
            resource_arn=stage.arn,
            web_acl_arn=self.api_acl.arn,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def add_alarms(self, topic: aws.sns.Topic | None) -> None:
        """Blocked requests over the threshold, per ACL; `topic` is the stack's alarm topic (None: no alarms)."""
        s = self._settings
        if topic is None or not s.alarms:
            return
        child = pulumi.ResourceOptions(parent=self)
        prefix = s.prefix
        # Encrypted like every other topic of the stack, with a key of its own: a KMS key serves only its
        # region. CloudWatch may use it only for this account's alarms of this stack in that region.
        ctx = self._ctx
        self.edge_key = aws.kms.Key(
            f"{self._name}-edge-alarms-key",
            description=f"{prefix}: the edge alarm topic ({EDGE_REGION})",
            enable_key_rotation=True,
            deletion_window_in_days=30 if s.production else 7,
            region=EDGE_REGION,
            tags=s.tags,
            policy=policies.document(
                [
                    policies.allow(["kms:*"], ["*"], sid="EnableIamPolicies", principal={"AWS": ctx.root_principal()}),
                    policies.allow(
                        ["kms:Decrypt", "kms:GenerateDataKey*"],
                        ["*"],
                        sid="ServiceCloudwatch",
                        principal={"Service": "cloudwatch.amazonaws.com"},
                        condition={
                            "StringEquals": {"aws:SourceAccount": ctx.account_id},
                            "ArnLike": {
                                "aws:SourceArn": pulumi.Output.concat(
                                    "arn:",
                                    ctx.partition,
                                    ":cloudwatch:",
                                    EDGE_REGION,
                                    ":",
                                    ctx.account_id,
                                    ":alarm:",
                                    prefix,
                                    "-*",
                                )
                            },
                        },
                    ),
                ]
            ),
            opts=child,
        )
        self.edge_topic = aws.sns.Topic(
            f"{self._name}-edge-alarms",
            name=f"{prefix}-edge-alarms",
            region=EDGE_REGION,
            kms_master_key_id=self.edge_key.arn,
            opts=child,
        )
        self.edge_topic_policy = aws.sns.TopicPolicy(
            f"{self._name}-edge-alarms-policy",
            arn=self.edge_topic.arn,
            region=EDGE_REGION,
            policy=policies.document(
                [
                    policies.allow(
                        ["sns:Publish"],
                        [self.edge_topic.arn],
                        sid="CloudWatchAlarmsOfThisAccount",
                        principal={"Service": "cloudwatch.amazonaws.com"},
                        condition={"StringEquals": {"aws:SourceAccount": self._ctx.account_id}},
                    ),
                    policies.allow(
                        ["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:Subscribe", "sns:Publish"],
                        [self.edge_topic.arn],
                        sid="OwnerAccount",
                        principal={"AWS": self._ctx.root_principal()},
                    ),
                    policies.deny_insecure_transport("sns:Publish", [self.edge_topic.arn]),
                ]
            ),
            opts=child,
        )
        if s.alarm_email:
            self.edge_email = aws.sns.TopicSubscription(
                f"{self._name}-edge-alarms-email",
                topic=self.edge_topic.arn,
                protocol="email",
                endpoint=s.alarm_email,
                region=EDGE_REGION,
                opts=child,
            )
        threshold = s.waf.blocked_alarm_threshold
        for slug, acl, dimensions, region, alarm_topic in (
            ("edge", self.edge_acl, {"WebACL": self.edge_acl.name, "Rule": "ALL"}, EDGE_REGION, self.edge_topic),
            (
                "api",
                self.api_acl,
                {"WebACL": self.api_acl.name, "Rule": "ALL", "Region": self._ctx.region},
                None,
                topic,
            ),
        ):
            self.alarms[slug] = aws.cloudwatch.MetricAlarm(
                f"{self._name}-{slug}-blocked",
                name=f"{prefix}-waf-{slug}-blocked",
                alarm_description=(
                    f"the {slug} web ACL blocked at least {threshold} requests in 5 minutes: a flood, a scan, "
                    "or a limit too low for real traffic (WAF console: sampled requests)"
                ),
                namespace="AWS/WAFV2",
                metric_name="BlockedRequests",
                dimensions=dimensions,
                statistic="Sum",
                period=300,
                evaluation_periods=1,
                threshold=threshold,
                comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[alarm_topic.arn],
                ok_actions=[alarm_topic.arn],
                region=region,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[acl]),
            )
