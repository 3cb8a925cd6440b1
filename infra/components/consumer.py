"""Consumer: the way to subscribe a new consumer to the topic (the persister is one too).

Per consumer: a queue and its DLQ, a subscription DLQ for what SNS cannot deliver, queue
policies that admit only this topic, a raw-delivery subscription with the consumer's filter
policy, and, when the consumer names a handler, a function fed by an event source mapping
that reports partial batch failures. Adding a consumer is one entry in `fanout:consumers`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from fanout.topology import Consumer as ConsumerSpec
from infra import policies
from infra.components.function import FunctionSpec, LambdaFunction, SharedCode, handler_path
from infra.components.queues import (
    DLQ_RETENTION_SECONDS,
    allow_redrive_from,
    encrypted_queue,
    queue_policy,
    redrive_to,
)
from infra.components.topic import EventTopic


class Consumer(pulumi.ComponentResource):
    spec: ConsumerSpec
    queue: aws.sqs.Queue
    dlq: aws.sqs.Queue
    subscription_dlq: aws.sqs.Queue
    queue_policy: aws.sqs.QueuePolicy
    dlq_policy: aws.sqs.QueuePolicy
    subscription_dlq_policy: aws.sqs.QueuePolicy
    redrive_allow: aws.sqs.RedriveAllowPolicy
    subscription: aws.sns.TopicSubscription
    function: LambdaFunction | None
    event_source_mapping: aws.lambda_.EventSourceMapping | None

    def __init__(
        self,
        name: str,
        spec: ConsumerSpec,
        topic: EventTopic,
        shared: SharedCode,
        *,
        statements: Sequence[pulumi.Input[policies.Statement]] = (),
        environment: Mapping[str, pulumi.Input[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("fanout:aws:Consumer", name, None, opts)
        self.spec = spec
        topology = shared.settings.topology
        key_arn = topic.key.arn

        self.dlq = encrypted_queue(
            f"{name}-dlq", topology.dlq_name(spec), key_arn, parent=self, retention_seconds=DLQ_RETENTION_SECONDS
        )
        self.queue = encrypted_queue(
            f"{name}-queue",
            topology.queue_name(spec),
            key_arn,
            parent=self,
            # At least six times the function timeout, so a retry never overlaps a slow attempt.
            visibility_timeout_seconds=spec.visibility_timeout_seconds,
            redrive_policy=redrive_to(self.dlq, spec.max_receive_count),
        )
        self.redrive_allow = allow_redrive_from(f"{name}-dlq-redrive-allow", self.dlq, self.queue, parent=self)
        self.subscription_dlq = encrypted_queue(
            f"{name}-subscription-dlq",
            f"{topology.queue_name(spec)}-sub-dlq",
            key_arn,
            parent=self,
            retention_seconds=DLQ_RETENTION_SECONDS,
        )
        self.queue_policy = queue_policy(
            f"{name}-queue-policy", self.queue, parent=self, service="sns.amazonaws.com", source_arn=topic.topic.arn
        )
        self.dlq_policy = queue_policy(f"{name}-dlq-policy", self.dlq, parent=self)
        self.subscription_dlq_policy = queue_policy(
            f"{name}-subscription-dlq-policy",
            self.subscription_dlq,
            parent=self,
            service="sns.amazonaws.com",
            source_arn=topic.topic.arn,
        )
        self.subscription = aws.sns.TopicSubscription(
            f"{name}-subscription",
            topic=topic.topic.arn,
            protocol="sqs",
            endpoint=self.queue.arn,
            raw_message_delivery=True,
            filter_policy=json.dumps(spec.filter_policy, sort_keys=True) if spec.filter_policy else None,
            filter_policy_scope=spec.filter_policy_scope if spec.filter_policy else None,
            redrive_policy=pulumi.Output.json_dumps({"deadLetterTargetArn": self.subscription_dlq.arn}),
            # Without the queue policies in place, SNS's first deliveries would be refused.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.queue_policy, self.subscription_dlq_policy]),
        )

        self.function = None
        self.event_source_mapping = None
        if spec.handler:
            self.function = LambdaFunction(
                f"{name}-fn",
                FunctionSpec(
                    short_name=spec.name,
                    handler=handler_path(spec.handler),
                    timeout_seconds=spec.timeout_seconds,
                    memory_mb=spec.memory_mb,
                    environment={**spec.environment, **(environment or {})},
                    statements=[
                        policies.allow(
                            [
                                "sqs:ReceiveMessage",
                                "sqs:DeleteMessage",
                                "sqs:GetQueueAttributes",
                                "sqs:ChangeMessageVisibility",
                            ],
                            [self.queue.arn],
                            sid="ConsumeOwnQueue",
                        ),
                        policies.allow(["kms:Decrypt"], [key_arn], sid="DecryptMessages"),
                        *statements,
                    ],
                ),
                shared,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.event_source_mapping = aws.lambda_.EventSourceMapping(
                f"{name}-esm",
                event_source_arn=self.queue.arn,
                function_name=self.function.function.arn,
                batch_size=spec.batch_size,
                maximum_batching_window_in_seconds=spec.batching_window_seconds,
                function_response_types=["ReportBatchItemFailures"],
                scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                    maximum_concurrency=spec.max_concurrency
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.function.policy]),
            )
        self.register_outputs({"queue_url": self.queue.url, "dlq_url": self.dlq.url})

    @property
    def dead_letter_queues(self) -> list[aws.sqs.Queue]:
        return [self.dlq, self.subscription_dlq]
