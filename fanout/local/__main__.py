"""`make run`: the whole of fanout in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable

from fanout import topology
from fanout.local.emulator import EmulatorError
from fanout.local.environments import process_groups
from fanout.local.runtime import Runtime
from fanout.local.state import StateError
from fanout.localenv import LocalConfigError, LocalEnv, cli_command, load
from fanout.signals import StopRequested, StopSignals, watchdog

# The contract allows 5 s from the signal to the last child gone; past this the stop is forced.
STOP_SECONDS = 4.5


def _restored(counts: dict[str, int]) -> str:
    if not any(counts.values()):
        return "nothing restored"
    text = "restored {items} items, {objects} archive objects, {consumers} subscribed consumers".format(**counts)
    return text + (f", {counts['messages']} queued messages" if counts.get("messages") else "")


def _generator(runtime: Runtime, topo: topology.Topology) -> str:
    if runtime.schedule is None:
        return "off"
    gen = topo.generator
    return f"{gen.count_per_run} events {runtime.schedule} for {', '.join(gen.users)} (FANOUT_GENERATOR=off stops it)"


def main() -> int:
    try:
        from fanout.local import logfmt

        logfmt.configure(logging.WARNING)  # one readable line per record (FANOUT_LOG_FORMAT=json: JSON)
    except ValueError as exc:
        print(f"fanout: {exc}", file=sys.stderr)
        return 2
    try:
        env = load()
        topo = topology.load(env.stack)
    except (LocalConfigError, topology.TopologyError) as exc:
        print(f"fanout: {exc}", file=sys.stderr)
        return 2
    if topo.fifo:
        # Refused before anything starts: moto alone does not keep a group's order after a failure nor the
        # five-minute deduplication window, and a half-emulated FIFO stack would teach the wrong lessons.
        print(
            f"fanout: Pulumi.{env.stack}.yaml sets fanout:ordering fifo, which `make run` does not emulate yet; "
            "run a stack with ordering standard locally (FANOUT_STACK=dev), and plan the fifo one with "
            f"`make plan STACK={env.stack}`",
            file=sys.stderr,
        )
        return 2
    runtime = Runtime(env, topo)
    # No lock is taken in the signal handler (see fanout/signals.py); a second signal forces the exit.
    with StopSignals(force=lambda code: _force_exit(runtime, code)) as signals:
        return _run(runtime, env, topo, signals)


def _force_exit(runtime: Runtime, code: int) -> None:
    """Exit now, from a signal handler or the watchdog: only lock-free calls (os.kill, os._exit)."""
    emulator = runtime.emulator.proc if runtime.emulator is not None else None
    if emulator is not None:
        with contextlib.suppress(OSError):
            os.kill(emulator.pid, signal.SIGKILL)
    for group in process_groups():  # each function process with whatever its handler started
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    # The state lock file stays behind; the next `make run` sees its pid is gone and takes it over.
    os._exit(code)


def serve(signals: StopSignals, healthy: Callable[[], bool], interval: float = 1.0) -> bool:
    """The main loop: True once a stop signal arrived, False as soon as `healthy()` says the stack died."""
    while not signals.wait(interval):
        if not healthy():
            return False
    return True


def _stop(runtime: Runtime, signals: StopSignals) -> int:
    print("fanout: stopping", flush=True)
    watchdog(STOP_SECONDS, signals.force)
    runtime.stop()
    return 0


def _run(runtime: Runtime, env: LocalEnv, topo: topology.Topology, signals: StopSignals) -> int:
    try:
        # A signal during a slow start cuts it short instead of waiting for the banner.
        with signals.interruptible():
            runtime.start()
    except StopRequested:
        return _stop(runtime, signals)
    except (EmulatorError, StateError) as exc:
        print(f"fanout: {exc}", file=sys.stderr)
        runtime.stop()
        return 1
    except Exception as exc:
        print(f"fanout: could not start: {exc}", file=sys.stderr)
        runtime.stop()
        return 1
    cli = cli_command(env)  # every command below, pasted as printed, reaches this stack
    print(
        f"""
fanout is running (stack {env.stack}, region {env.region})
  API and web app   {env.api_url}
  console           {env.api_url}/console (tail and trace: {cli} tail, {cli} trace ID)
  emulated AWS      {env.aws_endpoint}
  consumers         {", ".join(runtime.consumers)}
  generator         {_generator(runtime, topo)}
  archive           s3://{topo.archive_bucket_name}/events/ (replay: {cli} replay --since ISO --until ISO)
  state             {env.state_dir} ({_restored(runtime.restored)}; `{cli} reset` starts over once stopped)

WARNING: tokens are signed with the local HS256 secret (FANOUT_JWT_SECRET); it is for local use only.

Try it:
  TOKEN=$({cli} token --sub alice)
  curl -s -X POST {env.api_url}/data -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"informationOne": "hello", "informationTwo": "world"}}'
  curl -s {env.api_url}/data -H "Authorization: Bearer $TOKEN"

Press Ctrl+C to stop.""",
        flush=True,
    )
    if not serve(signals, runtime.healthy):
        print("fanout: the emulated AWS endpoint stopped unexpectedly; shutting down", file=sys.stderr, flush=True)
        runtime.stop()
        return 1
    return _stop(runtime, signals)


if __name__ == "__main__":
    code = main()
    # Everything is stopped, saved and unlocked. Tearing the interpreter down (the handlers'
    # environment copies, boto3 clients, caches) took 4 to 7 s under load, past the contract's 5 s.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
