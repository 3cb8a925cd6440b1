"""One function's execution environment process: `python -m fanout.local.worker SPEC SLOTS FD [PATH...]`.

Started by fanout.local.environments.FunctionProcess with exactly the environment variables the
function has on AWS (plus the local endpoint and credentials), so `os.environ` here is the
function's own, as in a Lambda execution environment. It imports the handler (the init phase),
makes SLOTS copies of its module (one per concurrent invocation, as Lambda runs one invocation per
environment at a time), then serves invocations: JSON lines on stdin, answers as JSON lines on the
file descriptor FD. The handler's own output (stdout, stderr) goes where the parent sends it.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any


def _describe_import_error(exc: BaseException, roots: list[str]) -> str:
    """'handlers/audit.py line 7: SyntaxError: ...': the user's file and line, not importlib's frames."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{_short(exc.filename, roots)} line {exc.lineno}"
    else:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")]
        mine = [f for f in frames if any(f.filename.startswith(r) for r in roots)] or frames
        if mine:
            where = f"{_short(mine[-1].filename, roots)} line {mine[-1].lineno}"
    text = f"{type(exc).__name__}: {exc}"
    return f"{where}: {text}" if where else text


def _short(path: str, roots: list[str]) -> str:
    for root in roots:
        if path.startswith(root + os.sep):
            return path[len(root) + 1 :]
    return path


# What the Python runtime itself needs beyond the function's memory size, as RLIMIT_DATA counts it: each
# thread's stack is reserved (8 MB) whether used or not. Measured: a worker with boto3 and Powertools
# loaded and four threads counts 95 MB; its resident size is 79 MB, which Lambda counts too.
RUNTIME_HEADROOM_MB = 64


def limit_memory(memory_mb: int) -> None:
    """Apply the function's memory size: an allocation past it fails (MemoryError), as Lambda stops such a function.

    RLIMIT_DATA, not RLIMIT_AS: every thread's malloc arena reserves 64 MB of address space it never
    touches (four threads: +295 MB of address space, +33 MB of data), so an address-space limit would fail
    ordinary handlers that start a few threads.
    """
    limit = (memory_mb + RUNTIME_HEADROOM_MB) * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def _end_with_parent(parent: int) -> None:
    """If the runtime dies without stopping this process (SIGKILL, a forced exit), end it and all it started."""
    while True:
        time.sleep(0.2)  # a getppid() five times a second: nothing, next to the 5 s a stop may take
        if os.getppid() != parent:
            os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> int:
    spec, slots, fd, *paths = argv
    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    if memory.isdigit():
        limit_memory(int(memory))
    if os.getpid() == os.getpgid(0):  # the leader of its own group (as the runtime starts it)
        threading.Thread(target=_end_with_parent, args=(os.getppid(),), name="parent", daemon=True).start()
    out = os.fdopen(int(fd), "w", buffering=1, encoding="utf-8")
    write_lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        line = json.dumps(message, default=str, separators=(",", ":"))
        with write_lock:
            out.write(line + "\n")
            out.flush()

    for path in reversed(paths):
        sys.path.insert(0, path)
    # `make bench` observes the AWS calls the functions make: a module with install() and drain() -> list,
    # named by FANOUT_WORKER_HOOK, whose records ride back on each answer. Removed from the environment
    # first, so the function's own environment stays exactly what it is on AWS.
    hook_spec = os.environ.pop("FANOUT_WORKER_HOOK", "")
    hook = None
    if hook_spec:
        import importlib

        hook = importlib.import_module(hook_spec)
        hook.install()
    roots = [os.path.realpath(p) for p in [*paths, str(Path.cwd())]]
    from fanout.local import ledger
    from fanout.local.environments import compile_fresh_under, new_environment

    # What live reload watches is compiled from its source, never from a stale __pycache__.
    compile_fresh_under([str(Path.cwd() / "handlers"), *paths])
    from fanout.local.lambda_context import LocalContext

    try:
        copies: queue.LifoQueue[Any] = queue.LifoQueue()
        for _ in range(int(slots)):
            copies.put(new_environment(spec))
        ledger.install_failure_capture()
    except BaseException as exc:  # an init error is the handler's, reported once by the parent
        send({"ready": False, "error": _describe_import_error(exc, roots), "trace": traceback.format_exc()})
        return 1
    loaded = [0]

    def files() -> list[str] | None:
        """The source files of the project's modules loaded here (what a saved change must reload); None if same."""
        if len(sys.modules) == loaded[0]:
            return None
        loaded[0] = len(sys.modules)
        found = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
        return sorted(f for f in found if f and any(os.path.realpath(f).startswith(r + os.sep) for r in roots))

    send({"ready": True, "pid": os.getpid(), "files": files()})

    def invoke(request: dict[str, Any]) -> None:
        handler = copies.get()
        ctx = request["context"]
        context = LocalContext(
            function_name=ctx["function_name"],
            region=ctx["region"],
            timeout_seconds=ctx["timeout_seconds"],
            aws_request_id=ctx["aws_request_id"],
        )
        try:
            with ledger.collecting_failures() as errors:
                try:
                    result = handler(request["event"], context)
                    answer: dict[str, Any] = {"id": request["id"], "ok": True, "result": result}
                except Exception as exc:
                    answer = {
                        "id": request["id"],
                        "ok": False,
                        "type": type(exc).__name__,
                        "error": str(exc),
                        "trace": traceback.format_exc(),
                    }
            answer["failures"] = errors
            answer["files"] = files()  # modules imported on first use count too
            if hook is not None:
                answer["calls"] = hook.drain()
            send(answer)
        finally:
            copies.put(handler)

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        # A thread per invocation: at most SLOTS run at once (the parent never sends more), each on its copy.
        threading.Thread(target=invoke, args=(request,), daemon=True).start()
    return 0


def _end_group() -> None:
    """The environment ends: so does whatever its handler started (it would outlive it, reparented to pid 1)."""
    if os.getpid() == os.getpgid(0):
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.killpg(0, signal.SIGTERM)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    _end_group()
    sys.exit(code)
