"""EventBus: where the persister announces fanout.data.persisted.v1 for anyone downstream.

An archive keeps the bus's events for replay. Readers subscribe with a bus consumer (a rule, a
queue and its DLQs each). With `fanout:persistedQueue: true` the stack also keeps a shared queue of
every persisted event for readers outside the topology to poll (a rule with retries and a DLQ, the
queue, a DLQ for what readers fail); it holds users' data for 4 days, so it is off unless asked
for, and its oldest message's age raises an alarm like any consumer's backlog.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from fanout.topology import PERSISTED_TYPE
from infra import policies
from infra.components.queues import (
    DLQ_RETENTION_SECONDS,
    allow_redrive_from,
    encrypted_queue,
    queue_policy,
    redrive_to,
)
from infra.settings import Settings
from infra.subscribers import bus_statements

PERSISTER_SOURCE = "fanout.persister"


class EventBus(pulumi.ComponentResource):
    bus: aws.cloudwatch.EventBus
    bus_policy: aws.cloudwatch.EventBusPolicy | None
    archive: aws.cloudwatch.EventArchive
    # The shared persisted-events queue and its plumbing: None unless fanout:persistedQueue is true.
    rule: aws.cloudwatch.EventRule | None = None
    target: aws.cloudwatch.EventTarget | None = None
    target_queue: aws.sqs.Queue | None = None
    target_dlq: aws.sqs.Queue | None = None
    reader_dlq: aws.sqs.Queue | None = None
    reader_redrive_allow: aws.sqs.RedriveAllowPolicy | None = None
    reader_dlq_policy: aws.sqs.QueuePolicy | None = None
    target_queue_policy: aws.sqs.QueuePolicy | None = None
    target_dlq_policy: aws.sqs.QueuePolicy | None = None

    def __init__(
        self, name: str, settings: Settings, key_arn: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fanout:aws:EventBus", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = settings.prefix
        self.bus = aws.cloudwatch.EventBus(f"{name}-bus", name=settings.topology.event_bus_name, opts=child)
        # fanout:subscribers may manage the rules they create on the bus, nothing else; unset: no policy,
        # so no other account can do anything with the bus.
        self.bus_policy = None
        subscribers = settings.topology.subscribers
        if subscribers:
            partition = self.bus.arn.apply(lambda arn: arn.split(":")[1])
            rules = self.bus.arn.apply(lambda arn: arn.replace(":event-bus/", ":rule/") + "/")
            self.bus_policy = aws.cloudwatch.EventBusPolicy(
                f"{name}-policy",
                event_bus_name=self.bus.name,
                policy=policies.document(bus_statements(subscribers, partition, rules)),
                opts=child,
            )
        self.archive = aws.cloudwatch.EventArchive(
            f"{name}-archive",
            name=f"{prefix}-persisted",
            event_source_arn=self.bus.arn,
            event_pattern=json.dumps({"source": [PERSISTER_SOURCE]}),
            retention_days=settings.archive_retention_days,
            description="persisted events, kept for replay",
            opts=child,
        )
        if settings.persisted_queue:
            self._persisted_queue(name, settings, key_arn)
        self.register_outputs({"bus_name": self.bus.name})

    def _persisted_queue(self, name: str, settings: Settings, key_arn: pulumi.Input[str]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        prefix = settings.prefix
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-persisted-rule",
            name=f"{prefix}-persisted",
            event_bus_name=self.bus.name,
            event_pattern=json.dumps({"source": [PERSISTER_SOURCE], "detail-type": [PERSISTED_TYPE]}),
            description=f"{PERSISTED_TYPE} to the downstream queue",
            opts=child,
        )
        # Two DLQs: one for what EventBridge cannot deliver, one for what downstream readers cannot process.
        self.target_dlq = encrypted_queue(
            f"{name}-persisted-target-dlq",
            f"{prefix}-persisted-target-dlq",
            key_arn,
            parent=self,
            retention_seconds=DLQ_RETENTION_SECONDS,
        )
        self.reader_dlq = encrypted_queue(
            f"{name}-persisted-dlq",
            f"{prefix}-persisted-events-dlq",
            key_arn,
            parent=self,
            retention_seconds=DLQ_RETENTION_SECONDS,
        )
        self.target_queue = encrypted_queue(
            f"{name}-persisted-queue",
            f"{prefix}-persisted-events",
            key_arn,
            parent=self,
            redrive_policy=redrive_to(self.reader_dlq, 5),
        )
        self.reader_redrive_allow = allow_redrive_from(
            f"{name}-persisted-dlq-redrive-allow", self.reader_dlq, self.target_queue, parent=self
        )
        self.reader_dlq_policy = queue_policy(f"{name}-persisted-dlq-policy", self.reader_dlq, parent=self)
        # EventBridge delivers to both (the DLQ when the target refuses), only for this rule.
        self.target_queue_policy = queue_policy(
            f"{name}-persisted-queue-policy",
            self.target_queue,
            parent=self,
            service="events.amazonaws.com",
            source_arn=self.rule.arn,
        )
        self.target_dlq_policy = queue_policy(
            f"{name}-persisted-target-dlq-policy",
            self.target_dlq,
            parent=self,
            service="events.amazonaws.com",
            source_arn=self.rule.arn,
        )
        self.target = aws.cloudwatch.EventTarget(
            f"{name}-persisted-target",
            rule=self.rule.name,
            event_bus_name=self.bus.name,
            arn=self.target_queue.arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=24 * 3600, maximum_retry_attempts=20
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=self.target_dlq.arn),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.target_queue_policy, self.target_dlq_policy]),
        )

    @property
    def targets(self) -> list[aws.cloudwatch.EventTarget]:
        return [self.target] if self.target is not None else []

    @property
    def dead_letter_queues(self) -> dict[str, aws.sqs.Queue]:
        """By alarm slug; empty without the persisted-events queue."""
        if self.target_dlq is None or self.reader_dlq is None:
            return {}
        return {"bus-persisted-target": self.target_dlq, "bus-persisted-readers": self.reader_dlq}
