"""Generator: an EventBridge Scheduler schedule invoking the generator function.

Scheduler retries a failed invocation and parks what it cannot deliver in the DLQ; the function's
own asynchronous failures land in the same DLQ through an on-failure destination. The schedule
is disabled when `generator.enabled` is false (prd's default), so it can be switched on without
creating anything.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from fanout.environment import generator_environment
from infra import policies
from infra.components.function import FunctionSpec, LambdaFunction, SharedCode
from infra.components.queues import DLQ_RETENTION_SECONDS, encrypted_queue, queue_policy
from infra.components.topic import EventTopic


class Generator(pulumi.ComponentResource):
    function: LambdaFunction
    dlq: aws.sqs.Queue
    dlq_policy: aws.sqs.QueuePolicy
    scheduler_role: aws.iam.Role
    scheduler_policy: aws.iam.RolePolicy
    schedule: aws.scheduler.Schedule
    invoke_config: aws.lambda_.FunctionEventInvokeConfig

    def __init__(
        self, name: str, topic: EventTopic, shared: SharedCode, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fanout:aws:Generator", name, None, opts)
        settings = shared.settings
        gen = settings.topology.generator
        key_arn = topic.key.arn
        child = pulumi.ResourceOptions(parent=self)

        self.dlq = encrypted_queue(
            f"{name}-dlq",
            f"{settings.prefix}-generator-dlq",
            key_arn,
            parent=self,
            retention_seconds=DLQ_RETENTION_SECONDS,
        )
        # Scheduler and Lambda destinations send with the roles below, so the policy only enforces TLS.
        self.dlq_policy = queue_policy(f"{name}-dlq-policy", self.dlq, parent=self)
        send_to_dlq = [
            policies.allow(["sqs:SendMessage"], [self.dlq.arn], sid="SendToDlq"),
            topic.key_through(shared.ctx, "sqs", "EncryptDlqMessagesThroughSqs"),
        ]
        self.function = LambdaFunction(
            f"{name}-fn",
            FunctionSpec(
                short_name="generator",
                handler="handlers.generator.handler",
                timeout_seconds=60,
                memory_mb=256,
                # fanout.environment: the same variables the local runtime gives the generator.
                environment=generator_environment(settings.topology, topic.topic.arn),
                statements=[
                    policies.allow(["sns:Publish"], [topic.topic.arn], sid="PublishEvents"),
                    topic.key_through(shared.ctx, "sns", "EncryptEventsThroughSns"),
                    *send_to_dlq,
                ],
            ),
            shared,
            opts=child,
        )
        self.invoke_config = aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=self.function.function.name,
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=3600,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(destination=self.dlq.arn)
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.function.policy]),
        )
        self.scheduler_role = aws.iam.Role(
            f"{name}-scheduler-role",
            assume_role_policy=policies.assume_role("scheduler.amazonaws.com", shared.ctx.account_id),
            path=settings.role_path,
            description=f"fanout generator schedule ({settings.stack})",
            opts=child,
        )
        self.scheduler_policy = aws.iam.RolePolicy(
            f"{name}-scheduler-policy",
            role=self.scheduler_role.id,
            policy=policies.document(
                [
                    policies.allow(["lambda:InvokeFunction"], [self.function.function.arn], sid="InvokeGenerator"),
                    *send_to_dlq,
                ]
            ),
            opts=child,
        )
        self.schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            name=f"{settings.prefix}-generator",
            schedule_expression=gen.schedule,
            state="ENABLED" if gen.enabled else "DISABLED",
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=self.function.function.arn,
                role_arn=self.scheduler_role.arn,
                input=json.dumps({"count": gen.count_per_run, "users": list(gen.users)}),
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=3
                ),
                dead_letter_config=aws.scheduler.ScheduleTargetDeadLetterConfigArgs(arn=self.dlq.arn),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.scheduler_policy]),
        )
        self.register_outputs({"schedule": self.schedule.name})

    @property
    def dead_letter_queues(self) -> list[aws.sqs.Queue]:
        return [self.dlq]
