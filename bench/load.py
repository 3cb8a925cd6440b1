"""The load generator, run as its own process so that 16 clients do not share the stack's GIL.

    python -m bench.load http  <spec.json>   # POST /data through the API, one token per client
    python -m bench.load sns   <spec.json>   # the baseline: plain boto3 Publish to the topic

Prints one JSON document: per request [start, end, status, id], wall-clock seconds (time.time(),
comparable with the parent's clock).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _run(clients: int, events: int, send: Callable[[int, int], tuple[int, str | None]]) -> list[list[Any]]:
    results: list[list[Any]] = []
    lock = threading.Lock()
    counter = iter(range(events))

    def worker(client: int) -> None:
        local: list[list[Any]] = []
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            t0 = time.time()
            try:
                status, ident = send(client, n)
            except Exception as exc:  # a client error is a data point, not a crash of the bench
                status, ident = 599, f"{type(exc).__name__}"
            local.append([t0, time.time(), status, ident])
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def http(spec: dict[str, Any]) -> list[list[Any]]:
    import requests

    sessions = [requests.Session() for _ in spec["tokens"]]
    url = f"{spec['api_url']}/data"

    def send(client: int, n: int) -> tuple[int, str | None]:
        body = {"informationOne": f"reading {n} from client {client}", "informationTwo": f"{n * 1.5:.1f} kWh"}
        r = sessions[client].post(
            url, json=body, headers={"Authorization": f"Bearer {spec['tokens'][client]}"}, timeout=30
        )
        return r.status_code, (r.json().get("id") if r.status_code == 202 else r.text[:200])

    return _run(len(spec["tokens"]), spec["events"], send)


def sns(spec: dict[str, Any]) -> list[list[Any]]:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "sns",
        endpoint_url=spec["endpoint"],
        region_name=spec["region"],
        aws_access_key_id=spec["credentials"][0],
        aws_secret_access_key=spec["credentials"][1],
        config=Config(max_pool_connections=spec["clients"] + 4),
    )

    def send(c: int, n: int) -> tuple[int, str | None]:
        # The same shape and size as the API's CloudEvent, so both runs move the same bytes.
        ident = uuid.uuid4().hex.upper()[:26]
        user = f"baseline-{c}"
        event = {
            "specversion": "1.0",
            "id": ident,
            "source": "bench.baseline",
            "type": spec["type"],
            "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "subject": user,
            "datacontenttype": "application/json",
            "dataschema": "https://schemas.fanout.dev/fanout.data.generated.v1.json",
            "data": {"informationOne": f"reading {n} from client {c}", "informationTwo": f"{n * 1.5:.1f} kWh"},
            "correlationid": str(uuid.uuid4()),
        }
        client.publish(
            TopicArn=spec["topic_arn"],
            Message=json.dumps(event, separators=(",", ":")),
            MessageAttributes={
                "type": {"DataType": "String", "StringValue": spec["type"]},
                "subject": {"DataType": "String", "StringValue": user},
            },
        )
        return 202, ident

    return _run(spec["clients"], spec["events"], send)


def main(argv: list[str]) -> int:
    mode, path = argv[0], argv[1]
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    results = {"http": http, "sns": sns}[mode](spec)
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
