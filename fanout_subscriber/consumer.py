"""Consumer: a complete, correct consumer of a fanout stack, in any account.

From a topic ARN (with an optional SNS filter policy) or a bus name/ARN (with an EventBridge event
pattern) it builds:

- the queue and its DLQ (a redrive policy after `max_receive_count` receives, a redrive-allow
  policy so only this queue uses that DLQ and a redrive can move messages back);
- a delivery DLQ for what the source cannot deliver at all (the SNS subscription's, or the
  EventBridge target's), so nothing is lost silently;
- queue policies that admit only the source (`aws:SourceArn` the topic or the rule) and refuse
  anything but TLS;
- topic source: a raw-delivery SQS subscription with the filter policy; bus source: a rule with the
  event pattern and a target with retries and the delivery DLQ;
- the KMS key of all three queues: the one given, or its own, whose key policy lets only the
  source's service (sns.amazonaws.com or events.amazonaws.com) encrypt into them, only for that
  topic or rule; a KMS-encrypted topic's deliveries fail without exactly this;
- optionally a function (`FunctionArgs`) with a least-privilege role (its queue, its key, what you
  add) fed by an event source mapping that reports partial batch failures;
- optionally a DLQ-depth alarm per DLQ (`DlqAlarm`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from fanout_subscriber import policies
from fanout_subscriber.function import Function, FunctionArgs
from fanout_subscriber.queues import (
    DLQ_RETENTION_SECONDS,
    allow_redrive_from,
    encrypted_queue,
    queue_policy,
    redrive_to,
)

FILTER_SCOPES = ("MessageAttributes", "MessageBody")
ORDERINGS = ("standard", "fifo")  # the fanout stack's `ordering` output
FIFO_SUFFIX = ".fifo"
FIFO_BATCH_MAX = 10  # Lambda's largest batch from a FIFO queue (and no batching window there)
RULE_NAME = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")


@dataclass(frozen=True)
class TopicSource:
    """The fanout stack's SNS topic (stack output `topic_arn`)."""

    topic_arn: pulumi.Input[str]
    filter_policy: Mapping[str, Any] | None = None  # e.g. {"type": ["fanout.data.generated.v1"]}
    filter_policy_scope: str = "MessageAttributes"
    # What the stack output `ordering` says: "fifo" for an SNS FIFO topic, whose events this consumer
    # then gets in FIFO queues, each subject in order. A plain string: it decides the queues' kind and
    # names when the program runs; a topic ARN that disagrees is refused (at preview, for an Output).
    ordering: str = "standard"

    @property
    def fifo(self) -> bool:
        return self.ordering == "fifo"


@dataclass(frozen=True)
class BusSource:
    """The fanout stack's EventBridge bus: its name in the same account, its ARN from another one.

    From another account (`cross_account=True`, with the bus ARN): EventBridge lets a rule created
    by another account target only an event bus there, not a queue, so the consumer gets an inbox
    bus of its own, a forwarding rule on the fanout bus (allowed by the stack's fanout:subscribers)
    targeting that inbox, and its queue's rule on the inbox.
    """

    event_bus: pulumi.Input[str]  # stack output `event_bus_name` (same account) or `event_bus_arn`
    event_pattern: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"detail-type": ["fanout.data.persisted.v1"]}
    rule_name: str | None = None  # None: Pulumi picks a unique name
    cross_account: bool = False


@dataclass(frozen=True)
class DlqAlarm:
    """An alarm when any message waits in a DLQ; `actions` are SNS topic ARNs to notify."""

    actions: Sequence[pulumi.Input[str]] = ()
    period_seconds: int = 60


class ConsumerError(ValueError):
    """Arguments that cannot describe a consumer; the message names the argument."""


def _check_fifo(source: TopicSource, names: Sequence[str | None], batch_size: int, window: int) -> None:
    """Refuse, in one line each, what SNS, SQS or Lambda would refuse for this topic's ordering."""
    if source.ordering not in ORDERINGS:
        raise ConsumerError(f"ordering must be one of {', '.join(ORDERINGS)} (the stack output ordering)")
    if isinstance(source.topic_arn, str):
        agreeing_topic(source.topic_arn, source.fifo)
    for name in names:
        if name is not None and name.endswith(FIFO_SUFFIX) != source.fifo:
            rule = (
                "must end in .fifo on a FIFO topic" if source.fifo else "ends in .fifo, which SQS keeps for FIFO queues"
            )
            raise ConsumerError(f"queue name {name!r} {rule}")
    if source.fifo and window:
        raise ConsumerError(
            "batching_window_seconds must be 0 on a FIFO topic: Lambda has no batching window for FIFO queues"
        )
    if source.fifo and batch_size > FIFO_BATCH_MAX:
        raise ConsumerError(f"batch_size must be from 1 to {FIFO_BATCH_MAX} on a FIFO topic (Lambda's FIFO maximum)")


def agreeing_topic(arn: str, fifo: bool) -> str:
    """The topic ARN, if the topic's kind (a FIFO topic's name ends in .fifo) is the one the consumer was told."""
    if arn.endswith(FIFO_SUFFIX) != fifo:
        want = "fifo" if arn.endswith(FIFO_SUFFIX) else "standard"
        raise ConsumerError(f"topic {arn} is a {want} topic: set ordering={want!r} (the stack output ordering)")
    return arn


def _check(source: TopicSource | BusSource, max_receive_count: int, batch_size: int, window: int) -> None:
    if isinstance(source, TopicSource):
        if source.filter_policy_scope not in FILTER_SCOPES:
            raise ConsumerError(f"filter_policy_scope must be one of {', '.join(FILTER_SCOPES)}")
        if source.filter_policy is not None and not isinstance(source.filter_policy, Mapping):
            raise ConsumerError("filter_policy must be a mapping (an SNS filter policy)")
    elif isinstance(source, BusSource):
        if not isinstance(source.event_pattern, Mapping) or not source.event_pattern:
            raise ConsumerError("event_pattern must be a non-empty mapping (an EventBridge event pattern)")
        if source.cross_account and isinstance(source.event_bus, str) and not source.event_bus.startswith("arn:"):
            raise ConsumerError("event_bus must be the bus ARN (stack output event_bus_arn) with cross_account")
        if source.rule_name is not None and not RULE_NAME.match(source.rule_name):
            raise ConsumerError(f"rule_name must be 1-64 letters, digits, '.', '-' or '_', got {source.rule_name!r}")
    else:
        raise ConsumerError("source must be a TopicSource or a BusSource")
    if not 1 <= max_receive_count <= 1000:
        raise ConsumerError(f"max_receive_count must be from 1 to 1000, got {max_receive_count}")
    if not 1 <= batch_size <= (10_000 if window else 10):
        raise ConsumerError(f"batch_size must be from 1 to 10 (to 10000 with a batching window), got {batch_size}")


class Consumer(pulumi.ComponentResource):
    """A queue (and optionally a function) receiving a fanout stack's events; see the module docstring."""

    source: TopicSource | BusSource
    key: aws.kms.Key | None
    key_arn: pulumi.Output[str]
    queue: aws.sqs.Queue
    dlq: aws.sqs.Queue
    delivery_dlq: aws.sqs.Queue
    queue_policy: aws.sqs.QueuePolicy
    dlq_policy: aws.sqs.QueuePolicy
    delivery_dlq_policy: aws.sqs.QueuePolicy
    redrive_allow: aws.sqs.RedriveAllowPolicy
    subscription: aws.sns.TopicSubscription | None
    rule: aws.cloudwatch.EventRule | None
    target: aws.cloudwatch.EventTarget | None
    inbox: aws.cloudwatch.EventBus | None  # cross-account bus consumers only
    inbox_policy: aws.cloudwatch.EventBusPolicy | None
    forward_rule: aws.cloudwatch.EventRule | None
    forward_target: aws.cloudwatch.EventTarget | None
    function: Function | None
    event_source_mapping: aws.lambda_.EventSourceMapping | None
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    fifo: bool

    def __init__(
        self,
        name: str,
        source: TopicSource | BusSource,
        *,
        queue_name: str | None = None,
        dlq_name: str | None = None,
        kms_key_arn: pulumi.Input[str] | None = None,
        max_receive_count: int = 3,
        visibility_timeout_seconds: int | None = None,
        function: FunctionArgs | None = None,
        batch_size: int = 10,
        batching_window_seconds: int = 0,
        max_concurrency: int = 2,
        dlq_alarm: DlqAlarm | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("fanout:aws:Consumer", name, None, opts)
        _check(source, max_receive_count, batch_size, batching_window_seconds)
        on_topic = isinstance(source, TopicSource)
        # An SNS FIFO topic delivers in order only to FIFO queues, and a FIFO subscription's DLQ
        # (like a FIFO queue's) must be FIFO too: all three queues follow the topic.
        fifo = isinstance(source, TopicSource) and source.fifo
        if isinstance(source, TopicSource):
            _check_fifo(source, (queue_name, dlq_name), batch_size, batching_window_seconds)
        self.source = source
        self.fifo = fifo
        child = pulumi.ResourceOptions(parent=self)
        service = "sns.amazonaws.com" if on_topic else "events.amazonaws.com"

        # The rule exists before the queues: its ARN scopes the key and queue policies.
        self.rule = self.target = self.subscription = None
        self.inbox = self.inbox_policy = self.forward_rule = self.forward_target = None
        # The bus the queue's own rule is on: the fanout bus, or this consumer's inbox.
        rule_bus: pulumi.Input[str] | None = None
        if isinstance(source, BusSource):
            rule_bus = self._inbox(name, source) if source.cross_account else source.event_bus
            self.rule = aws.cloudwatch.EventRule(
                f"{name}-rule",
                name=source.rule_name,
                event_bus_name=rule_bus,
                event_pattern=json.dumps(dict(source.event_pattern), sort_keys=True),
                description=f"{name}: events for this consumer's queue",
                opts=child,
            )
            source_arn: pulumi.Input[str] = self.rule.arn
        else:
            source_arn = source.topic_arn

        self.key = None
        if kms_key_arn is None:
            self.key = self._own_key(name, service, source_arn)
            kms_key_arn = self.key.arn
        self.key_arn = pulumi.Output.from_input(kms_key_arn)

        # At least six times the function timeout (AWS guidance), so a retry never overlaps a slow attempt.
        visibility = visibility_timeout_seconds or 6 * (function.timeout_seconds if function else 30)
        self.dlq = encrypted_queue(
            f"{name}-dlq", dlq_name, kms_key_arn, parent=self, retention_seconds=DLQ_RETENTION_SECONDS, fifo=fifo
        )
        self.queue = encrypted_queue(
            f"{name}-queue",
            queue_name,
            kms_key_arn,
            parent=self,
            visibility_timeout_seconds=visibility,
            redrive_policy=redrive_to(self.dlq, max_receive_count),
            fifo=fifo,
        )
        self.redrive_allow = allow_redrive_from(f"{name}-dlq-redrive-allow", self.dlq, self.queue, parent=self)
        # The names say which delivery DLQ this is; the resource names stay those fanout's stacks always had.
        delivery = "subscription-dlq" if on_topic else "target-dlq"
        self.delivery_dlq = encrypted_queue(
            f"{name}-{delivery}",
            delivery_dlq_name(queue_name, on_topic, fifo),
            kms_key_arn,
            parent=self,
            retention_seconds=DLQ_RETENTION_SECONDS,
            fifo=fifo,
        )
        self.queue_policy = queue_policy(
            f"{name}-queue-policy", self.queue, parent=self, service=service, source_arn=source_arn
        )
        self.dlq_policy = queue_policy(f"{name}-dlq-policy", self.dlq, parent=self)
        self.delivery_dlq_policy = queue_policy(
            f"{name}-{delivery}-policy", self.delivery_dlq, parent=self, service=service, source_arn=source_arn
        )
        # Without the queue policies in place, the source's first deliveries would be refused.
        after_policies = pulumi.ResourceOptions(parent=self, depends_on=[self.queue_policy, self.delivery_dlq_policy])
        if isinstance(source, TopicSource):
            policy = dict(source.filter_policy) if source.filter_policy else None
            self.subscription = aws.sns.TopicSubscription(
                f"{name}-subscription",
                # A topic ARN known only at deploy time (a StackReference output) is checked then.
                topic=pulumi.Output.from_input(source.topic_arn).apply(lambda arn: agreeing_topic(arn, fifo)),
                # SNS takes Subscribe in the topic's region only (the ARN's fourth field, the stack's
                # `region` output), wherever this project's provider points; the queue may be elsewhere.
                region=topic_region(source.topic_arn),
                protocol="sqs",
                endpoint=self.queue.arn,
                raw_message_delivery=True,
                filter_policy=json.dumps(policy, sort_keys=True) if policy else None,
                filter_policy_scope=source.filter_policy_scope if policy else None,
                redrive_policy=pulumi.Output.json_dumps({"deadLetterTargetArn": self.delivery_dlq.arn}),
                opts=after_policies,
            )
        else:
            assert self.rule is not None
            self.target = aws.cloudwatch.EventTarget(
                f"{name}-target",
                rule=self.rule.name,
                event_bus_name=rule_bus,
                arn=self.queue.arn,
                retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                    maximum_event_age_in_seconds=24 * 3600, maximum_retry_attempts=20
                ),
                dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=self.delivery_dlq.arn),
                opts=after_policies,
            )

        self.function = None
        self.event_source_mapping = None
        if function is not None:
            consume = [
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
                # Only through SQS, in the queue's region (its ARN's fourth field), like every key grant.
                policies.allow(
                    ["kms:Decrypt"],
                    [kms_key_arn],
                    sid="DecryptMessagesThroughSqs",
                    condition={
                        "StringEquals": {
                            "kms:ViaService": self.queue.arn.apply(lambda arn: f"sqs.{arn.split(':')[3]}.amazonaws.com")
                        }
                    },
                ),
            ]
            self.function = Function(
                f"{name}-fn",
                dataclasses.replace(function, statements=[*consume, *function.statements]),
                opts=child,
            )
            self.event_source_mapping = aws.lambda_.EventSourceMapping(
                f"{name}-esm",
                event_source_arn=self.queue.arn,
                function_name=self.function.function.arn,
                batch_size=batch_size,
                # Lambda takes no batching window for a FIFO queue (not even 0): leave it out there.
                maximum_batching_window_in_seconds=None if fifo else batching_window_seconds,
                # Failed messages are retried (and reach the DLQ) alone, without holding back their batch.
                function_response_types=["ReportBatchItemFailures"],
                scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(maximum_concurrency=max_concurrency),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.function.policy]),
            )

        self.alarms = {}
        if dlq_alarm is not None:
            for slug, dlq in (("dlq", self.dlq), (delivery, self.delivery_dlq)):
                self.alarms[slug] = aws.cloudwatch.MetricAlarm(
                    f"{name}-{slug}-depth",
                    alarm_description=f"{name}: a message is waiting in its {slug}; inspect it, fix, redrive",
                    namespace="AWS/SQS",
                    metric_name="ApproximateNumberOfMessagesVisible",
                    dimensions={"QueueName": dlq.name},
                    statistic="Maximum",
                    period=dlq_alarm.period_seconds,
                    evaluation_periods=1,
                    threshold=0,
                    comparison_operator="GreaterThanThreshold",
                    treat_missing_data="notBreaching",
                    alarm_actions=list(dlq_alarm.actions),
                    ok_actions=list(dlq_alarm.actions),
                    opts=child,
                )
        self.register_outputs(
            {"queue_url": self.queue.url, "queue_arn": self.queue.arn, "dlq_url": self.dlq.url, "key_arn": self.key_arn}
        )

    def _inbox(self, name: str, source: BusSource) -> pulumi.Output[str]:
        """This consumer's own bus, fed by a rule it creates on the fanout bus; returns the inbox's name."""
        child = pulumi.ResourceOptions(parent=self)
        self.inbox = aws.cloudwatch.EventBus(f"{name}-inbox", opts=child)
        # Only the fanout stack's account may put events here (the account id is the bus ARN's fifth field).
        fanout_root = pulumi.Output.from_input(source.event_bus).apply(
            lambda arn: f"arn:{arn.split(':')[1]}:iam::{arn.split(':')[4]}:root"
        )
        self.inbox_policy = aws.cloudwatch.EventBusPolicy(
            f"{name}-inbox-policy",
            event_bus_name=self.inbox.name,
            policy=policies.document(
                [
                    policies.allow(
                        ["events:PutEvents"],
                        [self.inbox.arn],
                        sid="FanoutBusForwardsHere",
                        principal={"AWS": fanout_root},
                    )
                ]
            ),
            opts=child,
        )
        # The fanout bus's policy lets a listed account manage only rules named after it.
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        self.forward_rule = aws.cloudwatch.EventRule(
            f"{name}-forward",
            name_prefix=pulumi.Output.concat(account, "-"),
            event_bus_name=source.event_bus,
            event_pattern=json.dumps(dict(source.event_pattern), sort_keys=True),
            description=f"{name}: to this consumer's inbox bus in its own account",
            opts=child,
        )
        self.forward_target = aws.cloudwatch.EventTarget(
            f"{name}-forward-target",
            rule=self.forward_rule.name,
            event_bus_name=source.event_bus,
            arn=self.inbox.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.inbox_policy]),
        )
        return self.inbox.name

    def _own_key(self, name: str, service: str, source_arn: pulumi.Input[str]) -> aws.kms.Key:
        """A key for this consumer's queues that only the source may encrypt into, for this source only."""
        invoke = pulumi.InvokeOutputOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke)
        region = aws.get_region_output(opts=invoke)
        root = pulumi.Output.concat("arn:", partition.partition, ":iam::", identity.account_id, ":root")
        # This account's queues in this region: the key's own queues are the only ones encrypted with it.
        queues = pulumi.Output.concat(
            "arn:", partition.partition, ":sqs:", region.region, ":", identity.account_id, ":*"
        )
        return aws.kms.Key(
            f"{name}-key",
            description=f"{name}: the consumer's queues and DLQs",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            policy=key_policy(root, service, source_arn, queue_arns=queues),
            opts=pulumi.ResourceOptions(parent=self),
        )

    @property
    def subscription_dlq(self) -> aws.sqs.Queue:
        """The delivery DLQ under the name it has for a topic consumer."""
        return self.delivery_dlq

    @property
    def subscription_dlq_policy(self) -> aws.sqs.QueuePolicy:
        return self.delivery_dlq_policy

    @property
    def dead_letter_queues(self) -> list[aws.sqs.Queue]:
        return [self.dlq, self.delivery_dlq]


def delivery_dlq_name(queue_name: str | None, on_topic: bool, fifo: bool) -> str | None:
    """The delivery DLQ's name beside the queue's: "<queue>-sub-dlq" (or -target-dlq), ".fifo" kept last."""
    if queue_name is None:
        return None
    base = queue_name.removesuffix(FIFO_SUFFIX) if fifo else queue_name
    return f"{base}-{'sub' if on_topic else 'target'}-dlq" + (FIFO_SUFFIX if fifo else "")


def topic_region(topic_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """The region of a topic, from its ARN (arn:partition:sns:REGION:account:name)."""
    return pulumi.Output.from_input(topic_arn).apply(lambda arn: arn.split(":")[3])


def key_policy(
    root: pulumi.Input[str],
    service: str,
    source_arn: pulumi.Input[str],
    *,
    queue_arns: pulumi.Input[str] | None = None,
) -> pulumi.Output[str]:
    """The key policy a consumer's queue key needs when a topic (or rule) in any account delivers to it.

    The account's root statement lets IAM policies grant the key (the consumer's function gets
    kms:Decrypt that way). The service statement is what delivery needs: SNS (or EventBridge)
    generates a data key and decrypts with it to put each message in the queue.

    SNS is held to the topic: it sends aws:SourceArn to KMS (SQS developer guide, "Configure KMS
    permissions for AWS services"). EventBridge is held to the queues (`queue_arns`, an ARN pattern):
    no document says it sends aws:SourceArn to KMS for an SQS target, while SQS puts the queue's
    ARN in the encryption context (aws:sqs:arn) of every data key it asks for (SQS developer guide,
    "Key management"); the rule is already held by the queue policy.
    """
    if service == "events.amazonaws.com":
        if queue_arns is None:
            raise ConsumerError("queue_arns (the ARN pattern of the queues) is required for an EventBridge source")
        condition: dict[str, Any] = {"ArnLike": {"kms:EncryptionContext:aws:sqs:arn": queue_arns}}
    else:
        condition = {"ArnEquals": {"aws:SourceArn": source_arn}}
    return policies.document(
        [
            policies.allow(["kms:*"], ["*"], sid="EnableIamPolicies", principal={"AWS": root}),
            policies.allow(
                ["kms:Decrypt", "kms:GenerateDataKey*"],
                ["*"],
                sid="AllowSourceToEncryptIntoQueues",
                principal={"Service": service},
                condition=condition,
            ),
        ]
    )
