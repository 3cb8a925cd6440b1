"""Monitoring: a dashboard in every stack; in production, alarms to an e-mail topic.

Alarms: every DLQ holding a message, API 5xx and p99 latency, and per consumer function its
errors and its backlog age. (Lambda's IteratorAge metric exists only for stream sources; for an
SQS source the same question, "how far behind is the consumer?", is the queue's
ApproximateAgeOfOldestMessage.)

A DLQ alarm fires only when delivery to the DLQ works, so the deliveries themselves are watched
too: SNS deliveries that failed for good or could not reach the subscription's DLQ, per topic;
EventBridge invocations that failed for good or could not reach the target's DLQ, per rule; the
Scheduler's sends to its DLQ that failed; Lambda's on-failure destination. And every function
with reserved concurrency alarms when it is throttled (its reservation is its ceiling).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.context import AwsContext
from infra.settings import Settings


@dataclass(frozen=True)
class Watched:
    """What there is to watch, by name (CloudWatch dimensions are names, not ARNs)."""

    api_name: pulumi.Input[str]
    api_stage: pulumi.Input[str]
    dlqs: dict[str, aws.sqs.Queue]  # alarm slug -> queue
    consumers: dict[str, tuple[aws.lambda_.Function, aws.sqs.Queue]]  # consumer -> (function, queue)
    functions: dict[str, aws.lambda_.Function]
    topics: dict[str, pulumi.Input[str]] = field(default_factory=dict)  # slug -> topic name
    rules: dict[str, tuple[pulumi.Input[str], pulumi.Input[str]]] = field(default_factory=dict)  # slug -> (bus, rule)
    schedule_groups: tuple[str, ...] = ()  # Scheduler groups with a DLQ
    reserved: dict[str, aws.lambda_.Function] = field(default_factory=dict)  # functions with reserved concurrency
    on_failure: dict[str, aws.lambda_.Function] = field(default_factory=dict)  # async functions with a destination
    reader_queues: dict[str, aws.sqs.Queue] = field(default_factory=dict)  # queues read outside the stack


class Monitoring(pulumi.ComponentResource):
    dashboard: aws.cloudwatch.Dashboard
    topic: aws.sns.Topic | None = None
    topic_policy: aws.sns.TopicPolicy | None = None
    email: aws.sns.TopicSubscription | None = None
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(
        self,
        name: str,
        settings: Settings,
        ctx: AwsContext,
        watched: Watched,
        key_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("fanout:aws:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = settings.prefix
        self.alarms = {}
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=prefix,
            dashboard_body=_dashboard(ctx, watched),
            opts=child,
        )
        if not settings.alarms:
            self.register_outputs({})
            return

        self.topic = aws.sns.Topic(f"{name}-alarms", name=f"{prefix}-alarms", kms_master_key_id=key_arn, opts=child)
        self.topic_policy = aws.sns.TopicPolicy(
            f"{name}-alarms-policy",
            arn=self.topic.arn,
            policy=policies.document(
                [
                    policies.allow(
                        ["sns:Publish"],
                        [self.topic.arn],
                        sid="CloudWatchAlarmsOfThisAccount",
                        principal={"Service": "cloudwatch.amazonaws.com"},
                        condition={"StringEquals": {"aws:SourceAccount": ctx.account_id}},
                    ),
                    policies.allow(
                        ["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:Subscribe", "sns:Publish"],
                        [self.topic.arn],
                        sid="OwnerAccount",
                        principal={"AWS": ctx.root_principal()},
                    ),
                    policies.deny_insecure_transport("sns:Publish", [self.topic.arn]),
                ]
            ),
            opts=child,
        )
        if settings.alarm_email:
            # SNS mails a confirmation link; alarms reach the inbox once it is clicked.
            self.email = aws.sns.TopicSubscription(
                f"{name}-alarms-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=settings.alarm_email,
                opts=child,
            )

        def alarm(slug: str, description: str, **kwargs: object) -> None:
            self.alarms[slug] = aws.cloudwatch.MetricAlarm(
                f"{name}-{slug}",
                name=f"{prefix}-{slug}",
                alarm_description=description,
                alarm_actions=[self.topic.arn],
                ok_actions=[self.topic.arn],
                treat_missing_data="notBreaching",
                opts=child,
                **kwargs,
            )

        for slug, queue in watched.dlqs.items():
            alarm(
                f"dlq-{slug}",
                f"a message is waiting in the DLQ {slug}: inspect it, fix the cause, then redrive",
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": queue.name},
                statistic="Maximum",
                period=60,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
            )
        th = settings.thresholds
        api_dims = {"ApiName": watched.api_name, "Stage": watched.api_stage}
        alarm(
            "api-5xx",
            f"the API answered at least {th.api_5xx_per_5min} 5xx in 5 minutes",
            namespace="AWS/ApiGateway",
            metric_name="5XXError",
            dimensions=api_dims,
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=th.api_5xx_per_5min,
            comparison_operator="GreaterThanOrEqualToThreshold",
        )
        alarm(
            "api-latency-p99",
            f"API p99 latency above {th.api_latency_p99_ms} ms in 2 of 3 5-minute periods",
            namespace="AWS/ApiGateway",
            metric_name="Latency",
            dimensions=api_dims,
            extended_statistic="p99",
            period=300,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            threshold=th.api_latency_p99_ms,
            comparison_operator="GreaterThanThreshold",
        )
        for consumer, (function, queue) in watched.consumers.items():
            alarm(
                f"{consumer}-errors",
                f"the {consumer} function failed (whole invocations, not single records)",
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions={"FunctionName": function.name},
                statistic="Sum",
                period=300,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
            )
            alarm(
                f"{consumer}-backlog-age",
                f"the {consumer} queue's oldest message is older than {th.backlog_age_seconds} s "
                "(the SQS equivalent of iterator age)",
                namespace="AWS/SQS",
                metric_name="ApproximateAgeOfOldestMessage",
                dimensions={"QueueName": queue.name},
                statistic="Maximum",
                period=300,
                evaluation_periods=1,
                threshold=th.backlog_age_seconds,
                comparison_operator="GreaterThanOrEqualToThreshold",
            )
        self._delivery_alarms(watched, alarm)
        for slug, function in watched.reserved.items():
            alarm(
                f"{slug}-throttles",
                f"the {slug} function was throttled: its reserved concurrency is too low for the traffic",
                namespace="AWS/Lambda",
                metric_name="Throttles",
                dimensions={"FunctionName": function.name},
                statistic="Sum",
                period=300,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
            )
        for slug, queue in watched.reader_queues.items():
            alarm(
                f"{slug}-backlog-age",
                f"the {slug} queue's oldest message is older than {th.backlog_age_seconds} s: its readers fell behind",
                namespace="AWS/SQS",
                metric_name="ApproximateAgeOfOldestMessage",
                dimensions={"QueueName": queue.name},
                statistic="Maximum",
                period=300,
                evaluation_periods=1,
                threshold=th.backlog_age_seconds,
                comparison_operator="GreaterThanOrEqualToThreshold",
            )
        self.register_outputs({"alarm_topic": self.topic.arn})

    @staticmethod
    def _delivery_alarms(watched: Watched, alarm: Callable[..., None]) -> None:
        """Deliveries lost before any DLQ could hold them (the metrics each service documents)."""
        count = {"statistic": "Sum", "period": 300, "evaluation_periods": 1, "threshold": 1}
        at_least = {"comparison_operator": "GreaterThanOrEqualToThreshold"}
        # SNS developer guide, "Amazon SNS metrics": per TopicName.
        for slug, topic in watched.topics.items():
            for metric, what in (
                ("NumberOfNotificationsFailed", "deliveries that failed after every retry"),
                ("NumberOfNotificationsFailedToRedriveToDlq", "failed deliveries that could not reach their DLQ"),
            ):
                alarm(
                    f"{slug}-{metric}",
                    f"SNS topic {slug}: {what}",
                    namespace="AWS/SNS",
                    metric_name=metric,
                    dimensions={"TopicName": topic},
                    **count,
                    **at_least,
                )
        # EventBridge user guide, "Monitoring": a custom bus's rule metrics carry EventBusName and RuleName.
        for slug, (bus, rule) in watched.rules.items():
            for metric, what in (
                ("FailedInvocations", "target invocations that failed for good"),
                ("InvocationsFailedToBeSentToDlq", "failed invocations that could not reach the target's DLQ"),
            ):
                alarm(
                    f"{slug}-{metric}",
                    f"EventBridge rule {slug}: {what}",
                    namespace="AWS/Events",
                    metric_name=metric,
                    dimensions={"EventBusName": bus, "RuleName": rule},
                    **count,
                    **at_least,
                )
        # EventBridge Scheduler user guide, "Monitoring with CloudWatch": per ScheduleGroup.
        for group in watched.schedule_groups:
            alarm(
                f"schedules-{group}-dlq-send-failed",
                f"EventBridge Scheduler group {group}: failed invocations that could not reach the DLQ",
                namespace="AWS/Scheduler",
                metric_name="InvocationsFailedToBeSentToDeadLetterCount",
                dimensions={"ScheduleGroup": group},
                **count,
                **at_least,
            )
        # Lambda developer guide, "Types of metrics for Lambda functions": asynchronous invocation metrics.
        for slug, function in watched.on_failure.items():
            alarm(
                f"{slug}-destination-failures",
                f"the {slug} function's failed events could not be sent to its on-failure destination",
                namespace="AWS/Lambda",
                metric_name="DestinationDeliveryFailures",
                dimensions={"FunctionName": function.name},
                **count,
                **at_least,
            )


def _dashboard(ctx: AwsContext, w: Watched) -> pulumi.Output[str]:
    fn_names = {k: f.name for k, f in w.functions.items()}
    dlq_names = {k: q.name for k, q in w.dlqs.items()}
    queue_names = {k: q.name for k, (_, q) in w.consumers.items()}

    def body(args: list) -> str:
        region, api, stage, fns, dlqs, queues = args

        def widget(title: str, metrics: list, x: int, y: int, stat: str = "Sum") -> dict:
            return {
                "type": "metric",
                "x": x,
                "y": y,
                "width": 12,
                "height": 6,
                "properties": {"title": title, "region": region, "stat": stat, "period": 60, "metrics": metrics},
            }

        api_dims = ["ApiName", api, "Stage", stage]
        return json.dumps(
            {
                "widgets": [
                    widget(
                        "API requests and errors",
                        [["AWS/ApiGateway", m, *api_dims] for m in ("Count", "4XXError", "5XXError")],
                        0,
                        0,
                    ),
                    widget("API latency p99 (ms)", [["AWS/ApiGateway", "Latency", *api_dims]], 12, 0, "p99"),
                    widget(
                        "Function errors",
                        [["AWS/Lambda", "Errors", "FunctionName", n] for n in fns.values()],
                        0,
                        6,
                    ),
                    widget(
                        "Function duration p99 (ms)",
                        [["AWS/Lambda", "Duration", "FunctionName", n] for n in fns.values()],
                        12,
                        6,
                        "p99",
                    ),
                    widget(
                        "Consumer queue depth",
                        [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", n] for n in queues.values()],
                        0,
                        12,
                        "Maximum",
                    ),
                    widget(
                        "DLQ depth",
                        [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", n] for n in dlqs.values()],
                        12,
                        12,
                        "Maximum",
                    ),
                ]
            },
            sort_keys=True,
        )

    return pulumi.Output.all(
        ctx.region,
        w.api_name,
        w.api_stage,
        pulumi.Output.all(**fn_names),
        pulumi.Output.all(**dlq_names),
        pulumi.Output.all(**queue_names),
    ).apply(body)
