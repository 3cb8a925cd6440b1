"""A persistence world on a real moto server (child process) with the real persister behind Poller threads.

Each test gets its own topology prefix (own topic, queue, DLQ, table, bus) on one shared
emulator, the handlers' environment pointed at it, and a tap queue on the bus to see what
the persister announced. Faults are injected into the handlers' own boto3 clients.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from fanout import topology
from fanout.local.emulator import Emulator
from fanout.local.poller import Poller
from fanout.local.provision import provision
from fanout.local.runtime import function_environ, publisher_environ
from fanout.localenv import load as load_env
from fanout_kit import DataGenerated, events
from handlers.core import clients, settings

REPORT: list[str] = []  # lines printed at the end of the run (RSS, fault counts)


def reset_handler_caches() -> None:
    for name in dir(settings):
        fn = getattr(settings, name)
        if callable(getattr(fn, "cache_clear", None)):
            fn.cache_clear()
    clients.reset()
    clients._config.cache_clear()


class Killed(BaseException):
    """Stands for SIGKILL of a poller: not an Exception, so nothing in the poller catches it."""


@dataclass
class World:
    env: Any
    topo: Any
    sqs: Any
    ddb: Any
    queue_url: str
    queue_arn: str
    dlq_url: str
    tap_url: str
    handler: Callable[[dict[str, Any], Any], Any]
    pollers: list[tuple[Poller, threading.Event]] = field(default_factory=list)
    tap: bool = True
    dlq_seen: Counter[str] = field(default_factory=Counter)

    # --- producing ----------------------------------------------------------------------------
    def publish(self, count: int, user: str | None = None) -> list[str]:
        """Publish `count` valid events through the handlers' publisher; returns the accepted ids."""
        from handlers.core import publisher

        user = user or f"u-{uuid.uuid4().hex[:8]}"
        batch = [
            events.build(
                DataGenerated.TYPE,
                source="fanout.api",
                subject=user,
                data={"informationOne": f"item {i} ✓", "informationTwo": "x" * (i % 50 + 1)},
            )
            for i in range(count)
        ]
        publisher.publish_batch(batch)
        return [e["id"] for e in batch]

    # --- consuming ----------------------------------------------------------------------------
    def start_poller(self, handler: Callable[..., Any] | None = None) -> Poller:
        stop = threading.Event()
        poller = Poller(
            name=f"persister-{len(self.pollers)}",
            sqs=self.sqs,
            queue_url=self.queue_url,
            queue_arn=self.queue_arn,
            handler=handler or self.handler,
            batch_size=10,
            batching_window=0,
            region=self.env.region,
            timeout_seconds=30,
            stop=stop,
        )
        poller.start()
        self.pollers.append((poller, stop))
        return poller

    def stop_pollers(self) -> None:
        for _, stop in self.pollers:
            stop.set()
        for poller, _ in self.pollers:
            poller.join(5)

    # --- observing ----------------------------------------------------------------------------
    def stored(self) -> list[str]:
        ids: list[str] = []
        for page in self.ddb.get_paginator("scan").paginate(TableName=self.topo.table_name):
            ids += [i["id"]["S"] for i in page["Items"]]
        return ids

    def _read_all(self, url: str) -> list[dict[str, Any]]:
        """Every message now visible, each seen once: hidden for the rest of the test instead of deleted
        (one receive per ten messages, no delete calls: moto makes those slow)."""
        out: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=3600
            ).get("Messages", [])
            if not got:
                return out
            out += got

    def drain_dlq(self) -> None:
        for m in self._read_all(self.dlq_url):
            self.dlq_seen[json.loads(m["Body"])["id"]] += 1

    def announced(self) -> Counter[str]:
        return Counter(json.loads(m["Body"])["detail"]["id"] for m in self._read_all(self.tap_url))

    def queue_empty(self) -> bool:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"

    def settle(self, accepted: list[str], timeout: float = 90) -> dict[str, Any]:
        """Wait until every accepted event is stored or dead-lettered and the queue is empty; then check."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain_dlq()
            stored = self.stored()
            done = set(accepted) <= set(stored) | set(self.dlq_seen)
            if done and self.queue_empty():
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.stop_pollers()
        self.drain_dlq()
        stored = self.stored()
        announced = self.announced() if self.tap else None
        return {"stored": stored, "dlq": Counter(self.dlq_seen), "announced": announced}


def check_exactly_once(accepted: list[str], outcome: dict[str, Any]) -> None:
    """Each accepted event stored exactly once or dead-lettered; nothing lost, doubled or invented."""
    stored: list[str] = outcome["stored"]
    dlq: Counter[str] = outcome["dlq"]
    counts = Counter(stored)
    lost = set(accepted) - set(stored) - set(dlq)
    assert not lost, f"{len(lost)} accepted events neither stored nor in the DLQ: {sorted(lost)[:5]}"
    doubled = {i: n for i, n in counts.items() if n > 1}
    assert not doubled, f"stored more than once: {doubled}"
    invented = set(stored) - set(accepted)
    assert not invented, f"stored but never accepted: {sorted(invented)[:5]}"
    assert all(n == 1 for n in dlq.values()), f"dead-lettered more than once: {dlq}"
    if outcome["announced"] is None:
        return
    # Stored and not dead-lettered means the batch item completed: it was announced (at least once).
    unannounced = set(stored) - set(dlq) - set(outcome["announced"])
    assert not unannounced, f"{len(unannounced)} stored events never announced on the bus"


def make_world(emulator: Emulator, tmp: Path, visibility_timeout: int, monkeypatch: Any, tap: bool = True) -> World:
    prefix = f"fault-{uuid.uuid4().hex[:8]}"
    for name, value in {
        "FANOUT_PORT": "1",  # unused: no gateway here
        "FANOUT_AWS_PORT": str(emulator.port),
        "FANOUT_VISIBILITY_TIMEOUT": str(visibility_timeout),
        "FANOUT_STATE_DIR": str(tmp),
        "FANOUT_JWT_SECRET": "fault-test-secret-that-is-long-enough-0123456789",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    # The emulator accepts only requests signed with its own keys.
    env = dataclasses.replace(
        load_env(), access_key_id=emulator.access_key_id, secret_access_key=emulator.secret_access_key
    )
    topo = topology.from_config("dev", {"prefix": prefix})
    # The persister runs here, and so does the producer side's publisher (the topic).
    for name, value in {**function_environ(env, topo, "persister"), **publisher_environ(env, topo)}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "POWERTOOLS_LOGGER_LOG_EVENT"):
        monkeypatch.delenv(name, raising=False)
    reset_handler_caches()
    session = boto3.session.Session()
    cfg = Config(max_pool_connections=20, retries={"mode": "standard"})
    sqs, ddb, eb = session.client("sqs", config=cfg), session.client("dynamodb"), session.client("events")
    built = provision(topo, env, session)
    queues = built["persister"]
    arn = sqs.get_queue_attributes(QueueUrl=queues.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    tap_url = sqs.create_queue(QueueName=f"{prefix}-bus-tap")["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if tap:  # moto's SQS slows as a queue deepens: the soak, which reads no announcements, goes without
        eb.put_rule(
            Name="tap", EventBusName=topo.event_bus_name, EventPattern=json.dumps({"source": ["fanout.persister"]})
        )
        eb.put_targets(Rule="tap", EventBusName=topo.event_bus_name, Targets=[{"Id": "tap", "Arn": tap_arn}])
    from handlers import persister

    assert queues.dlq_url is not None
    return World(env, topo, sqs, ddb, queues.queue_url, arn, queues.dlq_url, tap_url, persister.handler, tap=tap)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def process_env_snapshot() -> dict[str, str]:
    return dict(os.environ)
