"""The whole local system: emulator, resources, pollers, scheduler and gateway, started and stopped together."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fanout import PROJECT_ROOT, consumers, topology
from fanout.local.emulator import Emulator, EmulatorError, port_free
from fanout.local.environments import EnvironmentPool, load_handler, new_environment
from fanout.local.gateway import Gateway
from fanout.local.ledger import Ledger, install_failure_capture
from fanout.local.localapi import LocalApi
from fanout.local.poller import OnBatch, Poller
from fanout.local.provision import provision
from fanout.local.scheduler import Scheduler, rate_seconds
from fanout.local.state import TRACE, LocalState, Snapshotter
from fanout.local.trace import Taps
from fanout.local.trace import report as trace_report
from fanout.localenv import LocalEnv

log = logging.getLogger("fanout.local")
# Concurrent api and authorizer environments locally; more would only contend for the same two cores.
API_CONCURRENCY = 8


def handler_environ(env: LocalEnv, topo: topology.Topology) -> dict[str, str]:
    """What the Lambda functions find in their environment, pointed at the local stack."""
    return {
        **env.aws_environ(),
        "TOPIC_ARN": env.topic_arn(topo.topic_name),
        "TABLE_NAME": topo.table_name,
        "IDEMPOTENCY_TABLE_NAME": topo.idempotency_table_name,
        "EVENT_BUS_NAME": topo.event_bus_name,
        "ARCHIVE_BUCKET": topo.archive_bucket_name,
        # Locally tokens are HS256 with the local secret; AWS stacks use JWKS (see the stack config).
        "JWT_ALGORITHMS": "HS256",
        "JWT_SECRET": env.jwt_secret,
        "ROLES_CLAIM": topo.auth.roles_claim,
        "CURSOR_SECRET": "local-cursor:" + env.jwt_secret,
        "GENERATOR_USERS": ",".join(topo.generator.users),
        "GENERATOR_COUNT": str(topo.generator.count_per_run),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": env.log_level,
        "POWERTOOLS_SERVICE_NAME": "fanout",
    }


@dataclass
class Runtime:
    env: LocalEnv
    topo: topology.Topology
    stop_event: threading.Event = field(default_factory=threading.Event)
    emulator: Emulator | None = None
    gateway: Gateway | None = None
    threads: list[threading.Thread] = field(default_factory=list)
    consumers: dict[str, consumers.ConsumerQueues] = field(default_factory=dict)
    state: LocalState | None = None
    restored: dict[str, int] = field(default_factory=dict)
    session: Any = None
    schedule: str | None = None  # the generator's schedule, when it runs
    ledger: Ledger = field(default_factory=Ledger)  # the trace ledger (fanout trace, the console)

    def start(self) -> None:
        if not port_free(self.env.port):
            raise EmulatorError(
                f"port {self.env.port} is in use (another fanout running?); set FANOUT_PORT to a free port"
            )
        # Before anything starts: two stacks writing one state dir would overwrite each other's snapshots.
        self.state = LocalState(self.env.state_dir, self.topo, self.env)
        self.state.lock()
        self.ledger = self.state.ledger = Ledger.load(self.env.state_dir / TRACE)
        self.emulator = Emulator(self.env.aws_port)
        self.emulator.start()
        # Handlers find AWS through boto3's standard environment, exactly as on Lambda.
        os.environ.update(handler_environ(self.env, self.topo))
        import boto3

        self.session = session = boto3.session.Session()
        self.consumers = provision(self.topo, self.env, session)
        # moto starts empty: load the last snapshot before anything can read or write.
        self.restored = self.state.restore(session)
        self._start_trace_taps(session)
        self._start_pollers(session)
        self._start_scheduler()
        snapshotter = Snapshotter(self.state, session, self.env.snapshot_seconds, self.stop_event)
        snapshotter.start()
        self.threads.append(snapshotter)
        self.gateway = Gateway(
            port=self.env.port,
            region=self.env.region,
            # Like concurrent Lambda invocations: each request gets an environment of its own while it runs.
            authorizer=EnvironmentPool("handlers.authorizer:handler", API_CONCURRENCY),
            api=EnvironmentPool("handlers.api:handler", API_CONCURRENCY),
            cache_ttl=self.topo.auth.cache_ttl_seconds,
            jwt_secret=self.env.jwt_secret,
            web_dir=PROJECT_ROOT / "web",
            ready=self.healthy,
            # What `fanout` asks for (GET /_local/stack) when only FANOUT_PORT points it at this stack.
            info={"aws_endpoint": self.env.aws_endpoint, "region": self.env.region, "stack": self.env.stack},
            asyncapi=self.asyncapi_document,
            local=LocalApi(session=session, env=self.env, topology=lambda: self.topo, ledger=self.ledger).handle,
        )
        self.gateway.start()

    def asyncapi_document(self) -> dict[str, Any]:
        """GET /asyncapi.json: generated from the topology as it is now, with the local stack's ARNs."""
        from fanout import asyncapi
        from fanout.localenv import ACCOUNT_ID

        where = asyncapi.Where(
            region=self.env.region,
            topic_arn=self.env.topic_arn(self.topo.topic_name),
            event_bus_arn=f"arn:aws:events:{self.env.region}:{ACCOUNT_ID}:event-bus/{self.topo.event_bus_name}",
            local_endpoint=self.env.aws_endpoint,
        )
        return asyncapi.document(self.topo, where)

    def _start_trace_taps(self, session: Any) -> None:
        taps = Taps(session, lambda: self.topo, self.env.topic_arn(self.topo.topic_name), self.ledger, self.stop_event)
        taps.provision()
        taps.start()
        self.threads += taps.threads
        install_failure_capture()  # pollers learn why each record failed

    def _trace_report(self, consumer: topology.Consumer) -> OnBatch:
        """What a consumer's pollers call after each invocation: the ledger and the attempt log lines."""

        def on_batch(messages: list[dict[str, Any]], failed: set[str], errors: dict, handler_error: str | None) -> None:
            try:
                trace_report(
                    self.ledger, consumer.name, consumer.max_receive_count, messages, failed, errors, handler_error
                )
            except Exception:
                log.exception("could not record %s's batch in the trace ledger", consumer.name)

        return on_batch

    def _start_pollers(self, session: Any) -> None:
        from botocore.config import Config

        sqs = session.client("sqs", config=Config(max_pool_connections=50, retries={"mode": "standard"}))
        for c in self.topo.consumers:
            if not c.handler:
                continue
            queues = self.consumers[c.name]
            arn = consumers.queue_arn(sqs, queues.queue_url)
            for i in range(c.max_concurrency):
                poller = Poller(
                    name=f"{c.name}-{i}",
                    sqs=sqs,
                    queue_url=queues.queue_url,
                    queue_arn=arn,
                    handler=new_environment(c.handler),  # one environment per concurrent poller, as on AWS
                    batch_size=c.batch_size,
                    batching_window=c.batching_window_seconds,
                    region=self.env.region,
                    timeout_seconds=c.timeout_seconds,
                    stop=self.stop_event,
                    on_batch=self._trace_report(c),
                )
                poller.start()
                self.threads.append(poller)

    def _start_scheduler(self) -> None:
        gen = self.topo.generator
        if not gen.enabled or not self.env.generator_on:
            return
        generator = load_handler("handlers.generator:handler")
        # FANOUT_GENERATOR_SCHEDULE (e.g. "rate(2 seconds)") lets tests and demos see runs within seconds.
        self.schedule = self.env.generator_schedule or gen.schedule
        interval = rate_seconds(self.schedule)

        def fire() -> object:
            from fanout.local.lambda_context import LocalContext

            return generator({}, LocalContext(function_name="generator", region=self.env.region))

        scheduler = Scheduler(interval, fire, self.stop_event)
        scheduler.start()
        self.threads.append(scheduler)

    def healthy(self) -> bool:
        """Ready to serve: started, and the emulated AWS endpoint still running."""
        return self.gateway is not None and self.emulator is not None and self.emulator.alive()

    def stop(self, timeout: float = 1.0, snapshot_budget: float = 1.5) -> None:
        """Stop everything; the contract allows 5 s from the signal, so each step has a share of it."""
        self.stop_event.set()
        if self.gateway:
            self.gateway.stop()
        deadline = time.monotonic() + timeout  # one deadline for all threads: they stop in parallel
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self.state is not None:
            if self.session is not None and self.emulator is not None:
                try:
                    self.state.snapshot(self.session, budget=snapshot_budget)
                except Exception:
                    log.exception("final snapshot failed; the last periodic one is kept")
            self.state.unlock()
        if self.emulator:
            # The snapshot is taken: moto's state is disposable, and its own exit (interpreter teardown of
            # all it holds) can take seconds under load, so it gets little time before SIGKILL.
            self.emulator.stop(timeout=0.2)
