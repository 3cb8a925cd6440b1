"""Benchmark against a running local stack: generator publish rate, archive objects per 1,000 events.

    make run                                   # in one terminal (FANOUT_GENERATOR=off keeps it quiet)
    .venv/bin/python -m bench.generator --count 1000

Prints figures; asserts nothing (a figure lives in a benchmark, never in a timed test).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from fanout import localenv, topology


def _archived(s3: Any, bucket: str, skip: set[str]) -> tuple[set[str], set[str]]:
    """(object keys not in skip, ids of the events they hold)."""
    from handlers.core import archive

    keys = {
        o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in p.get("Contents", [])
    } - skip
    ids = {e["id"] for k in keys for e in archive.from_ndjson(s3.get_object(Bucket=bucket, Key=k)["Body"].read())}
    return keys, ids


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.generator", description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for the archive to catch up")
    args = p.parse_args(argv)
    env = localenv.load()
    topo = topology.load(env.stack)
    from fanout.local.runtime import function_environ

    os.environ.update(function_environ(env, topo, "generator"))  # the generator's code runs here
    from handlers import generator
    from handlers.core import clients

    s3, bucket = clients.client("s3"), topo.archive_bucket_name
    before = {
        o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in p.get("Contents", [])
    }
    started = time.perf_counter()
    ids = set(generator.generate(args.count, ["bench-user"]))
    elapsed = time.perf_counter() - started
    out = sys.stdout.write
    out(f"generator: published {len(ids)} events in {elapsed:.1f} s = {len(ids) / elapsed:.0f} events/s\n")
    deadline = time.monotonic() + args.timeout
    while True:
        keys, archived = _archived(s3, bucket, before)
        if ids <= archived or time.monotonic() > deadline:
            break
        time.sleep(1)
    caught = len(ids & archived)
    out(
        f"archive: {caught} of {len(ids)} events in {len(keys)} new objects after {time.perf_counter() - started:.1f} s"
    )
    out(f" = {len(keys) * 1000 / max(caught, 1):.0f} objects per 1,000 events\n")
    return 0 if caught == len(ids) else 1


if __name__ == "__main__":
    sys.exit(main())
