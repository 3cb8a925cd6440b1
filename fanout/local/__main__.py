"""`make run`: the whole of fanout in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from fanout import topology
from fanout.local.emulator import EmulatorError
from fanout.local.runtime import Runtime
from fanout.localenv import LocalConfigError, load


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
    except EmulatorError as exc:
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

WARNING: tokens are signed with the local HS256 secret (FANOUT_JWT_SECRET); it is for local use only.

Try it:
  TOKEN=$(.venv/bin/fanout token --sub alice)
  curl -s -X POST {env.api_url}/data -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"informationOne": "hello", "informationTwo": "world"}}'
  curl -s {env.api_url}/data -H "Authorization: Bearer $TOKEN"

Press Ctrl+C to stop.""",
        flush=True,
    )
    stop.wait()
    print("fanout: stopping", flush=True)
    runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
