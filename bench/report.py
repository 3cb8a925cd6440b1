"""The bench's figures as a plain-text table."""

from __future__ import annotations

from typing import Any


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


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
    if "soak" in r:
        out += ["", *_soak(r["soak"])]
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
        f"   fanout's throughput is {_f(ratio, 2)}x the baseline's (plain boto3 Publish -> queue -> BatchWriteItem,"
        " no API, authorizer, validation or announcing, on the same emulator)"
    )
    if o.get("statuses") and set(o["statuses"]) != {"202"}:
        lines.append(f"   POST statuses: {o['statuses']}")
    lines.append(
        f"   handler invocations: {', '.join(f'{k} {v}' for k, v in sorted(o['invocations'].items()))};"
        f" {_f(o['sqs_messages_per_batch'])} messages per persister batch,"
        f" {_f(o.get('archive_messages_per_batch'))} per archive batch (one S3 PUT each)"
    )
    return lines


def _cost(c: dict[str, Any]) -> list[str]:
    lines = [f"2. AWS calls per 1,000 events (botocore hooks on every client of the run; {c['events']} events)"]
    rows = [[k, _f(v)] for k, v in c["calls_per_1000_events"].items()]
    lines += _table(["service operation", "per 1,000"], rows)
    lines.append(f"   HTTP attempts (retries included) per 1,000 events: {_f(c['http_attempts_per_1000_events'])}")
    lines.append("")
    lines.append(
        f"   $ per million events on AWS, by billed item: list prices {c['prices_as_of']} {c['region']}, "
        "counted calls and units of this run (fanout/cost.py, the console's model too)"
    )
    rows = [[k, f"{v:.3f}"] for k, v in c["dollars_per_million_events"].items()]
    rows.append(["total", f"{c['dollars_per_million_events_total']:.3f}"])
    lines += _table(["billed item", "$ / M events"], rows)
    a = c.get("assumptions", {})
    calls = ", ".join(f"{k} {v} ms" for k, v in a.get("aws_call_ms", {}).items())
    lines.append(
        "   Lambda duration: each invocation's time measured here, less the time its calls waited on the local"
        f" emulator, plus an assumed AWS round trip per call ({calls})."
    )
    lines.append(
        "   CloudWatch Logs: bytes per invocation at INFO with metrics on, as measured by"
        " tests/unit/test_log_volume.py, plus Lambda's START/END/REPORT lines and one API access log line per request."
    )
    lines.append(
        "   Not in these figures: CloudFront, the WAF, X-Ray, CloudWatch metrics and alarms, storage, data transfer."
    )
    idle = c.get("idle")
    if idle:
        lines.append(
            f"   Idle, not per event: ${idle['dollars_per_month']:.2f} a month for {idle['consumers']} consumers'"
            f" queue polling on AWS (SQS empty receives; {_f(idle['empty_receives_counted'], 0)} counted in this run,"
            " left out above)."
        )
    p = c["persistence"]
    lines.append("")
    lines.append(
        "   The persistence path (topic, queue, function, table), $ per million events: fanout beside one function"
        " per message (API -> SQS SendMessage -> one Lambda per message -> PutItem)"
    )
    ours, other = list(p["ours"].items()), list(p["seed"].items())
    rows = []
    for i in range(max(len(ours), len(other))):
        a_ = ours[i] if i < len(ours) else ("", None)
        s_ = other[i] if i < len(other) else ("", None)
        rows.append([a_[0], "" if a_[1] is None else f"{a_[1]:.3f}", s_[0], "" if s_[1] is None else f"{s_[1]:.3f}"])
    rows.append(["total", f"{p['ours_total']:.3f}", "total", f"{p['seed_total']:.3f}"])
    rows.append(["billed requests / 1,000", _f(p["calls_per_1000_ours"]), "", _f(p["calls_per_1000_seed"])])
    lines += _table(["fanout", "$", "one function per message", "$"], rows)
    lines.append(
        f"   one function per message costs {_f(p['seed_over_ours'], 2)}x fanout's persistence path; "
        f"{_f(p['wru_per_event'], 2)} WRU per event in both; its function billed "
        f"{_f(float(p.get('seed_lambda_ms', 0)), 0)} ms (one DynamoDB round trip) at 128 MB"
    )
    return lines


def _coldstart(c: dict[str, Any]) -> list[str]:
    sdk = "X-Ray SDK on (fanout:tracingSdk)" if c["tracing"] else "X-Ray SDK off, as deployed by default"
    lines = [
        f"3. Cold start proxy: median of {c['runs']} fresh processes, import + clients ({sdk}),"
        " beside its floor (a process importing only what the handler cannot do without)"
    ]
    rows = []
    for module, h in c["handlers"].items():
        rows.append([module, _f(h["ms"]), h["floor"], _f(h["floor_ms"]), _f(h["ratio"], 2)])
    lines += _table(["module", "ms", "floor", "floor ms", "ms / floor ms"], rows)
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


def _soak(s: dict[str, Any]) -> list[str]:
    lines = ["5. Soak (tests/fault/soak.py: api handler and persister in this process, moto beside it)"]
    rows = [
        ["events (after a warm-up of)", f"{s['events']} ({s['warmup_events']})"],
        ["rate events/s (target)", f"{_f(s['rate_per_s'])} ({_f(s['target_rate_per_s'], 0)})"],
        ["RSS before / after MiB", f"{_f(s['rss_before_mib'])} / {_f(s['rss_after_mib'])}"],
        [
            "RSS growth MiB per 1,000 events (allowed)",
            f"{_f(s['rss_growth_mib_per_1000_events'], 2)} ({_f(s['allowed_growth_mib_per_1000_events'], 2)})",
        ],
        [
            "stored exactly once (warm-up included) / dead-lettered",
            f"{'yes' if s['exactly_once'] else 'NO'}, {s['stored']} / {s['dead_lettered']}",
        ],
    ]
    return lines + _table(["figure", "value"], rows)
