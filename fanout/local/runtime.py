"""The whole local system: emulator, resources, pollers, scheduler and gateway, started and stopped together."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fanout import PROJECT_ROOT, consumers, topology
from fanout.environment import function_names, local_extras
from fanout.local.costpanel import Meter
from fanout.local.emulator import Emulator, EmulatorError, port_free
from fanout.local.environments import FunctionProcess, load_handler
from fanout.local.gateway import Gateway
from fanout.local.ledger import Ledger, install_failure_capture
from fanout.local.live import (
    ConsumerRunner,
    LinkedEvent,
    Watcher,
    broken_reporter,
    code_dirs,
    collected_breakages,
    declared_environment,
    process_environment,
    reload_line,
    say,
    subscribed_environment,
)
from fanout.local.localapi import LocalApi
from fanout.local.poller import OnBatch, OnStart
from fanout.local.provision import provision, provision_consumer
from fanout.local.registry import UNCLAIMED_SECONDS, Registry, RegistryError
from fanout.local.registry import check as check_handler
from fanout.local.scheduler import Scheduler
from fanout.local.state import HANDLERS, TRACE, LocalState, Snapshotter
from fanout.local.trace import Taps
from fanout.local.trace import report as trace_report
from fanout.local.trace import started as trace_started
from fanout.localenv import LocalEnv, write_stack_file
from fanout.text import plural

log = logging.getLogger("fanout.local")
# Concurrent api and authorizer environments locally, each a process of 40-60 MB (fanout/local/environments.py):
# more would only contend for the same two cores; the authorizer's answers are cached, so it needs fewer.
API_CONCURRENCY = 4
AUTHORIZER_CONCURRENCY = 2


def settled(path: Path, quiet: float = 0.2, limit: float = 3.0) -> bytes | None:
    """The file's bytes once they stopped changing for `quiet` seconds (None while it does not exist)."""
    deadline = time.monotonic() + limit
    last = _read_bytes(path)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = _read_bytes(path)
        if now == last:
            break
        last = now
    return last


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def function_environ(env: LocalEnv, topo: topology.Topology, function: str) -> dict[str, str]:
    """One function's variables as on AWS (fanout/environment.py), pointed at the local stack.

    For a function's code run outside its own process (`fanout generate` runs the generator's):
    only that function's variables, never another's.
    """
    return {**local_extras(env.aws_environ()), **declared_environment(env, topo, function)}


def foreign_variables(env: LocalEnv, topo: topology.Topology, function: str) -> set[str]:
    """The variables other functions get and `function` does not (to clear before running its code)."""
    everyone = {k for f in function_names(topo) for k in declared_environment(env, topo, f)}
    return everyone - set(function_environ(env, topo, function))


def publisher_environ(env: LocalEnv, topo: topology.Topology) -> dict[str, str]:
    """What publishes archived events again (`fanout replay`, the console's replay) needs: the endpoint and
    the topic, as `fanout replay --aws --topic-arn` has on AWS; no function's variables."""
    return {**env.aws_environ(), "TOPIC_ARN": env.topic_arn(topo.topic_name)}


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
    meter: Meter = field(default_factory=Meter)  # the console's cost panel
    functions: dict[str, FunctionProcess] = field(default_factory=dict)  # api, authorizer, generator
    runners: dict[str, ConsumerRunner] = field(default_factory=dict)  # consumers with a handler, by name
    subscribed: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # name -> (handler, path)
    registry: Registry | None = None  # what `fanout subscribe --handler` registered (handlers.json)
    _refused: dict[str, str] = field(default_factory=dict)  # name -> why its registered handler does not run
    _apply_lock: threading.Lock = field(default_factory=threading.Lock)
    _config_seen: bytes | None = None  # the stack config as last applied or refused

    def start(self) -> None:
        if not port_free(self.env.port):
            raise EmulatorError(
                f"port {self.env.port} is in use (another fanout running?); set FANOUT_PORT to a free port"
            )
        # Before anything starts: two stacks writing one state dir would overwrite each other's snapshots.
        self.state = LocalState(self.env.state_dir, self.topo, self.env)
        self.state.lock()
        # This run's keys for the emulated endpoint: the CLI and `fanout env` read them from the state dir.
        self.env = self.state.env = self.state.new_credentials()
        self.registry = Registry(self.env.state_dir / HANDLERS, self.env.secret_access_key)
        self.ledger = self.state.ledger = Ledger.load(self.env.state_dir / TRACE)
        self.emulator = Emulator(
            self.env.aws_port, self.env.state_dir, self.env.access_key_id, self.env.secret_access_key
        )
        self.emulator.start()
        # The runtime's own clients find the emulator through boto3's standard environment; each function
        # gets its own variables in its own process, so this one holds none of theirs (only the topic, for
        # the console's replay).
        os.environ.update(publisher_environ(self.env, self.topo))
        import boto3

        self.session = session = boto3.session.Session()
        self.consumers = provision(self.topo, self.env, session)
        # moto starts empty: load the last snapshot before anything can read or write.
        self.restored = self.state.restore(session)
        self._start_trace_taps(session)
        self._start_metering()
        self._start_functions()
        self._start_pollers(session)
        self._start_scheduler()
        self._start_watchers()
        snapshotter = Snapshotter(self.state, session, self.env.snapshot_seconds, self.stop_event)
        snapshotter.start()
        self.threads.append(snapshotter)
        self.gateway = Gateway(
            port=self.env.port,
            region=self.env.region,
            # Each function in its own process; concurrent requests each get an environment (module copy) there.
            authorizer=self.functions["authorizer"],
            api=self.functions["api"],
            cache_ttl=self.topo.auth.cache_ttl_seconds,
            jwt_secret=self.env.jwt_secret,
            web_dir=PROJECT_ROOT / "web",
            ready=self.healthy,
            # What `fanout` asks for (GET /_local/stack) when only FANOUT_PORT points it at this stack.
            # The state dir, where its user (only) finds the endpoint's credentials.
            info={
                "aws_endpoint": self.env.aws_endpoint,
                "region": self.env.region,
                "stack": self.env.stack,
                "state_dir": str(self.env.state_dir.resolve()),
            },
            asyncapi=self.asyncapi_document,
            local=LocalApi(
                session=session,
                env=self.env,
                topology=lambda: self.topo,
                ledger=self.ledger,
                cost=lambda: self.meter.panel(self.ledger.published_total),
                load_errors=self.load_errors,
                handlers=self.registry.handle,
            ).handle,
        )
        self.gateway.start()
        write_stack_file(self.env)  # how a CLI in another shell finds this stack (its ports and secret)

    def load_errors(self) -> dict[str, str]:
        """Each function whose code does not import now, with its init error (what the console shows)."""
        every = {**self.functions, **{name: r.function for name, r in list(self.runners.items())}}
        return {name: f.broken for name, f in every.items() if f.broken}

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

    def _start_metering(self) -> None:
        """The console's cost panel counts the functions' AWS calls and invocations (fanout/local/costpanel.py)."""
        from fanout.local import environments

        self.meter = Meter({c.name: c.memory_mb for c in self.topo.consumers})
        # Each function process records its calls; `make bench` may have set its own recorder and sink first.
        os.environ.setdefault("FANOUT_WORKER_HOOK", "fanout.local.metering")
        previous = environments.CALLS_SINK

        def sink(records: list[dict[str, Any]]) -> None:
            self.meter.calls(records)
            if previous is not None:
                previous(records)

        environments.CALLS_SINK = sink
        environments.INVOCATION_SINK = self.meter.invocation

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

    def _trace_start(self, consumer: topology.Consumer) -> OnStart:
        """What a consumer's pollers call as an invocation begins: its events show "running"."""

        def on_start(messages: list[dict[str, Any]], timeout_seconds: float) -> None:
            try:
                trace_started(self.ledger, consumer.name, messages, timeout_seconds)
            except Exception:
                log.exception("could not record %s's invocation in the trace ledger", consumer.name)

        return on_start

    def _function(self, name: str, spec: str, slots: int, timeout: int, memory: int) -> FunctionProcess:
        return FunctionProcess(
            name,
            spec,
            process_environment(self.env, self.topo, name, memory),
            slots=slots,
            timeout_seconds=timeout,
            cwd=str(PROJECT_ROOT),
            on_broken=broken_reporter("function"),
        )

    def _start_functions(self) -> None:
        """The api, the authorizer and the generator, each environment its own process, started (init) in parallel."""
        self.functions = {
            "authorizer": self._function("authorizer", "handlers.authorizer:handler", AUTHORIZER_CONCURRENCY, 10, 256),
            "api": self._function("api", "handlers.api:handler", API_CONCURRENCY, 10, 512),
            "generator": self._function("generator", "handlers.generator:handler", 1, 60, 256),
        }
        starting = [threading.Thread(target=f.start, daemon=True) for f in self.functions.values()]
        for t in starting:
            t.start()
        for t in starting:
            t.join(60)

    def _start_pollers(self, session: Any) -> None:
        from botocore.config import Config

        self._sqs = session.client("sqs", config=Config(max_pool_connections=50, retries={"mode": "standard"}))
        self.meter.attach_pollers(self._sqs)
        starting = []
        for c in self.topo.consumers:
            if c.handler:
                starting.append(self._start_runner(self.topo, c, c.handler))
        self._sync_subscribed()
        for runner in starting:
            # Before the stack says it is ready: the first event does not wait for a cold start.
            runner.function.start()

    def _start_runner(
        self,
        topo: topology.Topology,
        c: topology.Consumer,
        spec: str,
        path: str | None = None,
        environ: dict[str, str] | None = None,
    ) -> ConsumerRunner:
        queues = self.consumers[c.name]
        function = FunctionProcess(
            c.name,
            spec,
            environ or process_environment(self.env, topo, c.name, c.memory_mb),
            slots=c.max_concurrency,  # one environment per concurrent poller, as on AWS
            timeout_seconds=c.timeout_seconds,
            paths=[path] if path else [],
            cwd=str(PROJECT_ROOT),
            on_broken=broken_reporter(
                "consumer",
                f"its handler {spec}" + (f" from {path}" if path else f" in Pulumi.{self.env.stack}.yaml"),
            ),
        )
        runner = ConsumerRunner(
            consumer=c,
            queues=queues,
            function=function,
            sqs=self._sqs,
            queue_arn=consumers.queue_arn(self._sqs, queues.queue_url),
            region=self.env.region,
            on_batch=self._trace_report(c),
            on_start=self._trace_start(c),
            stop_event=LinkedEvent(self.stop_event),
        )
        runner.start()
        self.runners[c.name] = runner
        return runner

    # ------------------------------------------------------------------ live reload

    def _start_watchers(self) -> None:
        config = PROJECT_ROOT / f"Pulumi.{self.env.stack}.yaml"
        self._config_seen = settled(config)
        code = Watcher(
            "watch-code",
            lambda: code_dirs(list(self.subscribed.values())),
            self.reload_code,
            self.stop_event,
            recursive=False,  # directory by directory: never a whole --path tree (see fanout/local/live.py)
        )
        self._code_watcher = code
        stack = Watcher(
            "watch-config",
            lambda: [config.parent],
            lambda paths: self.apply_config() if any(p.name == config.name for p in paths) else None,
            self.stop_event,
            recursive=False,  # the repository root: only the stack config itself
        )
        subscribed = threading.Thread(target=self._watch_subscribed, name="watch-subscribed", daemon=True)
        for t in (code, stack, subscribed):
            t.start()
            self.threads.append(t)

    def reload_code(self, changed: set[Path]) -> None:
        """New code from the next invocation: every function whose code may have changed gets a new process."""
        handlers_dir = (PROJECT_ROOT / "handlers").resolve()
        files = {str(p) for p in changed}
        # Only the functions that loaded a changed file (each process reports the files it imported).
        every = [*self.functions.values(), *(r.function for r in list(self.runners.values()))]
        targets = [f for f in every if f.uses(files)]
        restarts = [threading.Thread(target=f.reload, daemon=True) for f in targets]
        # One line per save, whatever the number of functions and environments, init errors included.
        with collected_breakages() as broken:
            for t in restarts:
                t.start()
            for t in restarts:
                t.join(60)
        names = sorted(
            os.path.relpath(p, PROJECT_ROOT) if handlers_dir in p.resolve().parents else str(p) for p in changed
        )
        failed = {b[1] for b in broken}
        said = reload_line(names, sorted({f.name for f in targets if not f.broken} - failed), broken)
        if said:
            say(said)

    def apply_config(self) -> None:
        """Pulumi.<stack>.yaml saved: make queues, DLQs, subscriptions, rules and pollers follow it."""
        with self._apply_lock:
            # An editor's save can be several writes (truncate, write, rename): act once on what it
            # settles to, and not again for the same bytes, so a save prints one line.
            config = PROJECT_ROOT / f"Pulumi.{self.env.stack}.yaml"
            text = settled(config)
            if not (text or b"").strip():
                text = settled(config, quiet=1.0)  # truncated first, written next: give the writer time
            if text == self._config_seen:
                return
            self._config_seen = text
            if not (text or b"").strip():
                say(f"{config.name} is empty or missing; the running topology is unchanged")
                return
            try:
                new = topology.load(self.env.stack)
            except topology.TopologyError as exc:
                say(f"{exc}; the running topology is unchanged")
                return
            if new.ordering != self.topo.ordering:
                say(f"fanout:ordering {new.ordering} applies only to a new stack; the running topology is unchanged")
                return
            if (new.prefix, new.generator, new.auth) != (self.topo.prefix, self.topo.generator, self.topo.auth):
                say(
                    f"Pulumi.{self.env.stack}.yaml: prefix, generator and token settings apply on the next "
                    "`make run`; consumer changes apply now"
                )
            old = {c.name: c for c in self.topo.consumers}
            fresh = {c.name: c for c in new.consumers}
            problem = self._name_problem(new, [c for name, c in fresh.items() if name not in old])
            if problem:
                say(f"Pulumi.{self.env.stack}.yaml: {problem}; the running topology is unchanged")
                return
            added, changed, removed = [], [], []
            for name, c in fresh.items():
                if old.get(name) == c:
                    continue
                before = old.get(name)
                if before is not None and before.source != c.source:
                    self._unsubscribe(self.topo, before)
                self.consumers[name] = provision_consumer(self.topo, c, self.env, self.session)
                runner = self.runners.pop(name, None)
                if runner is not None:
                    runner.stop_event.set()
                    runner.function.retire()  # a batch in flight finishes on the old process
                (changed if before is not None else added).append(name)
            for name in sorted(old.keys() - fresh.keys()):
                self._remove(old[name])
                removed.append(name)
            self.topo = replace(self.topo, consumers=new.consumers, raw=new.raw)
            if self.state is not None:
                self.state.topo = self.topo
            for name in added + changed:
                c = fresh[name]
                if c.handler:
                    self._start_runner(self.topo, c, c.handler)
            summary = "; ".join(
                f"{what} {', '.join(names)}"
                for what, names in (("added", added), ("changed", changed), ("removed", removed))
                if names
            )
            say(f"Pulumi.{self.env.stack}.yaml applied: {summary or 'no consumer changed'}")

    def _name_problem(self, new: topology.Topology, added: list[topology.Consumer]) -> str | None:
        """The one namespace of consumer names: an added consumer takes no name or queue of a subscribed
        consumer or of a removed one whose queues are kept (its own kept queues it gets back)."""
        if not added:
            return None
        sns = self.session.client("sns")
        found = consumers.discover(self._sqs, sns, self.env.topic_arn(self.topo.topic_name))
        declared = {c.name for c in self.topo.consumers}
        kept = consumers.discover_kept(self._sqs, {**found, **self.consumers}, declared)
        uses = [u for u in consumers.name_uses(self.topo, found, kept) if u.name not in declared]
        for c in added:
            own = topology.consumer_queue_names(new.prefix, c.name)
            others = [u for u in uses if not (u.name == c.name and u.name in kept and set(u.queues) <= set(own))]
            problem = topology.name_problem(
                new.prefix, c.name, own, others, handler=c.handler is not None, source=c.source
            )
            if problem:
                return problem
        return None

    def _unsubscribe(self, topo: topology.Topology, c: topology.Consumer) -> None:
        """Stop deliveries to a consumer's queue: its topic subscription, or its rule on the bus."""
        queue_url = self.consumers[c.name].queue_url
        if c.source == "bus":
            consumers.remove_bus_rule(self.session.client("events"), topo.event_bus_name, topo.queue_name(c))
            return
        sns = self.session.client("sns")
        arn = consumers.queue_arn(self._sqs, queue_url)
        for sub in consumers.sqs_subscriptions(sns, self.env.topic_arn(topo.topic_name)):
            if sub["Endpoint"] == arn:
                sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])

    def _remove(self, c: topology.Consumer) -> None:
        """A consumer gone from the config: unsubscribed, pollers stopped; its queues stay while they hold messages."""
        self._unsubscribe(self.topo, c)
        runner = self.runners.pop(c.name, None)
        if runner is not None:
            runner.stop_event.set()
            runner.function.retire()
        queues = self.consumers.pop(c.name)
        held = sum(consumers.counts(self._sqs, url) or 0 for url in (queues.queue_url, queues.dlq_url))
        if held:
            say(f"consumer {c.name} removed; its queues are kept: they hold {plural(held, 'message')}")
            return
        for url in (queues.queue_url, queues.dlq_url):
            if url:
                self._sqs.delete_queue(QueueUrl=url)

    # ------------------------------------------------------------------ `fanout subscribe --handler`

    def _watch_subscribed(self) -> None:
        while not self.stop_event.wait(1.0):
            try:
                self._sync_subscribed()
            except Exception:
                if self.stop_event.is_set():
                    return
                log.exception("could not look for subscribed consumers' handlers")

    def _sync_subscribed(self) -> None:
        """Run (or stop) the handlers registered with `fanout subscribe --handler`, for consumers on the topic.

        Code locations come from the registry the CLI wrote through this stack, checked again here; never
        from the emulated endpoint (queue tags), which is not proof of who asked.
        """
        registered = self.registry.entries() if self.registry is not None else {}
        if not registered and not self.subscribed:
            return
        sns = self.session.client("sns")
        declared = {c.name for c in self.topo.consumers}
        found = consumers.discover(self._sqs, sns, self.env.topic_arn(self.topo.topic_name))
        wanted: dict[str, tuple[str, str | None]] = {}
        for name, reg in registered.items():
            if name in declared:
                continue
            if name not in found:
                # Unsubscribed, or its queue never came (the CLI stopped half-way): forget it.
                if self.registry is not None and (name in self.subscribed or time.time() - reg.at > UNCLAIMED_SECONDS):
                    self.registry.remove(name)
                continue
            try:
                check_handler(reg.handler, reg.path)
            except RegistryError as exc:
                if self._refused.get(name) != str(exc):
                    say(f"consumer {name}: not running {reg.handler}: {exc}")
                    self._refused[name] = str(exc)
                continue
            self._refused.pop(name, None)
            wanted[name] = (reg.handler, reg.path)
        for name in list(self.subscribed):
            if wanted.get(name) != self.subscribed[name]:
                runner = self.runners.pop(name, None)
                if runner is not None:
                    runner.stop_event.set()
                    runner.function.retire()
                del self.subscribed[name]
        for name, (spec, path) in wanted.items():
            if name in self.subscribed:
                continue
            self.consumers[name] = found[name]
            c = topology.Consumer(name=name, handler=None)
            self._start_runner(self.topo, c, spec, path, subscribed_environment(self.env, self.topo, name))
            self.subscribed[name] = (spec, path)
            if getattr(self, "_code_watcher", None) is not None:
                self._code_watcher.rewatch.set()  # watch its directory too
            say(f"consumer {name}: running {spec}" + (f" from {path}" if path else ""))

    def _start_scheduler(self) -> None:
        gen = self.topo.generator
        if not gen.enabled or not self.env.generator_on:
            return
        # Its own process once started; a Runtime used piecemeal (unit tests, under moto's in-process mock)
        # runs it in this process.
        generator = self.functions.get("generator") or load_handler("handlers.generator:handler")
        # FANOUT_GENERATOR_SCHEDULE (e.g. "rate(2 seconds)") lets tests and demos see runs within seconds.
        self.schedule = self.env.generator_schedule or gen.schedule

        def fire() -> object:
            from fanout.local.environments import FunctionStopped
            from fanout.local.lambda_context import LocalContext

            try:
                return generator(
                    {}, LocalContext(function_name="generator", region=self.env.region, timeout_seconds=60)
                )
            except FunctionStopped:
                return None  # the stack stops during a run: not the generator's failure

        scheduler = Scheduler(self.schedule, fire, self.stop_event)
        scheduler.start()
        self.threads.append(scheduler)

    def healthy(self) -> bool:
        """Ready to serve: started, and the emulated AWS endpoint still running."""
        return self.gateway is not None and self.emulator is not None and self.emulator.alive()

    def stop(self, timeout: float = 1.0, within: float = 2.6) -> None:
        """Stop everything within `within` seconds (the contract allows 5 s from the signal to the last child).

        Order: nothing new is received; invocations in flight get `timeout` to finish (their messages are
        then deleted); every function process goes (what still runs is put back untouched, not counted as
        an attempt); the queues are saved, first, with all the time left. Only then what may be slow: the
        gateway's connections, moto.
        """
        started = time.monotonic()
        deadline = started + within
        from fanout.local import environments

        self.stop_event.set()
        for runner in self.runners.values():
            runner.stop_event.set()
        if self.gateway:
            # Under many connections closing the gateway takes a while: it does not hold up the save (the
            # process exits right after the stop, whatever is left of it goes then).
            threading.Thread(target=self.gateway.stop, name="gateway-stop", daemon=True).start()
        pollers = [p for r in self.runners.values() for p in r.pollers]
        finish = time.monotonic() + timeout  # one deadline for all pollers: they stop in parallel
        for t in pollers:
            t.join(max(0.0, finish - time.monotonic()))
        environments.kill_all()  # every function process and its group, those still in init too
        finish = time.monotonic() + 0.5  # a poller cut short returns at once
        for t in pollers:
            t.join(max(0.0, finish - time.monotonic()))
        drained = time.monotonic()
        returned: list[str] = []
        for t in pollers:
            returned += t.put_back()  # cut short by the stop: back as they were
            t.release_held()  # messages waiting out a visibility timeout are saved too
        if self.state is not None:
            if self.session is not None and self.emulator is not None:
                try:
                    budget = max(1.5, deadline - time.monotonic())  # never less than it ever had
                    self.state.snapshot(self.session, budget=budget, final=True, returned=set(returned))
                except Exception:
                    log.exception("final snapshot failed; the last periodic one is kept")
            self.state.unlock()
        log.info(
            "stop: invocations drained in %.2f s, %d messages put back, state saved in %.2f s",
            drained - started,
            len(returned),
            time.monotonic() - drained,
        )
        if self.emulator:
            # The snapshot is taken: moto's state is disposable, and its own exit (interpreter teardown of
            # all it holds) can take seconds under load, so it gets little time before SIGKILL.
            self.emulator.stop(timeout=0.2)
