"""Lambda functions locally: each execution environment its own process, as on AWS.

`FunctionProcess` is one function with up to `slots` concurrent invocations. Each invocation runs
in an `Environment`: a process of its own (fanout/local/worker.py) started with that function's
environment variables only, that handles one invocation at a time, as a Lambda execution
environment does. Its timeouts are real (the process is stopped, the batch retried), a crash stays
its own, and reload is a new process. Threads sharing one process would share what Lambda never
shares between two invocations: Powertools' resolver keeps the current event on a class
(`BaseRouter.current_event`), its Logger keeps appended keys on a formatter shared by name, so two
concurrent requests read each other's body and caller (seen: 300 concurrent POSTs stored bodies
under each other's ids). A process is 40-60 MB; the local concurrency of the api and authorizer is
kept small for that (fanout/local/runtime.py).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from fanout.local import logfmt, output

Handler = Callable[[dict[str, Any], Any], Any]
_copies = itertools.count(1)


def load_handler(spec: str) -> Handler:
    """The handler of the shared module (for callers that never run it concurrently)."""
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


class FreshSource(importlib.machinery.SourceFileLoader):
    """Compiles a module from its source every time, never from __pycache__.

    Bytecode caches are checked by the source's mtime in whole seconds and its size: two saves
    within a second that keep the size (v3 -> v4) would run the older code. Used for the code
    that live reload watches (handlers/, `subscribe --path` directories); small, so cheap.
    """

    def get_code(self, fullname: str) -> Any:
        return self.source_to_code(self.get_data(self.path), self.path)


def compile_fresh_under(roots: list[str]) -> None:
    """From now on, modules found in these directories (and below) load through FreshSource."""
    machinery = importlib.machinery
    finder = machinery.FileFinder.path_hook(
        (FreshSource, machinery.SOURCE_SUFFIXES),
        (machinery.ExtensionFileLoader, machinery.EXTENSION_SUFFIXES),
        (machinery.SourcelessFileLoader, machinery.BYTECODE_SUFFIXES),
    )
    real = [os.path.realpath(r) for r in roots]

    def hook(path: str) -> Any:
        here = os.path.realpath(path or ".")
        if any(here == r or here.startswith(r + os.sep) for r in real):
            return finder(path)
        raise ImportError("not live-reloaded code")  # the next hook (the standard one) takes it

    sys.path_hooks.insert(0, hook)
    sys.path_importer_cache.clear()


def new_environment(spec: str) -> Handler:
    """The handler of a fresh copy of its module: one execution environment's worth of state."""
    module, _, function = spec.partition(":")
    original = importlib.import_module(module)  # imports its package and shared dependencies once
    name = f"{module}__env{next(_copies)}"
    loader = original.__loader__ if isinstance(original.__loader__, FreshSource) else None
    found = importlib.util.spec_from_file_location(
        name, original.__file__, loader=FreshSource(name, original.__file__) if loader else None
    )
    if found is None or found.loader is None:
        raise ImportError(f"cannot load {module} again from {original.__file__}")
    copy = importlib.util.module_from_spec(found)
    found.loader.exec_module(copy)
    return getattr(copy, function)


# ---------------------------------------------------------------------- a function's own process


class FunctionError(Exception):
    """The handler raised; str() is its message, as the caller would have seen it in-process."""

    def __init__(self, message: str, kind: str = "Exception", trace: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.trace = trace


class FunctionTimeout(FunctionError):
    """The invocation ran past the function's timeout; its process was stopped, as Lambda does."""


class FunctionCrashed(FunctionError):
    """The function's process ended in the middle of the invocation."""


class FunctionBroken(FunctionError):
    """The handler's code does not import (the init phase failed); str() names the file and error."""


class FunctionStopped(FunctionError):
    """The stack stopped during the invocation: not the handler's failure, its messages go back untouched."""


# Every worker process alive, so that a stop kills them all, those still in their init phase included.
_PROCESSES: set[_Process] = set()
_registry_lock = threading.Lock()
_stopping = False  # the stack stops: no new worker process


def process_groups() -> list[int]:
    """The process group of every worker (each is its own group's leader); read without a lock, for a forced exit."""
    for _ in range(3):
        try:
            return [p.proc.pid for p in tuple(_PROCESSES)]
        except RuntimeError:  # changed size while copied; try again
            continue
    return []


def kill_all() -> None:
    """At shutdown: every worker process goes now, with whatever it started (its whole process group).

    From then on no function starts a process again: an invocation still asked for is FunctionStopped.
    """
    global _stopping
    with _registry_lock:
        _stopping = True
        every = list(_PROCESSES)
    for process in every:
        process.stopped = True
        process.kill_group()
    for process in every:
        process.reap()


class _Process:
    """One worker process (fanout/local/worker.py) and the invocations waiting for its answers."""

    def __init__(self, spec: str, slots: int, environ: dict[str, str], paths: list[str], cwd: str | None) -> None:

        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            # -u: the function's output reaches the terminal as it is written, as on Lambda.
            [sys.executable, "-u", "-m", "fanout.local.worker", spec, str(slots), str(write_fd), *paths],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=cwd,
            pass_fds=(write_fd,),
            # Its own session and process group: a terminal's Ctrl+C (SIGINT to the foreground group) reaches
            # only the runtime, which drains the invocation in flight; and a stop kills the whole group, the
            # handler's own children included.
            start_new_session=True,
        )
        os.close(write_fd)
        self.stopped = False  # set at shutdown: an invocation cut short by it is not the handler's failure
        with _registry_lock:
            _PROCESSES.add(self)
            late = _stopping
        if late:  # started as the stack stopped: it goes at once
            self.stopped = True
            self.kill_group()
        # Its log lines, readable in the terminal (fanout/local/logfmt.py); drained for the process's whole life,
        # whatever bytes it writes (fanout/local/output.py).
        assert self.proc.stdout is not None
        logfmt.relay_in_thread(
            output.lines(self.proc.stdout.fileno()), environ.get("POWERTOOLS_SERVICE_NAME") or spec.split(":")[0]
        )
        self._answers = os.fdopen(read_fd, "r", encoding="utf-8")
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._ids = itertools.count(1)
        self.inflight = 0
        self.retired = False
        self.files: set[str] = set()  # the project's source files this process has loaded
        self.generation = 0
        self.ready = threading.Event()
        self.init: dict[str, Any] = {}
        self._reader = threading.Thread(target=self._read, name=f"worker-{spec}", daemon=True)
        self._reader.start()

    def _read(self) -> None:

        for line in self._answers:
            message = json.loads(line)
            if message.get("files"):
                self.files.update(os.path.realpath(f) for f in message["files"])
            if "ready" in message:
                self.init = message
                self.ready.set()
                continue
            with self._lock:
                done, box = self._waiting.pop(message["id"], (None, []))
            if done is not None:
                box.append(message)
                done.set()
        # EOF: the process is gone; whoever still waits learns it now. What it started goes with it.
        self.kill_group()
        code = self.proc.wait()
        with _registry_lock:
            _PROCESSES.discard(self)
        if not self.ready.is_set():
            self.init = {"ready": False, "error": f"the process exited with code {code}"}
            self.ready.set()
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for done, _ in waiting.values():
            done.set()

    def invoke(self, event: dict[str, Any], context: Any, timeout: float) -> Any:
        started = time.monotonic()

        done: threading.Event = threading.Event()
        box: list[dict[str, Any]] = []
        with self._lock:
            request_id = next(self._ids)
            self._waiting[request_id] = (done, box)
            self.inflight += 1
        request = {
            "id": request_id,
            "event": event,
            "context": {
                "function_name": context.function_name,
                "region": getattr(context, "region", "us-east-1"),
                "timeout_seconds": getattr(context, "timeout_seconds", timeout),
                "aws_request_id": context.aws_request_id,
            },
        }
        try:
            try:
                assert self.proc.stdin is not None
                with self._lock:
                    self.proc.stdin.write(json.dumps(request, separators=(",", ":")).encode() + b"\n")
                    self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                if self.stopped:
                    raise FunctionStopped("the stack stopped", "Stopped") from None
                raise FunctionCrashed(f"the function's process had exited (code {self.proc.poll()})") from None
            if not done.wait(timeout):
                self.kill()
                if self.stopped:
                    raise FunctionStopped("the stack stopped", "Stopped")
                raise FunctionTimeout(f"Task timed out after {timeout:.2f} seconds", "Timeout")
            if not box and self.stopped:
                raise FunctionStopped("the stack stopped during the invocation", "Stopped")
            if not box:
                raise FunctionCrashed(f"the function's process exited (code {self.proc.wait()}) during the invocation")
            answer = box[0]
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)
                self.inflight -= 1
                idle_retired = self.retired and self.inflight == 0
            if idle_retired:
                self.stop()
        _note_failures(answer.get("failures") or {})
        if answer.get("calls") and CALLS_SINK is not None:
            CALLS_SINK(answer["calls"])
        if INVOCATION_SINK is not None:
            INVOCATION_SINK(context.function_name, (time.monotonic() - started) * 1000)
        if not answer["ok"]:
            raise FunctionError(answer["error"], answer.get("type", "Exception"), answer.get("trace", ""))
        return answer["result"]

    def retire(self) -> None:
        """No new invocations; stops once those in flight have answered."""
        with self._lock:
            self.retired = True
            idle = self.inflight == 0
        if idle:
            self.stop()

    def stop(self, grace: float = 1.0) -> None:

        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # the worker's loop ends on EOF
            except OSError:
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        self.kill()  # what is left of its group (the handler's own children), then it is forgotten

    def kill(self) -> None:
        self.kill_group()
        self.reap()

    def kill_group(self) -> None:
        """SIGKILL to the worker's process group: the worker and whatever its handler started."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def reap(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        with _registry_lock:
            _PROCESSES.discard(self)

    def alive(self) -> bool:
        return self.proc.poll() is None


# Where the records of a FANOUT_WORKER_HOOK (AWS calls the functions made, for `make bench`) go; None: dropped.
CALLS_SINK: Callable[[list[dict[str, Any]]], None] | None = None
# Told (function name, milliseconds) after each invocation: the console's cost panel (fanout/local/costpanel.py).
INVOCATION_SINK: Callable[[str, float], None] | None = None


def _note_failures(failures: dict[str, Any]) -> None:
    """Hand the worker's per-record errors to the poller's trace ledger, as if the handler ran here."""
    if not failures:
        return
    from fanout.local import ledger

    current = ledger._failures.get()
    if current is not None:
        current.update({k: tuple(v) for k, v in failures.items()})


class Environment:
    """One execution environment of a function: its own process with the function's environment variables.

    One invocation at a time (`FunctionProcess` never sends it two). `reload()` starts a new process
    from the code as it is now; an invocation already running finishes on the old one, which then
    exits. A handler that runs past `timeout_seconds` has its process stopped (the invocation fails,
    its batch is retried), as on AWS; a crash fails only its own invocation; the next call starts afresh.
    """

    def __init__(
        self,
        name: str,
        spec: str,
        environ: dict[str, str],
        *,
        timeout_seconds: float = 30,
        paths: list[str] | None = None,
        cwd: str | None = None,
        on_broken: Callable[[str, str], None] | None = None,
        on_loaded: Callable[[], None] | None = None,
    ) -> None:

        self.name = name
        self.spec = spec
        self.environ = dict(environ)
        self.timeout_seconds = timeout_seconds
        self.paths = list(paths or [])
        self.cwd = cwd
        self.on_broken = on_broken
        self.on_loaded = on_loaded
        self.broken: str | None = None  # the init error of the current code, until it imports again
        self._lock = threading.Lock()
        self._current: _Process | None = None
        self.generation = 0  # bumped by each reload; a process of an older generation runs stale code
        self._retry = False
        self._starting = threading.Lock()
        # Set once an init has loaded or failed: until then nobody knows whether its messages can be handled.
        self.init_known = threading.Event()

    def _start(self) -> _Process:
        generation = self.generation  # before the code is read: a change from now on makes it stale
        proc = _Process(self.spec, 1, self.environ, self.paths, self.cwd)  # one invocation at a time
        proc.generation = generation
        proc.ready.wait(60)
        if proc.stopped:
            raise FunctionStopped("the stack stopped during the function's init", "Stopped")
        if not proc.init.get("ready"):
            error = str(proc.init.get("error") or "the function did not start")
            proc.kill()
            if error != self.broken and self.on_broken is not None:
                self.on_broken(self.name, error)  # once per distinct error, not per invocation
            self.broken = error
            self.init_known.set()  # after `broken`: a poller that sees the init ended must see it failed
            raise FunctionBroken(error, "InitError", str(proc.init.get("trace", "")))
        self.broken = None
        self.init_known.set()
        if self.on_loaded is not None:
            self.on_loaded()
        return proc

    def _live(self) -> _Process:
        with self._lock:
            proc = self._current
        if proc is not None and proc.alive() and not proc.retired:
            # Fast path, no wait: while a reload loads the new code, invocations still go to this process.
            if proc.generation != self.generation and not self._starting.locked():
                # A change came in while its reload was busy with an earlier one: load it now, in the background.
                threading.Thread(target=self._refresh, name=f"reload-{self.name}", daemon=True).start()
            return proc
        with self._starting:  # no usable process: one start at a time; the others wait and share it
            with self._lock:
                proc = self._current
            if proc is not None and proc.alive() and not proc.retired:
                return proc
            if self.broken is not None and not self._retry:
                # The code did not import; it is tried again when it changes (reload), not per invocation.
                raise FunctionBroken(self.broken, "InitError")
            self._retry = False
            fresh = self._start()
            with self._lock:
                self._current = fresh
            return fresh

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        timeout = float(getattr(context, "timeout_seconds", self.timeout_seconds) or self.timeout_seconds)
        return self._live().invoke(event, context, timeout)

    def start(self) -> None:
        """Start now (the init phase) instead of at the first invocation; an init error is kept in `broken`."""
        with contextlib.suppress(FunctionBroken, FunctionStopped):
            self._live()

    def uses(self, changed: set[str]) -> bool:
        """Whether a change to these files concerns this function (a broken one retries on any change)."""
        if self._starting.locked():
            return True  # loading right now: which files it read is not known yet
        with self._lock:
            current = self._current
        if current is None or not current.alive():
            return self.broken is not None  # no process: the next invocation starts from the code as it is
        return bool(current.files & {os.path.realpath(p) for p in changed})

    def reload(self) -> None:
        """New code from the next invocation on: start a new process and switch to it once it has loaded.

        Invocations keep going to the old process until then (no wait), and those running on it finish
        there; it exits once they have. Code that does not load retires the old process all the same:
        from now on the function is broken until a saved fix loads.
        """
        self.generation += 1
        self._refresh()

    def _refresh(self) -> None:
        """Load the code as it is now into a new process and switch to it (unless that is done already)."""
        with self._starting:
            with self._lock:
                current = self._current
            if current is not None and current.alive() and current.generation == self.generation:
                return
            self._retry = False
            try:
                fresh: _Process | None = self._start()
            except (FunctionBroken, FunctionStopped):
                fresh = None
            with self._lock:
                old, self._current = self._current, fresh
        if old is not None:
            old.retire()

    def pid(self) -> int | None:
        with self._lock:
            return self._current.proc.pid if self._current is not None and self._current.alive() else None

    def retire(self) -> None:
        """Stop once the invocations in flight have answered (a removed or changed consumer)."""
        with self._lock:
            old, self._current = self._current, None
        if old is not None:
            old.retire()

    def stop(self) -> None:
        with self._lock:
            old, self._current = self._current, None
        if old is not None:
            old.stop()

    def kill(self) -> None:
        """At shutdown: the process goes now (its messages come back after the visibility timeout)."""
        with self._lock:
            old, self._current = self._current, None
        if old is not None:
            old.kill()


class FunctionProcess:
    """A Lambda function locally: up to `slots` concurrent invocations, each in an `Environment` of its own.

    A call takes a free environment (the most recently used first, as Lambda reuses warm ones) and waits
    for one when all are busy, as invocations wait for concurrency. Reload, retire, stop and kill apply
    to every environment; an init error is reported once for the function, not once per environment.
    """

    def __init__(
        self,
        name: str,
        spec: str,
        environ: dict[str, str],
        *,
        slots: int = 1,
        timeout_seconds: float = 30,
        paths: list[str] | None = None,
        cwd: str | None = None,
        on_broken: Callable[[str, str], None] | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.environ = dict(environ)
        self.slots = slots
        self.timeout_seconds = timeout_seconds
        self.paths = list(paths or [])
        self.cwd = cwd
        self.on_broken = on_broken
        self._reported: str | None = None
        self._report_lock = threading.Lock()
        self.environments = [
            Environment(
                name,
                spec,
                environ,
                timeout_seconds=timeout_seconds,
                paths=paths,
                cwd=cwd,
                on_broken=self._report,
                on_loaded=self._loaded,
            )
            for _ in range(max(1, slots))
        ]
        self._free: queue.LifoQueue[Environment] = queue.LifoQueue()
        for environment in reversed(self.environments):
            self._free.put(environment)

    def _report(self, name: str, error: str) -> None:
        with self._report_lock:
            if error == self._reported:
                return  # another environment of this function hit the same init error
            self._reported = error
        if self.on_broken is not None:
            self.on_broken(name, error)

    def _loaded(self) -> None:
        with self._report_lock:
            self._reported = None

    @property
    def broken(self) -> str | None:
        return next((e.broken for e in self.environments if e.broken is not None), None)

    @property
    def init_known(self) -> bool:
        """Whether its code is known to load or not (an init has finished); pollers wait for it."""
        return any(e.init_known.is_set() for e in self.environments)

    def wait_init(self, timeout: float) -> bool:
        return self.environments[0].init_known.wait(timeout) or self.init_known

    @property
    def generation(self) -> int:
        return self.environments[0].generation

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        environment = self._free.get()
        try:
            return environment(event, context)
        finally:
            self._free.put(environment)

    def _each(self, action: Callable[[Environment], None]) -> None:
        """Every environment at once: a reload or a start costs one process start, not `slots` of them."""
        if len(self.environments) == 1:
            action(self.environments[0])
            return
        threads = [threading.Thread(target=action, args=(e,), daemon=True) for e in self.environments]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def start(self) -> None:
        self._each(Environment.start)

    def uses(self, changed: set[str]) -> bool:
        return any(e.uses(changed) for e in self.environments)

    def reload(self) -> None:
        self._each(Environment.reload)

    def pid(self) -> int | None:
        return self.environments[0].pid()

    def pids(self) -> list[int]:
        return [pid for e in self.environments if (pid := e.pid()) is not None]

    def retire(self) -> None:
        self._each(Environment.retire)

    def stop(self) -> None:
        self._each(Environment.stop)

    def kill(self) -> None:
        self._each(Environment.kill)
