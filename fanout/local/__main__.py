"""`make run`: the whole of fanout in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from fanout import topology
from fanout.local.emulator import EmulatorError
from fanout.local.runtime import Runtime
from fanout.local.state import StateError
from fanout.localenv import LocalConfigError, load


def _restored(counts: dict[str, int]) -> str:
    if not any(counts.values()):
        return "nothing restored"
    return "restored {items} items, {objects} archive objects, {consumers} subscribed consumers".format(**counts)


def _generator(runtime: Runtime, topo: topology.Topology) -> str:
    if runtime.schedule is None:
        return "off"
    gen = topo.generator
    return f"{gen.count_per_run} events {runtime.schedule} for {', '.join(gen.users)} (FANOUT_GENERATOR=off stops it)"


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        env = load()
        topo = topology.load(env.stack)
    except (LocalConfigError, topology.TopologyError) as exc:
        print(f"fanout: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runtime = Runtime(env, topo)
    try:
        runtime.start()
    except (EmulatorError, StateError) as exc:
        print(f"fanout: {exc}", file=sys.stderr)
        runtime.stop()
        return 1
    except Exception as exc:
        print(f"fanout: could not start: {exc}", file=sys.stderr)
        runtime.stop()
        return 1
    print(
        f"""
fanout is running (stack {env.stack}, region {env.region})
  API and web app   {env.api_url}
  emulated AWS      {env.aws_endpoint}
  consumers         {", ".join(runtime.consumers)}
  generator         {_generator(runtime, topo)}
  archive           s3://{topo.archive_bucket_name}/events/ (replay: .venv/bin/fanout replay --since ISO --until ISO)
  state             {env.state_dir} ({_restored(runtime.restored)}; `fanout reset` starts over)

WARNING: tokens are signed with the local HS256 secret (FANOUT_JWT_SECRET); it is for local use only.

Try it:
  TOKEN=$(.venv/bin/fanout token --sub alice)
  curl -s -X POST {env.api_url}/data -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"informationOne": "hello", "informationTwo": "world"}}'
  curl -s {env.api_url}/data -H "Authorization: Bearer $TOKEN"

Press Ctrl+C to stop.""",
        flush=True,
    )
    while not stop.wait(1):
        if not runtime.healthy():
            print("fanout: the emulated AWS endpoint stopped unexpectedly; shutting down", file=sys.stderr, flush=True)
            runtime.stop()
            return 1
    print("fanout: stopping", flush=True)
    runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
