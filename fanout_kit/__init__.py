"""fanout-kit: what a fanout consumer's code needs, in fanout's Lambda artifact and in another team's repository.

    from fanout_kit import DataGenerated, consumer

    @consumer(DataGenerated)
    def handler(event: DataGenerated) -> None:
        ...

The typed models of every published event type (`DataGenerated`, `DataPersisted`, their envelope
`CloudEvent`), the event schemas as package data, the envelope parser and validation (`InvalidEvent`),
and the consumer kit (`consumer`, `bulk_consumer`). Test helpers are in `fanout_kit.testing`.
"""

from typing import TYPE_CHECKING, Any

from fanout_kit.models import CloudEvent, Data, DataGenerated, DataPersisted, InvalidEvent, Item

if TYPE_CHECKING:
    from fanout_kit.kit import bulk_consumer, consumer


def __getattr__(name: str) -> Any:
    # The consumer kit loads Powertools: imported on first use, so tools that only read the models
    # (the CLI, the Pulumi program) do not pay for it.
    if name in ("consumer", "bulk_consumer"):
        from fanout_kit import kit

        return getattr(kit, name)
    raise AttributeError(f"module 'fanout_kit' has no attribute {name!r}")


__all__ = [
    "CloudEvent",
    "Data",
    "DataGenerated",
    "DataPersisted",
    "InvalidEvent",
    "Item",
    "bulk_consumer",
    "consumer",
]
