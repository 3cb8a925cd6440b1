"""Monitoring: a dashboard in every stack; in production, alarms to an e-mail topic.

Alarms: every DLQ holding a message, API 5xx and p99 latency, and per consumer function its
errors and its backlog age. (Lambda's IteratorAge metric exists only for stream sources; for an
SQS source the same question, "how far behind is the consumer?", is the queue's
ApproximateAgeOfOldestMessage.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

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
        self.register_outputs({"alarm_topic": self.topic.arn})


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
