"""python -m bench [--events N] [--clients N] [--soak-events N] [--json PATH] [--only e2e,coldstart,artifacts,soak]"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench import artifacts, coldstart, e2e, report, soak
from bench.calls import CallCounter
from fanout import cost as prices

GROUPS = ("e2e", "coldstart", "artifacts", "soak")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, default=2000, help="events to post (default 2000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--coldstart-runs", type=int, default=15, help="fresh processes per module (default 15)")
    parser.add_argument("--soak-events", type=int, default=3000, help="events in the soak (default 3000)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated subset of {','.join(GROUPS)}")
    args = parser.parse_args(argv)
    only = {g.strip() for g in args.only.split(",") if g.strip()}
    if unknown := only - set(GROUPS):
        parser.error(f"unknown group(s): {', '.join(sorted(unknown))}")
    if args.events < 1 or args.clients < 1 or args.soak_events < 1:
        parser.error("--events, --clients and --soak-events must be positive")
    # The handlers log every record at INFO otherwise; the bench measures, it does not read logs.
    os.environ.setdefault("FANOUT_LOG_LEVEL", "WARNING")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    result: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": list(os.getloadavg()),
        },
        "prices": {"as_of": prices.AS_OF, "region": prices.REGION, "sources": prices.SOURCES},
    }
    if "e2e" in only:
        from fanout import topology

        counter = CallCounter()
        print(f"bench: end to end, {args.events} events from {args.clients} clients ...", file=sys.stderr, flush=True)
        # The stack shares this process; whatever it prints (metrics, logs) goes to stderr, not into the table.
        with contextlib.redirect_stdout(sys.stderr):
            run = e2e.run(args.events, args.clients, counter)
        result["e2e"] = {k: v for k, v in run.items() if k != "seed_put_item_ms"}
        result["e2e"]["ours"] = {k: v for k, v in run["ours"].items() if k != "invocation_ms_each"}
        result["cost"] = _cost(counter, run, topology)
    if "coldstart" in only:
        print(f"bench: cold start, {args.coldstart_runs} processes per module ...", file=sys.stderr, flush=True)
        result["coldstart"] = coldstart.measure(args.coldstart_runs)
    if "artifacts" in only:
        print("bench: artifacts (infra.package) ...", file=sys.stderr, flush=True)
        result["artifacts"] = artifacts.measure()
    if "soak" in only:
        print(f"bench: soak, {args.soak_events} events at a steady rate ...", file=sys.stderr, flush=True)
        with contextlib.redirect_stdout(sys.stderr):
            result["soak"] = soak.measure(args.soak_events)
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    print(report.render(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        print(f"\nfigures written to {args.json}")
    return 0


def _cost(counter: CallCounter, run: dict[str, Any], topology: Any) -> dict[str, Any]:
    from bench import cost

    topo = topology.load(os.environ.get("FANOUT_STACK", "dev"))
    return cost.model(counter, run["ours"], topo, run["seed_put_item_ms"])


if __name__ == "__main__":
    sys.exit(main())
