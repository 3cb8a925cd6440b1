"""Encrypted SQS queues and their resource policies: the pieces every consumer (and fanout's bus) is made of.

fanout's own Pulumi program re-exports these (`infra.components.queues`): one implementation.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from fanout_subscriber import policies

DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum: time to notice, fix and redrive
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600


def encrypted_queue(
    name: str,
    queue_name: str | None,
    key_arn: pulumi.Input[str],
    *,
    parent: pulumi.Resource,
    retention_seconds: int = QUEUE_RETENTION_SECONDS,
    visibility_timeout_seconds: int = 30,
    redrive_policy: pulumi.Input[str] | None = None,
    fifo: bool = False,
) -> aws.sqs.Queue:
    """A queue encrypted with a customer-managed key; `queue_name` None lets Pulumi pick a unique name.

    `fifo`: a FIFO queue (its name ends in ".fifo"; Pulumi's auto-name adds it) in high-throughput
    mode: deduplication and the throughput quota per message group, so one busy subject does not
    slow the others. Deduplication ids come from the publisher (the event id), never from content.
    """
    ordering = (
        {
            "fifo_queue": True,
            "content_based_deduplication": False,
            "deduplication_scope": "messageGroup",
            "fifo_throughput_limit": "perMessageGroupId",
        }
        if fifo
        else {}
    )
    return aws.sqs.Queue(
        name,
        name=queue_name,
        **ordering,
        kms_master_key_id=key_arn,
        # Reusing a data key for 5 minutes keeps KMS calls (and their cost) low.
        kms_data_key_reuse_period_seconds=300,
        message_retention_seconds=retention_seconds,
        visibility_timeout_seconds=visibility_timeout_seconds,
        receive_wait_time_seconds=20,
        redrive_policy=redrive_policy,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def queue_policy(
    name: str,
    queue: aws.sqs.Queue,
    *,
    parent: pulumi.Resource,
    service: str | None = None,
    source_arn: pulumi.Input[str] | None = None,
) -> aws.sqs.QueuePolicy:
    """Deny non-TLS access; when a service delivers here, allow it only from `source_arn`."""
    statements: list[policies.Statement] = []
    if service is not None:
        statements.append(
            policies.allow(
                ["sqs:SendMessage"],
                [queue.arn],
                sid="AllowDeliveryFromSource",
                principal={"Service": service},
                condition={"ArnEquals": {"aws:SourceArn": source_arn}},
            )
        )
    statements.append(policies.deny_insecure_transport("sqs:*", [queue.arn]))
    return aws.sqs.QueuePolicy(
        name,
        queue_url=queue.url,
        policy=policies.document(statements),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def redrive_to(dlq: aws.sqs.Queue, max_receive_count: int) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": max_receive_count})


def allow_redrive_from(
    name: str, dlq: aws.sqs.Queue, source: aws.sqs.Queue, *, parent: pulumi.Resource
) -> aws.sqs.RedriveAllowPolicy:
    """Only `source` may use `dlq` as its DLQ (and a DLQ redrive moves messages back to it)."""
    return aws.sqs.RedriveAllowPolicy(
        name,
        queue_url=dlq.url,
        redrive_allow_policy=pulumi.Output.json_dumps(
            {"redrivePermission": "byQueue", "sourceQueueArns": [source.arn]}
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
