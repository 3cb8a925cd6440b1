"""Consumer: the way to subscribe a new consumer to the topic or the bus (the persister is one too).

Built by the consumer package's `Consumer` (fanout_subscriber/consumer.py), the same component
other repositories install: one implementation. Per consumer: a queue and its DLQ, a delivery DLQ
(the subscription's, or the bus target's), queue policies that admit only this topic (or rule),
a raw-delivery subscription with the consumer's filter policy (or a rule with its event pattern),
and, when the consumer names a handler, a function fed by an event source mapping that reports
partial batch failures. Adding a consumer is one entry in `fanout:consumers`. Its queues use the
stack's messaging key, whose policy already lets SNS and EventBridge encrypt into them; DLQ
alarms come from Monitoring, with every other DLQ of the stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from fanout.topology import Consumer as ConsumerSpec
from fanout.topology import TopologyError
from fanout_subscriber.consumer import RULE_NAME, BusSource, TopicSource
from fanout_subscriber.consumer import Consumer as SubscriberConsumer
from infra import policies
from infra.components.bus import EventBus
from infra.components.function import FunctionSpec, SharedCode, function_args, handler_path
from infra.components.topic import EventTopic


class Consumer(SubscriberConsumer):
    spec: ConsumerSpec

    def __init__(
        self,
        name: str,
        spec: ConsumerSpec,
        topic: EventTopic,
        shared: SharedCode,
        *,
        bus: EventBus | None = None,
        statements: Sequence[pulumi.Input[policies.Statement]] = (),
        environment: Mapping[str, pulumi.Input[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        topology = shared.settings.topology
        queue_name = topology.queue_name(spec)
        source: TopicSource | BusSource
        if spec.source == "bus":
            if bus is None:
                raise TopologyError(f"consumer {spec.name!r}: source bus needs the stack's bus")
            if not RULE_NAME.match(queue_name):
                raise TopologyError(f"consumer {spec.name!r}: rule name {queue_name!r} is over EventBridge's 64")
            source = BusSource(event_bus=bus.bus.name, event_pattern=spec.event_pattern or {}, rule_name=queue_name)
        else:
            source = TopicSource(topic.topic.arn, spec.filter_policy, spec.filter_policy_scope, topology.ordering)
        function = None
        if spec.handler:
            function = function_args(
                FunctionSpec(
                    short_name=spec.name,
                    handler=handler_path(spec.handler),
                    timeout_seconds=spec.timeout_seconds,
                    memory_mb=spec.memory_mb,
                    environment={**spec.environment, **(environment or {})},
                    statements=list(statements),
                ),
                shared,
            )
        super().__init__(
            name,
            source,
            queue_name=queue_name,
            dlq_name=topology.dlq_name(spec),
            kms_key_arn=topic.key.arn,
            max_receive_count=spec.max_receive_count,
            visibility_timeout_seconds=spec.visibility_timeout_seconds,
            function=function,
            batch_size=spec.batch_size,
            batching_window_seconds=spec.batching_window_seconds,
            max_concurrency=spec.max_concurrency,
            opts=opts,
        )
        self.spec = spec
