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
from infra.subscribers import topic_statements

# Services that encrypt into or decrypt from resources under this key on our behalf: SNS delivering
# to encrypted queues, EventBridge delivering to target queues and DLQs, CloudWatch alarms publishing
# to the encrypted alarm topic, EventBridge Scheduler writing to its DLQ. Functions are granted
# through IAM (the root statement), each only through the service that uses the key for it.
KEY_USER_SERVICES = (
    "sns.amazonaws.com",
    "events.amazonaws.com",
    "cloudwatch.amazonaws.com",
    "scheduler.amazonaws.com",
)


def service_sources(settings: Settings, ctx: AwsContext) -> dict[str, pulumi.Output[str]]:
    """Per service principal that names its resource, the ARN (pattern) of this stack's resources.

    SNS, CloudWatch and Scheduler are held to this account (aws:SourceAccount) and to the stack's
    own resources (aws:SourceArn), so another account's topic, alarm or schedule cannot use the key
    through the service (the confused deputy). The ARNs are built from names, not read from the
    resources: those resources are encrypted with this key, so they are created after it.
    EventBridge is held by the queue instead (`queue_context`).
    """
    prefix = settings.prefix
    return {
        # SNS sends aws:SourceArn (the topic) when it encrypts into a subscribed queue (SQS developer
        # guide, "Configure KMS permissions for AWS services"; the AWS CDK adds the same condition to
        # a queue key for its SNS subscriptions, aws/aws-cdk#20339): the events and alarm topics.
        "sns.amazonaws.com": ctx.arn("sns", f"{prefix}-*"),
        # CloudWatch names the alarm publishing to the encrypted alarm topic.
        "cloudwatch.amazonaws.com": ctx.arn("cloudwatch", f"alarm:{prefix}-*"),
        # Scheduler names the schedule writing to its DLQ (its role also holds the key through IAM).
        "scheduler.amazonaws.com": ctx.arn("scheduler", f"schedule/default/{prefix}-*"),
    }


def queue_context(settings: Settings, ctx: AwsContext) -> pulumi.Output[str]:
    """The ARN pattern of this stack's queues, as SQS names them in the KMS encryption context."""
    return ctx.arn("sqs", f"{settings.prefix}-*")


def eventbridge_statement(queues: pulumi.Input[str]) -> policies.Statement:
    """EventBridge encrypting into target queues and DLQs whose ARN matches `queues`.

    No document says EventBridge sends aws:SourceArn or aws:SourceAccount to KMS when it delivers
    to an encrypted SQS target (the EventBridge user guide's SQS target example grants the key
    with no condition), and a condition on a key that never arrives drops every delivery. What SQS
    itself guarantees is the encryption context of every data key it asks KMS for: the queue's
    ARN under aws:sqs:arn (SQS developer guide, "Key management", encryption context). So the
    key serves EventBridge only for these queues.
    """
    return policies.allow(
        ["kms:Decrypt", "kms:GenerateDataKey*"],
        ["*"],
        sid="ServiceEvents",
        principal={"Service": "events.amazonaws.com"},
        condition={"ArnLike": {"kms:EncryptionContext:aws:sqs:arn": queues}},
    )


def key_policy(settings: Settings, ctx: AwsContext) -> pulumi.Output[str]:
    statements = [
        # A key policy's Resource is always "*", meaning this key. The root statement lets IAM
        # policies grant the key; without it only this document could, and no one could manage it.
        policies.allow(["kms:*"], ["*"], sid="EnableIamPolicies", principal={"AWS": ctx.root_principal()}),
    ]
    for service, source in service_sources(settings, ctx).items():
        statements.append(
            policies.allow(
                ["kms:Decrypt", "kms:GenerateDataKey*"],
                ["*"],
                sid="Service" + service.split(".")[0].capitalize(),
                principal={"Service": service},
                condition={
                    "StringEquals": {"aws:SourceAccount": ctx.account_id},
                    "ArnLike": {"aws:SourceArn": source},
                },
            )
        )
    statements.append(eventbridge_statement(queue_context(settings, ctx)))
    return policies.document(statements)


class EventTopic(pulumi.ComponentResource):
    key: aws.kms.Key
    alias: aws.kms.Alias
    topic: aws.sns.Topic
    topic_policy: aws.sns.TopicPolicy
    tracing_policy: aws.xray.ResourcePolicy

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
            policy=key_policy(settings, ctx),
            tags=settings.tags,
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
            **fifo_topic_args(settings),
            opts=child,
        )
        # Active tracing: SNS writes its segments to X-Ray only if X-Ray's resource policy lets it
        # (X-Ray developer guide, "Amazon SNS and AWS X-Ray"); without one they go missing silently.
        # Scoped to this account and this topic, as the guide's example policy is.
        self.tracing_policy = aws.xray.ResourcePolicy(
            f"{name}-xray-sns",
            policy_name=f"{prefix}-sns-active-tracing",
            policy_document=policies.document(
                [
                    policies.allow(
                        ["xray:PutTraceSegments", "xray:GetSamplingRules", "xray:GetSamplingTargets"],
                        ["*"],
                        sid="SnsActiveTracing",
                        principal={"Service": "sns.amazonaws.com"},
                        condition={
                            "StringEquals": {"aws:SourceAccount": ctx.account_id},
                            "ArnLike": {"aws:SourceArn": self.topic.arn},
                        },
                    )
                ]
            ),
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
                    # fanout:subscribers: sns:Subscribe with protocol sqs or lambda, nothing else.
                    *topic_statements(settings.topology.subscribers, ctx.partition, self.topic.arn),
                    policies.deny_insecure_transport("sns:Publish", [self.topic.arn]),
                ]
            ),
            opts=child,
        )
        self.register_outputs({"topic_arn": self.topic.arn, "key_arn": self.key.arn})

    def key_through(self, ctx: AwsContext, service: str, sid: str) -> policies.Statement:
        """The messaging key for a role, only through `service` ("sns": publishing to the encrypted
        topic; "sqs": sending to or receiving from an encrypted queue), as the table key is."""
        return policies.allow(
            ["kms:Decrypt", "kms:GenerateDataKey"],
            [self.key.arn],
            sid=sid,
            condition={"StringEquals": {"kms:ViaService": via_service(service, ctx.region)}},
        )


def fifo_topic_args(settings: Settings) -> dict[str, object]:
    """A FIFO topic for `fanout:ordering: fifo`: each subject (the message group) in publish order.

    Deduplication ids are the event ids the publishers set, never a hash of the content (two events
    may carry the same data). High-throughput mode (FifoThroughputScope MessageGroup): the quota is
    the region's per account rather than 3,000 messages a second per topic, and deduplication is
    checked within a message group only, which loses nothing here: an event id always travels in
    the same group (its subject). SNS allows switching the scope to MessageGroup but never back.
    """
    if not settings.topology.fifo:
        return {}
    return {"fifo_topic": True, "content_based_deduplication": False, "fifo_throughput_scope": "MessageGroup"}


def via_service(service: str, region: pulumi.Input[str]) -> pulumi.Output[str]:
    """The kms:ViaService value of an AWS service in a region: "sns.eu-west-1.amazonaws.com"."""
    return pulumi.Output.concat(service, ".", region, ".amazonaws.com")
