"""End to end on a local stack run in this process, then the plain-boto3 baseline on the same endpoint.

The stack runs in-process (fanout.local.runtime.Runtime, as `make run` starts it) so that every
AWS call the handlers and pollers make passes the bench's botocore hooks, and every invocation is
timed in the environment that runs it. The 16 clients run in a child process (bench.load).
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.calls import CallCounter, muted

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789"
GENERATED = "fanout.data.generated.v1"
_COPY = re.compile(r"-\d+$")  # "persister-1" (a poller's environment) -> "persister"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


@dataclass
class Invocations:
    """Handler invocations and their durations, per function: the Lambda requests and GB-s of the run."""

    counting: bool = False
    durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)


def _load(mode: str, spec: dict[str, Any], timeout: float) -> list[list[Any]]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "bench.load", mode, f.name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    finally:
        Path(f.name).unlink()
    return json.loads(out.stdout)


def _wait(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.05)
    return done()


def run(events: int, clients: int, counter: CallCounter) -> dict[str, Any]:
    """Start the stack in-process, drive it, then the baseline; returns every figure of groups 1 and 2."""
    state = tempfile.mkdtemp(prefix="fanout-bench-")
    os.environ.update(
        FANOUT_PORT=str(free_port()),
        FANOUT_AWS_PORT=str(free_port()),
        FANOUT_JWT_SECRET=SECRET,
        FANOUT_STATE_DIR=state,
        FANOUT_GENERATOR="off",
        AWS_REGION="us-east-1",
    )
    for name in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[name]

    from fanout import topology
    from fanout.local import runtime as runtime_module
    from fanout.localenv import load

    invocations = Invocations()
    counter.install()
    # Each function runs in its own process: its calls are recorded there and counted here.
    from fanout.local import environments

    os.environ["FANOUT_WORKER_HOOK"] = "fanout.local.metering"
    environments.CALLS_SINK = counter.replay
    env = load()
    topo = topology.load(env.stack)
    rt = runtime_module.Runtime(env, topo)
    rt.start()
    env = rt.env  # with this run's credentials for the emulated endpoint
    restore = chain_invocations(invocations)
    try:
        ours = _ours(rt, env, topo, events, clients, counter, invocations)
        pollers = [p for r in rt.runners.values() for p in r.pollers]
        rt.stop_event.set()
        for t in pollers:
            t.join(5)
        baseline = _baseline(rt, env, topo, events, clients)
        seed_put_ms = _put_item_ms(env, topo)
    finally:
        restore()
        counter.uninstall()
        rt.stop()
    return {
        "ours": ours,
        "baseline": baseline,
        "ratio": ours["throughput"] / baseline["throughput"] if baseline["throughput"] else None,
        "seed_put_item_ms": seed_put_ms,
    }


def chain_invocations(invocations: Invocations) -> Callable[[], None]:
    """Time every invocation in the environment that ran it (fanout.local.environments.INVOCATION_SINK).

    Measured there, an invocation's time starts when its environment gets it, not while it waited for
    a free environment (Lambda does not bill that either). Chained after the runtime's own sink (the
    console's cost panel), so call it once the runtime has started. Returns the undo.
    """
    from fanout.local import environments

    runtime_sink = environments.INVOCATION_SINK

    def sink(function_name: str, ms: float) -> None:
        if runtime_sink is not None:
            runtime_sink(function_name, ms)
        if invocations.counting:
            with invocations.lock:
                invocations.durations[_COPY.sub("", function_name)].append(ms / 1000)

    environments.INVOCATION_SINK = sink

    def restore() -> None:
        environments.INVOCATION_SINK = runtime_sink

    return restore


def _tokens(users: list[str]) -> list[str]:
    from fanout import tokens

    return [tokens.mint(SECRET, u, ttl=3600) for u in users]


def _ours(
    rt: Any, env: Any, topo: Any, events: int, clients: int, counter: CallCounter, inv: Invocations
) -> dict[str, Any]:
    import requests

    table = topo.table_name
    stored: dict[str, float] = {}
    lock = threading.Lock()

    def on_write(op: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        if op != "dynamodb.BatchWriteItem":
            return
        now = time.time()
        left = {r["PutRequest"]["Item"]["id"]["S"] for r in (parsed.get("UnprocessedItems") or {}).get(table, [])}
        with lock:
            for r in params.get("RequestItems", {}).get(table, []):
                ident = r["PutRequest"]["Item"]["id"]["S"]
                if ident not in left:
                    stored.setdefault(ident, now)

    counter.after.append(on_write)
    # Warm the functions (imports, clients) with one request: the run measures warm containers,
    # and each client's token still meets the authorizer for the first time inside the run.
    warm = requests.post(
        f"{env.api_url}/data",
        json={"informationOne": "warm", "informationTwo": "up"},
        headers={"Authorization": f"Bearer {_tokens(['bench-warmup'])[0]}"},
        timeout=30,
    )
    warm_id = warm.json()["id"]
    _wait(lambda: warm_id in stored, 30)

    users = [f"bench-user-{i}" for i in range(clients)]
    counter.reset()
    counter.enabled = inv.counting = True
    started = time.time()
    results = _load("http", {"api_url": env.api_url, "tokens": _tokens(users), "events": events}, timeout=1800)
    accepted = {r[3]: r[1] for r in results if r[2] == 202}
    all_stored = _wait(lambda: accepted.keys() <= stored.keys(), timeout=120 + events / 10)
    finished = max((stored.get(i, time.time()) for i in accepted), default=time.time())
    counter.enabled = inv.counting = False
    counter.after.remove(on_write)

    # Readable through the API, as a user sees it (outside the counted window).
    readable = 0
    with muted():
        for token in _tokens(users):
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
                page = requests.get(
                    f"{env.api_url}/data", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30
                ).json()
                readable += sum(1 for i in page["items"] if i["id"] in accepted)
                cursor = page["nextCursor"]
                if not cursor:
                    break

    post_ms = [(r[1] - r[0]) * 1000 for r in results]
    to_readable = [(stored[i] - t) * 1000 for i, t in accepted.items() if i in stored]
    posts_window = max(r[1] for r in results) - min(r[0] for r in results)
    first = min(r[0] for r in results)
    statuses = Counter(str(r[2]) for r in results)
    return {
        "events": events,
        "clients": clients,
        "accepted": len(accepted),
        "statuses": dict(statuses),
        "all_stored": all_stored,
        "readable_via_api": readable,
        "posts_per_s": len(results) / posts_window,
        "post_ms_p50": pct(post_ms, 50),
        "post_ms_p99": pct(post_ms, 99),
        "to_readable_ms_p50": pct(to_readable, 50),
        "to_readable_ms_p99": pct(to_readable, 99),
        "all_readable_s": finished - first,
        "throughput": len(accepted) / (finished - first),
        "wall_s": time.time() - started,
        "invocations": {k: len(v) for k, v in inv.durations.items()},
        "invocation_ms": {k: sum(v) * 1000 for k, v in inv.durations.items()},
        "invocation_ms_each": {k: [d * 1000 for d in v] for k, v in inv.durations.items()},
        "sqs_messages_per_batch": (len(accepted) / len(inv.durations["persister"]))
        if inv.durations.get("persister")
        else None,
        # The archive writes one S3 object per batch: its PUTs per event are 1 / this.
        "archive_messages_per_batch": (len(accepted) / len(inv.durations["archive"]))
        if inv.durations.get("archive")
        else None,
    }


def _boto(env: Any, service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,
        endpoint_url=env.aws_endpoint,
        region_name=env.region,
        aws_access_key_id=env.access_key_id,
        aws_secret_access_key=env.secret_access_key,
        config=Config(max_pool_connections=20),
    )


def _baseline(rt: Any, env: Any, topo: Any, events: int, clients: int) -> dict[str, Any]:
    """Plain boto3 through the same topic, queue and table: Publish; receive 10; BatchWriteItem; delete."""
    queue_url = rt.consumers["persister"].queue_url
    topic_arn = env.topic_arn(topo.topic_name)
    with muted():
        sqs, ddb = _boto(env, "sqs"), _boto(env, "dynamodb")
    stored: dict[str, float] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def consume() -> None:
        with muted():
            while not stop.is_set():
                msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                    "Messages", []
                )
                if not msgs:
                    continue
                items = []
                for m in msgs:
                    e = json.loads(m["Body"])
                    items.append(
                        {
                            "PutRequest": {
                                "Item": {
                                    "pk": {"S": f"USER#{e['subject']}"},
                                    "sk": {"S": f"DATA#{e['id']}"},
                                    "id": {"S": e["id"]},
                                    "informationOne": {"S": e["data"]["informationOne"]},
                                    "informationTwo": {"S": e["data"]["informationTwo"]},
                                    "createdAt": {"S": e["time"]},
                                }
                            }
                        }
                    )
                pending = {topo.table_name: items}
                while pending:
                    pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                now = time.time()
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)],
                )
                with lock:
                    for m in msgs:
                        stored.setdefault(json.loads(m["Body"])["id"], now)

    # As many consumers as the persister has pollers.
    n_consumers = topo.consumer("persister").max_concurrency
    threads = [threading.Thread(target=consume, daemon=True) for _ in range(n_consumers)]
    for t in threads:
        t.start()
    spec = {
        "endpoint": env.aws_endpoint,
        "credentials": [env.access_key_id, env.secret_access_key],
        "region": env.region,
        "topic_arn": topic_arn,
        "type": GENERATED,
        "clients": clients,
        "events": events,
    }
    results = _load("sns", spec, timeout=1800)
    accepted = {r[3]: r[1] for r in results if r[2] == 202}
    all_stored = _wait(lambda: accepted.keys() <= stored.keys(), timeout=120 + events / 10)
    stop.set()
    for t in threads:
        t.join(5)
    first = min(r[0] for r in results)
    finished = max((stored.get(i, time.time()) for i in accepted), default=time.time())
    publish_ms = [(r[1] - r[0]) * 1000 for r in results]
    to_stored = [(stored[i] - t) * 1000 for i, t in accepted.items() if i in stored]
    return {
        "events": events,
        "accepted": len(accepted),
        "all_stored": all_stored,
        "publishes_per_s": len(results) / (max(r[1] for r in results) - first),
        "publish_ms_p50": pct(publish_ms, 50),
        "publish_ms_p99": pct(publish_ms, 99),
        "to_stored_ms_p50": pct(to_stored, 50),
        "to_stored_ms_p99": pct(to_stored, 99),
        "all_stored_s": finished - first,
        "throughput": len(accepted) / (finished - first),
        "consumers": n_consumers,
    }


def _put_item_ms(env: Any, topo: Any, samples: int = 50) -> float:
    """Median latency of one PutItem on this endpoint: the seed's per-message function does little else."""
    with muted():
        ddb = _boto(env, "dynamodb")
        times = []
        for i in range(samples):
            t0 = time.perf_counter()
            ddb.put_item(
                TableName=topo.table_name,
                Item={
                    "pk": {"S": "USER#seed-probe"},
                    "sk": {"S": f"DATA#{i:026d}"},
                    "id": {"S": f"{i:026d}"},
                    "informationOne": {"S": "reading"},
                    "informationTwo": {"S": "1.0 kWh"},
                    "createdAt": {"S": "2025-01-01T00:00:00.000Z"},
                },
            )
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)
