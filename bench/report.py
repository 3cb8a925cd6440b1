"""The bench's figures as a plain-text table."""

from __future__ import annotations

from typing import Any


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [_row(header, widths), _row(["-" * w for w in widths], widths)]
    return lines + [_row(r, widths) for r in rows]


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    out = [
        f"fanout bench  {r['started']}  cores {m['cores']}  python {m['python']}  "
        f"load avg at start {m['load_average_at_start'][0]:.2f}, at end {m['load_average_at_end'][0]:.2f}",
    ]
    if "e2e" in r:
        out += ["", *_e2e(r["e2e"])]
    if "cost" in r:
        out += ["", *_cost(r["cost"])]
    if "coldstart" in r:
        out += ["", *_coldstart(r["coldstart"])]
    if "artifacts" in r:
        out += ["", *_artifacts(r["artifacts"])]
    return "\n".join(out)


def _e2e(e: dict[str, Any]) -> list[str]:
    o, b = e["ours"], e["baseline"]
    rows = [
        ["accepted / stored", f"{o['accepted']}/{o['events']}", f"{b['accepted']}/{b['events']}"],
        ["readable through GET /data", str(o["readable_via_api"]), "-"],
        ["requests/s (POST | Publish)", _f(o["posts_per_s"]), _f(b["publishes_per_s"])],
        [
            "request latency p50 / p99 ms",
            f"{_f(o['post_ms_p50'])} / {_f(o['post_ms_p99'])}",
            f"{_f(b['publish_ms_p50'])} / {_f(b['publish_ms_p99'])}",
        ],
        [
            "202 -> readable p50 / p99 ms",
            f"{_f(o['to_readable_ms_p50'])} / {_f(o['to_readable_ms_p99'])}",
            f"{_f(b['to_stored_ms_p50'])} / {_f(b['to_stored_ms_p99'])}",
        ],
        ["time until all readable s", _f(o["all_readable_s"], 2), _f(b["all_stored_s"], 2)],
        ["throughput events/s", _f(o["throughput"]), _f(b["throughput"])],
    ]
    ratio = e.get("ratio")
    lines = [f"1. End to end, local ({o['events']} events, {o['clients']} clients; in-process stack on moto)"]
    lines += _table(["", "fanout", "baseline (plain boto3)"], rows)
    lines.append(
        f"   throughput ratio fanout/baseline {_f(ratio, 2)}  (target >= 0.5: {_met(bool(ratio and ratio >= 0.5))})"
    )
    if o.get("statuses") and set(o["statuses"]) != {"202"}:
        lines.append(f"   POST statuses: {o['statuses']}")
    lines.append(
        f"   handler invocations: {', '.join(f'{k} {v}' for k, v in sorted(o['invocations'].items()))};"
        f" {_f(o['sqs_messages_per_batch'])} messages per persister batch"
    )
    return lines


def _cost(c: dict[str, Any]) -> list[str]:
    lines = [f"2. AWS calls per 1,000 events (botocore hooks on every client of the run; {c['events']} events)"]
    rows = [[k, _f(v)] for k, v in c["calls_per_1000_events"].items()]
    lines += _table(["service operation", "per 1,000"], rows)
    lines.append(f"   HTTP attempts (retries included) per 1,000 events: {_f(c['http_attempts_per_1000_events'])}")
    lines.append("")
    lines.append(f"   $ per million events, list prices {c['prices_as_of']} {c['region']} (fanout/cost.py)")
    rows = [[k, f"{v:.3f}"] for k, v in c["dollars_per_million_events"].items()]
    rows.append(["total", f"{c['dollars_per_million_events_total']:.3f}"])
    lines += _table(["line", "$ / M events"], rows)
    p = c["persistence"]
    lines.append("")
    lines.append("   persistence path (topic/queue -> function -> table), $ per million events")
    ours, seed = list(p["ours"].items()), list(p["seed"].items())
    rows = []
    for i in range(max(len(ours), len(seed))):
        a = ours[i] if i < len(ours) else ("", None)
        s = seed[i] if i < len(seed) else ("", None)
        rows.append([a[0], "" if a[1] is None else f"{a[1]:.3f}", s[0], "" if s[1] is None else f"{s[1]:.3f}"])
    rows.append(["total", f"{p['ours_total']:.3f}", "total", f"{p['seed_total']:.3f}"])
    rows.append(["billed requests / 1,000", _f(p["calls_per_1000_ours"]), "", _f(p["calls_per_1000_seed"])])
    lines += _table(["fanout", "$", "seed (as specified)", "$"], rows)
    ratio = p["seed_over_ours"]
    lines.append(
        f"   seed/fanout cost {_f(ratio, 2)}x  (target >= 3x: {_met(bool(ratio and ratio >= 3))}); "
        f"{_f(p['wru_per_event'], 2)} WRU per event in both; "
        f"seed Lambda billed {_f(p['seed_put_item_ms'])} ms at 128 MB"
    )
    return lines


def _coldstart(c: dict[str, Any]) -> list[str]:
    sdk = "X-Ray SDK on (fanout:tracingSdk)" if c["tracing"] else "X-Ray SDK off, as deployed by default"
    lines = [f"3. Cold start proxy: median of {c['runs']} fresh processes, import + clients ({sdk})"]
    rows = []
    for module, h in c["handlers"].items():
        rows.append(
            [module, _f(h["ms"]), h["floor"], _f(h["floor_ms"]), _f(h["ratio"], 2), h["target"], _met(h["met"])]
        )
    lines += _table(["module", "ms", "floor", "floor ms", "ratio", "target", ""], rows)
    return lines


def _artifacts(a: dict[str, Any]) -> list[str]:
    lines = ["4. Artifacts (infra.package into build/lambda)"]
    if not a.get("built"):
        return [*lines, f"   not built: {a.get('reason')}"]
    rows = [
        [
            name,
            f"{a[name]['bytes'] / 1024:,.0f} KiB",
            f"{a[name]['unzipped_bytes'] / 1024 / 1024:,.1f} MiB",
            str(a[name]["files"]),
        ]
        for name in ("handlers", "layer")
    ]
    lines += _table(["artifact", "zipped", "unzipped", "files"], rows)
    lines.append(
        f"   unzipped total {a['unzipped_total_bytes'] / 1024 / 1024:,.1f} MiB of Lambda's "
        f"{a['unzipped_limit_bytes'] / 1024 / 1024:,.0f} MiB limit"
    )
    return lines
