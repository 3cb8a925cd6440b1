"""Announcing events on the EventBridge bus, 10 entries a call, checking each entry."""

from __future__ import annotations

import time

from fanout_kit import CloudEvent
from handlers.core import charset
from handlers.core.clients import client
from handlers.core.settings import event_bus_name

PUT_EVENTS_MAX = 10


def put(events: list[CloudEvent], *, attempts: int = 3, base_delay: float = 0.05) -> set[str]:
    """Put CloudEvents on the bus; returns the ids of events that failed every attempt.

    The events are models, valid since they were built: nothing is validated again here.
    """
    batch = [e.to_dict() for e in events]
    eb = client("events")
    bus = event_bus_name()
    failed: set[str] = set()
    for start in range(0, len(batch), PUT_EVENTS_MAX):
        pending = batch[start : start + PUT_EVENTS_MAX]
        for attempt in range(attempts):
            if attempt:
                time.sleep(base_delay * 2**attempt)
            response = eb.put_events(
                Entries=[
                    {
                        "EventBusName": bus,
                        "Source": event["source"],
                        "DetailType": event["type"],
                        "Detail": charset.sqs_json(event),
                        "Resources": [],
                    }
                    for event in pending
                ]
            )
            if not response.get("FailedEntryCount"):
                pending = []
                break
            # Entries come back in request order; those with an ErrorCode failed.
            pending = [e for e, r in zip(pending, response["Entries"], strict=True) if r.get("ErrorCode")]
        failed.update(e["id"] for e in pending)
    return failed
