"""EventTopic: the SNS topic every event goes through, and the customer-managed key of all messaging.

The one key encrypts the topic, every consumer queue and DLQ, the bus target queues, the
scheduler DLQ and the alarm topic, so a single key policy states who may read messages.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.context import AwsContext
from infra.settings import Settings

# Services that encrypt into or decrypt from resources under this key on our behalf: SNS delivering
# to encrypted queues, EventBridge delivering to target queues and DLQs, CloudWatch alarms and
# EventBridge Scheduler publishing. Functions and SQS are granted through IAM (the root statement).
KEY_USER_SERVICES = (
    "sns.amazonaws.com",
    "events.amazonaws.com",
    "cloudwatch.amazonaws.com",
    "scheduler.amazonaws.com",
)


def key_policy(ctx: AwsContext) -> pulumi.Output[str]:
    return policies.document(
        [
            # A key policy's Resource is always "*", meaning this key. The root statement lets IAM
            # policies grant the key; without it only this document could, and no one could manage it.
            policies.allow(["kms:*"], ["*"], sid="EnableIamPolicies", principal={"AWS": ctx.root_principal()}),
            policies.allow(
                ["kms:Decrypt", "kms:GenerateDataKey*"],
                ["*"],
                sid="AllowAwsServicesToUseTheKey",
                # No aws:SourceAccount condition: not every one of these services sets it on its KMS
                # calls, and a condition that never matches silently drops every delivery.
                principal={"Service": list(KEY_USER_SERVICES)},
            ),
        ]
    )


class EventTopic(pulumi.ComponentResource):
    key: aws.kms.Key
    alias: aws.kms.Alias
    topic: aws.sns.Topic
    topic_policy: aws.sns.TopicPolicy

    def __init__(
        self, name: str, settings: Settings, ctx: AwsContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fanout:aws:EventTopic", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = settings.prefix
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{prefix}: SNS topic, SQS queues and DLQs",
            enable_key_rotation=True,
            deletion_window_in_days=30 if settings.production else 7,
            policy=key_policy(ctx),
            opts=child,
        )
        self.alias = aws.kms.Alias(
            f"{name}-key-alias", name=f"alias/{prefix}-messaging", target_key_id=self.key.id, opts=child
        )
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=settings.topology.topic_name,
            kms_master_key_id=self.key.arn,
            tracing_config="Active",
            opts=child,
        )
        self.topic_policy = aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=self.topic.arn,
            policy=policies.document(
                [
                    # What the default topic policy grants the owner, kept because a custom policy replaces it.
                    policies.allow(
                        [
                            "sns:GetTopicAttributes",
                            "sns:SetTopicAttributes",
                            "sns:Subscribe",
                            "sns:ListSubscriptionsByTopic",
                            "sns:Publish",
                        ],
                        [self.topic.arn],
                        sid="OwnerAccount",
                        principal={"AWS": ctx.root_principal()},
                    ),
                    policies.deny_insecure_transport("sns:Publish", [self.topic.arn]),
                ]
            ),
            opts=child,
        )
        self.register_outputs({"topic_arn": self.topic.arn, "key_arn": self.key.arn})
