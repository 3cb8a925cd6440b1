"""fanout-subscriber: subscribe to a fanout stack's events from your own Pulumi project and account.

    pip install fanout_subscriber-0.1.0-py3-none-any.whl     # `make dist` in a fanout checkout writes it

    import pulumi, fanout_subscriber as fs
    fanout = pulumi.StackReference("org/fanout/prd")
    fs.Consumer("orders", fs.TopicSource(fanout.get_output("topic_arn"),
                                         filter_policy={"type": ["fanout.data.generated.v1"]}),
                function=fs.FunctionArgs(code=pulumi.FileArchive("./app"), handler="app.handler"),
                dlq_alarm=fs.DlqAlarm())

On a stack with ordered fan-out (its output `ordering` is "fifo"), pass `fs.TopicSource(...,
ordering="fifo")`: the queues are then FIFO, each subject in order.
The stack must list your account (or organization) in `fanout:subscribers`. Nothing here imports
the rest of fanout: fanout's own Pulumi program builds its consumers with this same component.
"""

from fanout_subscriber.consumer import BusSource, Consumer, ConsumerError, DlqAlarm, TopicSource, key_policy
from fanout_subscriber.function import Function, FunctionArgs

__all__ = [
    "BusSource",
    "Consumer",
    "ConsumerError",
    "DlqAlarm",
    "Function",
    "FunctionArgs",
    "TopicSource",
    "key_policy",
]
