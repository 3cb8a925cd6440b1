"""Figures for seeing events: the trace ledger's memory, and (against a running stack) tail and console latency.

    .venv/bin/python -m bench.seeing ledger [--events 10000]      # offline: memory after N events
    make run                                                       # in one terminal, then:
    .venv/bin/python -m bench.seeing latency [--events 20]         # POST -> tail line, POST -> /_local/events
    .venv/bin/python -m bench.seeing console [--events 10]         # POST -> row visible in headless Chromium

The console polls /_local/events every half second, so what a user waits from POST to seeing the event in the
console is this endpoint's latency plus up to one poll interval; both parts are printed. Prints figures,
asserts nothing (a figure lives in a benchmark, never in a timed test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from pathlib import Path
from typing import Any

from fanout.local.ledger import Ledger

CONSUMERS = ("persister", "archive", "audit")
CONSOLE_POLL_SECONDS = 0.5  # fanout/local/console/console.js polls /_local/events this often (STREAM_MS)


def ledger_memory(events: int) -> dict[str, Any]:
    """Memory the ledger holds after `events` published events, each processed by three consumers."""
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    ledger = Ledger(capacity=events)
    for n in range(events):
        event = {
            "id": f"01K{n:023d}",
            "type": "fanout.data.generated.v1",
            "subject": f"user-{n % 50}",
            "time": "2026-12-01T20:00:00.000Z",
        }
        ledger.published(event, {c: c != "audit" for c in CONSUMERS})
        for c in CONSUMERS[:2]:
            ledger.attempt(
                c, event["id"], message_id=f"{n:08d}-0000-4000-8000-{c:0>12}"[:36], receive_count=1, max_receive=3,
                ok=True, error=None,
            )  # fmt: skip
        ledger.announced(event, {})
    after = tracemalloc.take_snapshot()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    tracemalloc.stop()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        started = time.perf_counter()
        ledger.save(path)
        save_s = time.perf_counter() - started
        size = path.stat().st_size
        started = time.perf_counter()
        Ledger.load(path, capacity=events)
        load_s = time.perf_counter() - started
    return {
        "events": events,
        "consumers_per_event": len(CONSUMERS),
        "bytes_in_memory": held,
        "bytes_per_event": held / events,
        "file_bytes": size,
        "save_seconds": save_s,
        "load_seconds": load_s,
    }


def _post(api: str, token: str, n: int) -> tuple[str, float]:
    body = json.dumps({"informationOne": f"latency {n}", "informationTwo": "x"}).encode()
    request = urllib.request.Request(
        f"{api}/data",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["id"], started


def latency(events: int) -> dict[str, Any]:
    from fanout import localenv, tokens

    env = localenv.for_cli()
    api = env.api_url
    sub = f"latency-{os.getpid()}"
    token = tokens.mint(env.jwt_secret, sub, list(tokens.ROLES), 600)
    cli = Path(sys.executable).with_name("fanout")
    tail = subprocess.Popen(
        [str(cli), "tail", "--subject", sub, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen: dict[str, float] = {}
    ready = threading.Event()

    def read_out() -> None:
        assert tail.stdout is not None
        for line in tail.stdout:
            seen.setdefault(json.loads(line)["id"], time.perf_counter())

    def read_err() -> None:
        assert tail.stderr is not None
        for line in tail.stderr:
            if "tailing" in line:
                ready.set()

    threads = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for t in threads:
        t.start()
    try:
        if not ready.wait(20):
            raise SystemExit("fanout tail did not start within 20 s; is `make run` running?")
        tail_ms, console_ms = [], []
        for n in range(events):
            event_id, started = _post(api, token, n)
            deadline = time.perf_counter() + 10
            in_events = None
            while time.perf_counter() < deadline and (in_events is None or event_id not in seen):
                if in_events is None:
                    with urllib.request.urlopen(f"{api}/_local/events?limit=20&subject={sub}", timeout=5) as r:
                        if any(e["id"] == event_id for e in json.loads(r.read())["events"]):
                            in_events = time.perf_counter()
                time.sleep(0.005)
            if event_id in seen:
                tail_ms.append((seen[event_id] - started) * 1000)
            if in_events is not None:
                console_ms.append((in_events - started) * 1000)
            time.sleep(0.2)
    finally:
        tail.terminate()
        tail.wait(10)

    def summary(ms: list[float]) -> dict[str, float]:
        ordered = sorted(ms)
        return {
            "n": len(ms),
            "median_ms": statistics.median(ms) if ms else float("nan"),
            "p90_ms": ordered[int(0.9 * (len(ordered) - 1))] if ms else float("nan"),
            "max_ms": max(ms) if ms else float("nan"),
        }

    console = summary(console_ms)
    return {
        "tail": summary(tail_ms),
        "events_endpoint": console,
        "console_worst_case_ms": console["max_ms"] + CONSOLE_POLL_SECONDS * 1000,
    }


def console(events: int) -> dict[str, Any]:
    """POST -> the event's row visible on /console, in Debian's headless Chromium."""
    from playwright.sync_api import sync_playwright

    from fanout import localenv, tokens

    env = localenv.for_cli()
    token = tokens.mint(env.jwt_secret, f"console-{os.getpid()}", list(tokens.ROLES), 600)
    ms: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{env.api_url}/console")
        page.wait_for_selector(".lane")
        for n in range(events):
            event_id, started = _post(env.api_url, token, n)
            page.wait_for_selector(f'tr[data-event="{event_id}"]', timeout=10_000)
            ms.append((time.perf_counter() - started) * 1000)
            time.sleep(0.3)
        browser.close()
    ordered = sorted(ms)
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p90_ms": ordered[int(0.9 * (len(ms) - 1))],
        "max_ms": max(ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.seeing", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    lp = sub.add_parser("ledger", help="the trace ledger's memory after N events (offline)")
    lp.add_argument("--events", type=int, default=10_000)
    tp = sub.add_parser("latency", help="POST -> tail line and POST -> console stream, against make run")
    tp.add_argument("--events", type=int, default=20)
    cp = sub.add_parser("console", help="POST -> row visible on the console page (headless Chromium), against make run")
    cp.add_argument("--events", type=int, default=10)
    args = parser.parse_args(argv)
    if args.what == "ledger":
        r = ledger_memory(args.events)
        print(
            f"trace ledger after {r['events']} events x {r['consumers_per_event']} consumers: "
            f"{r['bytes_in_memory'] / 1e6:.1f} MB in memory ({r['bytes_per_event']:.0f} B/event), "
            f"{r['file_bytes'] / 1e6:.1f} MB on disk, saved in {r['save_seconds'] * 1000:.0f} ms, "
            f"loaded in {r['load_seconds'] * 1000:.0f} ms"
        )
    elif args.what == "console":
        r = console(args.events)
        print(
            f"console: POST -> row visible in Chromium: median {r['median_ms']:.0f} ms, p90 {r['p90_ms']:.0f} ms, "
            f"max {r['max_ms']:.0f} ms (n={r['n']})"
        )
    else:
        r = latency(args.events)
        t, c = r["tail"], r["events_endpoint"]
        print(
            f"tail: POST -> line printed: median {t['median_ms']:.0f} ms, p90 {t['p90_ms']:.0f} ms, "
            f"max {t['max_ms']:.0f} ms (n={t['n']})"
        )
        print(
            f"console: POST -> in /_local/events: median {c['median_ms']:.0f} ms, p90 {c['p90_ms']:.0f} ms, "
            f"max {c['max_ms']:.0f} ms (n={c['n']}); on the page add up to {CONSOLE_POLL_SECONDS:g} s of "
            f"polling: worst {r['console_worst_case_ms']:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
