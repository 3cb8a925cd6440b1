"""Encrypted SQS queues and their resource policies, shared by consumers, the bus and the generator.

The one implementation lives in the consumer package (`fanout_subscriber.queues`), which other
projects install; fanout's own components use it from here.
"""

from __future__ import annotations

from fanout_subscriber.queues import (
    DLQ_RETENTION_SECONDS,
    QUEUE_RETENTION_SECONDS,
    allow_redrive_from,
    encrypted_queue,
    queue_policy,
    redrive_to,
)

__all__ = [
    "DLQ_RETENTION_SECONDS",
    "QUEUE_RETENTION_SECONDS",
    "allow_redrive_from",
    "encrypted_queue",
    "queue_policy",
    "redrive_to",
]
