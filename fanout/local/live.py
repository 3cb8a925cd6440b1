"""Live `make run`: each function in its own process, reloaded when its code or the stack config changes.

- Every function (api, authorizer, generator, each consumer) is a FunctionProcess: its own process
  with exactly the environment fanout.environment gives it on AWS (plus the local endpoint and
  credentials), so per-function variables, real timeouts and crash isolation hold as on Lambda.
- A saved file under handlers/ (or under a `fanout subscribe --path` directory) restarts the
  functions' processes: the next invocation runs the new code, within about a second; what runs
  finishes on the old process. A module that does not import is reported once, with its file,
  consumer and error; that consumer's pollers then leave its messages in the queue until the file
  imports again.
- A saved Pulumi.<stack>.yaml is read again and applied: new consumers get queues, DLQs, their
  subscription or rule and pollers; changed ones are updated; removed ones are unsubscribed and
  their pollers stop (their queues stay while they hold messages). An invalid edit is reported
  with the key and the running topology stays as it was.
Watching uses watchfiles (inotify where available), not a polling loop of our own. It watches
directories one by one, never a whole tree: watchfiles holds the GIL while it sets a watch up, so a
`--path` to a big checkout (a .git, a node_modules) froze the API, the pollers and Ctrl+C for as long
as it took. A `--path` handler's watch is its directory itself (its top-level modules), the packages
on its module's path and, for a package, that package's tree, without .git, node_modules or .venv.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fanout import PROJECT_ROOT, consumers, topology
from fanout.environment import Refs, function_environment, local_extras
from fanout.local.environments import FunctionProcess
from fanout.local.poller import OnBatch, OnStart, Poller
from fanout.local.provision import cursor_secret_id
from fanout.localenv import LocalEnv

log = logging.getLogger("fanout.local")
HANDLER_TAG = consumers.HANDLER_TAG  # on the queue of a `fanout subscribe --handler` consumer: MODULE:FUNCTION
PATH_TAG = consumers.PATH_TAG  # and the directory its module is imported from
# Directories never watched: not code, and often huge.
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache"})
MAX_WATCHED_DIRS = 1000  # per tree: a package bigger than this is watched in part (said once)
# Variables a process needs to run at all (Lambda's runtime sets its own equivalents).
PROCESS_VARS = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "VIRTUAL_ENV")


def say(message: str) -> None:
    """One line in the `make run` terminal, whatever the log level."""
    sys.stderr.write(f"fanout: {message}\n")
    sys.stderr.flush()


def refs(env: LocalEnv, topo: topology.Topology) -> Refs:
    return Refs(
        topic_arn=env.topic_arn(topo.topic_name),
        table_name=topo.table_name,
        idempotency_table_name=topo.idempotency_table_name,
        event_bus_name=topo.event_bus_name,
        archive_bucket=topo.archive_bucket_name,
        cursor_secret=cursor_secret_id(topo),  # in the emulator's Secrets Manager (provision creates it)
    )


def local_auth(env: LocalEnv, topo: topology.Topology) -> dict[str, str]:
    # Locally tokens are HS256 with the local secret; AWS stacks verify against a JWKS.
    return {"JWT_ALGORITHMS": "HS256", "JWT_SECRET": env.jwt_secret, "ROLES_CLAIM": topo.auth.roles_claim}


def lambda_runtime_vars(topo: topology.Topology, function: str, memory_mb: int) -> dict[str, str]:
    """What Lambda's runtime itself sets in every function (not declared by the Pulumi program)."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": f"{topo.prefix}-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "TZ": "UTC",
        # No config or credentials files, as in Lambda: only the environment configures boto3.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "PYTHONUNBUFFERED": "1",
    }


def declared_environment(env: LocalEnv, topo: topology.Topology, function: str) -> dict[str, str]:
    """The variables the Pulumi program declares for `function`, with local values (compared by a test)."""
    return function_environment(topo, function, refs(env, topo), log_level=env.log_level, auth=local_auth(env, topo))


def _process_base() -> dict[str, str]:
    # FANOUT_WORKER_HOOK (bench's call counter) is taken out again by the worker before the handler loads.
    return {k: os.environ[k] for k in (*PROCESS_VARS, "FANOUT_WORKER_HOOK") if k in os.environ}


def process_environment(env: LocalEnv, topo: topology.Topology, function: str, memory_mb: int = 256) -> dict[str, str]:
    """A function's whole local environment: declared variables, Lambda's own, endpoint and credentials."""
    base = _process_base()
    return {
        **base,
        **lambda_runtime_vars(topo, function, memory_mb),
        **local_extras(env.aws_environ()),
        **declared_environment(env, topo, function),
    }


def subscribed_environment(env: LocalEnv, topo: topology.Topology, name: str) -> dict[str, str]:
    """A `fanout subscribe --handler` consumer: the common variables, as a config consumer without extras."""
    spec = topology.Consumer(name=name)
    common = function_environment(
        replace(topo, consumers=(*topo.consumers, spec)), name, refs(env, topo), log_level=env.log_level
    )
    base = _process_base()
    return {**base, **lambda_runtime_vars(topo, name, 256), **local_extras(env.aws_environ()), **common}


class LinkedEvent(threading.Event):
    """Set by itself (this consumer stops) or by its parent (the whole stack stops)."""

    def __init__(self, parent: threading.Event) -> None:
        super().__init__()
        self.parent = parent

    def is_set(self) -> bool:
        return super().is_set() or self.parent.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if left <= 0:
                return False
            super().wait(left)
        return True


@dataclass
class ConsumerRunner:
    """One consumer running locally: its function's process and its pollers (one per maxConcurrency)."""

    consumer: topology.Consumer
    queues: consumers.ConsumerQueues
    function: FunctionProcess
    sqs: Any
    queue_arn: str
    region: str
    on_batch: OnBatch | None = None
    on_start: OnStart | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    pollers: list[Poller] = field(default_factory=list)

    def start(self) -> None:
        threading.Thread(target=self.function.start, name=f"init-{self.consumer.name}", daemon=True).start()
        for i in range(self.consumer.max_concurrency):
            poller = Poller(
                name=f"{self.consumer.name}-{i}",
                sqs=self.sqs,
                queue_url=self.queues.queue_url,
                queue_arn=self.queue_arn,
                handler=self.function,
                batch_size=self.consumer.batch_size,
                batching_window=self.consumer.batching_window_seconds,
                region=self.region,
                timeout_seconds=self.consumer.timeout_seconds,
                stop=self.stop_event,
                on_batch=self.on_batch,
                on_start=self.on_start,
            )
            poller.start()
            self.pollers.append(poller)

    def stop(self, timeout: float = 2.0) -> None:
        self.stop_event.set()
        for p in self.pollers:
            p.join(timeout)
        self.function.stop()


Breakage = tuple[str, str, str]  # (kind, function name, init error)
_collecting: list[list[Breakage]] = []  # while a save's reload runs: its init errors, said in its one line
_collecting_lock = threading.Lock()


def broken_reporter(kind: str, where: str = "") -> Callable[[str, str], None]:
    """Reports an init error once: '<kind> NAME does not load: FILE line N: Error: ... (WHERE)'."""

    def report(name: str, error: str) -> None:
        with _collecting_lock:
            if _collecting:
                _collecting[-1].append((kind, name, error))
                return
        said = f" ({where})" if where else ""
        say(f"{kind} {name} does not load: {error}{said}; saving a fix loads it")

    return report


def tree_dirs(root: Path, limit: int = MAX_WATCHED_DIRS) -> list[Path]:
    """root and the directories under it that may hold code (no dot dirs, no SKIP_DIRS), at most `limit`."""
    found: list[Path] = []
    for here, dirs, _ in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        found.append(Path(here))
        if len(found) >= limit:
            log.warning("watching only the first %d directories under %s for code changes", limit, root)
            break
    return found


def handler_dirs(spec: str, path: str) -> list[Path]:
    """What to watch for a `--path` handler: the directory itself (not its subtree), each package on the
    module's dotted path (its __init__.py), the module's own directory, and a package module's tree."""
    here = Path(path)
    dirs = [here]
    parts = spec.split(":", 1)[0].split(".")
    for part in parts[:-1]:
        here = here / part
        dirs.append(here)
    package = here / parts[-1]
    if package.is_dir():
        dirs += tree_dirs(package)
    return dirs


@contextlib.contextmanager
def collected_breakages() -> Iterator[list[Breakage]]:
    """Within: init errors are collected (for one line per save) instead of said one a function."""
    found: list[Breakage] = []
    with _collecting_lock:
        _collecting.append(found)
    try:
        yield found
    finally:
        with _collecting_lock:
            _collecting.remove(found)


def reload_line(saved: list[str], reloaded: list[str], broken: list[Breakage]) -> str | None:
    """The one line a save of code prints: what reloaded, and what does not load (by error), or None."""
    parts = [f"{', '.join(reloaded)} reloaded"] if reloaded else []
    by_error: dict[str, list[Breakage]] = {}
    for b in broken:
        by_error.setdefault(b[2], []).append(b)
    for error, same in by_error.items():
        if len(same) == 1:
            parts.append(f"{same[0][0]} {same[0][1]} does not load: {error}")
        else:
            names = sorted(b[1] for b in same)
            parts.append(f"{', '.join(names[:-1])} and {names[-1]} do not load: {error}")
    if not parts:
        return None
    return f"{', '.join(saved)} saved: {'; '.join(parts)}" + ("; saving a fix loads it" if broken else "")


class Watcher(threading.Thread):
    """watchfiles on some directories, each without its subdirectories unless `recursive`; calls back with
    the paths that changed (debounced). A directory created in a watched one makes it look again."""

    def __init__(
        self,
        name: str,
        targets: Callable[[], list[Path]],
        on_change: Callable[[set[Path]], None],
        stop: threading.Event,
        *,
        recursive: bool = True,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.targets = targets
        self.on_change = on_change
        self.stop = stop
        self.recursive = recursive
        self.rewatch = threading.Event()  # set when the paths to watch change

    def run(self) -> None:
        from watchfiles import watch

        while not self.stop.is_set():
            self.rewatch.clear()
            targets = [str(d) for d in dict.fromkeys(self.targets()) if d.is_dir()]
            if not targets:
                self.stop.wait(1)
                continue
            try:
                for changes in watch(
                    *targets,
                    stop_event=_Either(self.stop, self.rewatch),
                    debounce=150,
                    step=50,
                    rust_timeout=500,
                    recursive=self.recursive,
                ):
                    changed = {Path(p) for _, p in changes}
                    if not self.recursive and any(p.is_dir() for p in changed):
                        self.rewatch.set()  # a new directory (a new package): watched from the next round
                    try:
                        self.on_change(changed)
                    except Exception:
                        log.exception("applying a change failed")
            except Exception:
                if self.stop.is_set():
                    return
                log.exception("file watching failed; restarting it")
                self.stop.wait(1)


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


class _Either:
    """An Event-like view that is set when either of two events is (for watchfiles' stop_event)."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()


def code_dirs(subscribed: list[tuple[str, str | None]]) -> list[Path]:
    """Every directory watched for code: the project's handlers/ tree and each `--path` handler's own."""
    dirs = tree_dirs(PROJECT_ROOT / "handlers")
    for spec, path in subscribed:
        if path:
            dirs += handler_dirs(spec, path)
    return dirs
