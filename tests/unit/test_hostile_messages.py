"""Hostile messages and archive lines: every tool that reads them survives any bytes and names what it skipped.

Anyone who can publish, put a message on a queue or an object in the archive chooses these bytes:
deep nesting (json's parser gives up with RecursionError, which is not a ValueError), bytes that
are not UTF-8, text that is not JSON, ids of any length.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from unit_support import BUCKET, REGION, Aws

from fanout import observe, replay, tracing, untrusted
from fanout.local.ledger import ID_CHARS, Ledger, message_key
from fanout.local.localapi import LocalApi
from fanout.local.poller import Poller
from fanout.local.trace import Taps, report, started
from fanout_kit import DataGenerated, events
from handlers.core import archive

DEEP = "[" * 120_000  # the 120 KB body that killed every running `fanout tail`
DEEP_BUT_PARSED = "[" * 500 + "]" * 500  # json parses it; what walks it next (an indented dump...) may not
NOT_JSON = "hello, I am not JSON"
HOSTILE = {"deep": DEEP, "deep-but-parsed": DEEP_BUT_PARSED, "not-json": NOT_JSON, "nan": '{"id": NaN}'}


def an_event(time_: str = "2026-05-01T10:00:00.000Z") -> dict[str, Any]:
    return events.build(
        DataGenerated.TYPE,
        source="fanout.test",
        subject="alice",
        data={"informationOne": "a", "informationTwo": "b"},
        time=time_,
    )


# ---------------------------------------------------------------------- the parser


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (DEEP, "nested deeper than 100 levels (117.2 KiB)"),
        (DEEP_BUT_PARSED, "nested deeper than 100 levels"),
        (NOT_JSON.encode(), "not JSON (Expecting value at line 1, column 1)"),
        (b'{"id": "\xff\xfe"}', "not UTF-8 text (byte 0xff at offset 8)"),
        ('{"n": NaN}', "not JSON (NaN is not a JSON value)"),
        ("1" * 5000, "not JSON (Exceeds the limit (4300 digits)"),
        ('"' + "x" * (2 << 20) + '"', "larger than 1024 KiB (2.0 MiB)"),
    ],
)
def test_parse_refuses_hostile_input_in_one_line(data: str | bytes, said: str) -> None:
    parsed = untrusted.parse(data)
    assert not parsed.ok and parsed.value is None
    assert said in str(parsed.problem) and "\n" not in str(parsed.problem)


def test_parse_keeps_what_is_fine() -> None:
    assert untrusted.parse(b'{"a": [1, {"b": null}]}').value == {"a": [1, {"b": None}]}
    assert untrusted.parse("[" * 100 + "]" * 100).ok
    bus = {"detail-type": "x", "detail": {"id": "E1"}}
    assert untrusted.cloudevent(json.dumps(bus)).value == {"id": "E1"}
    assert untrusted.cloudevent("[1]").problem == "not a JSON object but list"


# ---------------------------------------------------------------------- tail


@pytest.mark.parametrize("as_json", [True, False])
def test_tail_survives_hostile_bodies_and_names_each_on_stderr(
    aws: Aws, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="hostile")["TopicArn"]
    event = an_event()

    def publish_when_subscribed() -> None:
        while not sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
            time.sleep(0.05)
        for body in HOSTILE.values():
            sns.publish(TopicArn=topic, Message=body)
        sns.publish(TopicArn=topic, Message=json.dumps(event))

    t = threading.Thread(target=publish_when_subscribed)
    t.start()
    printed = observe.tail(sqs, sns, topic, None, None, as_json, 1)
    t.join()
    out, err = capsys.readouterr()
    assert printed == 1
    assert event["id"] in out and len(out.splitlines()) == 1
    if as_json:
        assert json.loads(out) == event
    skipped = [line for line in err.splitlines() if "skipped message" in line]
    assert len(skipped) == 4, err
    joined = "\n".join(skipped)
    assert "body is JSON nested deeper than 100 levels (117.2 KiB)" in joined
    assert "body is not JSON (Expecting value" in joined and "it starts 'hello, I am not JSON'" in joined
    assert "body is not JSON (NaN is not a JSON value)" in joined
    assert all(len(line) < 400 for line in skipped)  # a preview, never the whole body


# ---------------------------------------------------------------------- trace ledger


def _taps(ledger: Ledger) -> Taps:
    taps = Taps.__new__(Taps)  # the taps' handling of one message: no clients needed
    taps.ledger, taps._subs, taps._subs_at = ledger, {}, 1.0
    taps.topology = lambda: type("Topo", (), {"consumers": []})()
    return taps


def test_trace_taps_skip_hostile_bodies_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    ledger = Ledger()
    taps = _taps(ledger)
    huge_id = {**an_event(), "id": "x" * (120 << 10)}
    with caplog.at_level(logging.WARNING, logger="fanout.local.trace"):
        for name, body in (*HOSTILE.items(), ("huge-id", json.dumps(huge_id))):
            taps._on_topic({"MessageId": name, "Body": body, "MessageAttributes": {}})
            taps._on_bus({"MessageId": name, "Body": body})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10 and len(ledger) == 0
    assert "trace tap skipped message deep: body is JSON nested deeper than 100 levels (117.2 KiB)" in lines
    assert f"trace tap skipped message huge-id: its event id is longer than {ID_CHARS} characters" in lines


def test_a_hostile_message_reaching_the_dlq_keeps_its_count_and_error() -> None:
    ledger = Ledger()
    for count in (1, 2, 3):
        message = {"MessageId": "m-1", "Body": DEEP, "Attributes": {"ApproximateReceiveCount": str(count)}}
        report(ledger, "audit", 3, [message], {"m-1"}, {"m-1": ("InvalidEvent: body is not JSON", "")})
    for seen in (4, 9):
        assert ledger.dlq_info("audit", message_key(DEEP), seen) == (3, "InvalidEvent: body is not JSON")


def test_the_ledger_is_bounded_in_size_not_only_in_count(aws: Aws, tmp_path: Path) -> None:
    ledger = Ledger()
    for n in range(300):  # 300 events with 120 KiB ids grew the ledger by 84 MB
        ledger.published({**an_event(), "id": f"{n:04d}" + "x" * (120 << 10)}, {"audit": True})
    long_fields = {**an_event(), "type": "t" * (120 << 10), "subject": "s" * (120 << 10)}
    ledger.published(long_fields, {"audit": True})
    ledger.save(tmp_path / "trace.json")
    assert (tmp_path / "trace.json").stat().st_size < 2_000
    assert len(ledger) == 1
    recorded = ledger.trace(long_fields["id"], [])
    assert recorded is not None and len(recorded["type"]) == len(recorded["subject"]) == 200
    api = LocalApi(session=boto3.Session(region_name=REGION), env=None, topology=lambda: None, ledger=ledger)  # type: ignore[arg-type]
    for n in range(500):
        ledger.published({**long_fields, "id": f"E{n:07d}" + "y" * 150}, {f"c{i}": True for i in range(5)})
    answer = api.handle("GET", "/_local/events", "limit=500", b"")
    assert answer is not None and answer.status == 200
    assert len(answer.body) < 500_000  # a poll had returned 12 MB


@pytest.mark.parametrize("event_id", ["a/b", "a/../b", "ends/", "/starts", "..", "with\nnewline"])
def test_any_event_id_can_be_traced(aws: Aws, event_id: str) -> None:
    ledger = Ledger()
    ledger.published({**an_event(), "id": event_id}, {"audit": True})
    api = LocalApi(session=boto3.Session(region_name=REGION), env=None, topology=lambda: None, ledger=ledger)  # type: ignore[arg-type]
    api.consumers = lambda fresh=False: {}  # type: ignore[method-assign]
    api._stored = lambda event_id, subject: False  # type: ignore[method-assign]
    from urllib.parse import urlencode

    # What `fanout trace ID` asks (tracing.local): the id in the query.
    answer = api.handle("GET", "/_local/trace", urlencode({"id": event_id}), b"")
    assert answer is not None and answer.status == 200, answer and answer.body
    assert json.loads(answer.body)["id"] == event_id
    if not event_id.endswith("/"):  # the gateway drops one trailing "/" of a path: the query form has it
        by_path = api.handle("GET", f"/_local/trace/{event_id}", "", b"")  # /_local/trace/a%2Fb, decoded
        assert by_path is not None and json.loads(by_path.body)["id"] == event_id
    too_long = api.handle("GET", "/_local/trace", urlencode({"id": "x" * (ID_CHARS + 1)}), b"")
    assert too_long is not None and too_long.status == 400


def test_running_while_invoked_and_a_replay_is_a_new_delivery_not_a_retry(aws: Aws) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="consumer")["QueueUrl"]
    ledger = Ledger()
    event = an_event()
    seen_while_running: list[str] = []

    def handler(batch: dict[str, Any], _context: Any) -> dict[str, Any]:
        seen_while_running.append(ledger.trace(event["id"], [])["consumers"]["audit"]["state"])
        return {"batchItemFailures": []}

    poller = Poller(
        name="audit-0",
        sqs=sqs,
        queue_url=url,
        queue_arn="arn:aws:sqs:us-east-1:123456789012:consumer",
        handler=handler,
        batch_size=1,
        batching_window=0,
        region=REGION,
        timeout_seconds=30,
        stop=threading.Event(),
        on_batch=lambda messages, failed, errors, error: report(ledger, "audit", 3, messages, failed, errors, error),
        on_start=lambda messages, timeout: started(ledger, "audit", messages, timeout),
    )
    ledger.published(event, {"audit": True})
    for _ in range(2):  # the first delivery, then a replay of the same event (a new message)
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
        assert poller.poll_once() == 1
    assert seen_while_running == ["running", "running"]
    audit = ledger.trace(event["id"], [])["consumers"]["audit"]
    assert (audit["state"], audit["attempts"], audit["deliveries"]) == ("processed", 1, 2)
    # A start whose outcome never comes (the stack stopped mid-invocation) stops showing "running".
    other = {**an_event(), "id": "E-stopped"}
    ledger.published(other, {"audit": True})
    started(ledger, "audit", [{"MessageId": "m", "Body": json.dumps(other)}], -10)
    assert ledger.trace("E-stopped", [])["consumers"]["audit"]["state"] == "pending"


# ---------------------------------------------------------------------- DLQ view


def _visible(sqs: Any, url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_the_dlq_view_shows_hostile_bodies_as_text_and_changes_nothing_it_shows(aws: Aws) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="audit-dlq")["QueueUrl"]
    ledger = Ledger()
    event = an_event()
    for body in (*HOSTILE.values(), json.dumps(event)):
        sqs.send_message(QueueUrl=dlq, MessageBody=body)
    failed = {"MessageId": "m-1", "Body": json.dumps(event), "Attributes": {"ApproximateReceiveCount": "3"}}
    report(ledger, "audit", 3, [failed], {"m-1"}, {"m-1": ("ValueError: no", "")})
    api = LocalApi(session=boto3.Session(region_name=REGION), env=None, topology=lambda: None, ledger=ledger)  # type: ignore[arg-type]
    looks = []
    for _ in range(3):
        looks.append(api.dlq_messages("audit", dlq))
        assert _visible(sqs, dlq) == (5, 0)  # nothing left hidden by the look
    by_body = {json.dumps(m["body"]) if not m["bodyProblem"] else m["body"]: m for m in looks[0]}
    assert by_body[DEEP]["bodyProblem"] == "JSON nested deeper than 100 levels (117.2 KiB)"
    assert by_body[NOT_JSON]["bodyProblem"].startswith("not JSON")
    assert by_body[json.dumps(event)]["body"] == event and by_body[json.dumps(event)]["bodyProblem"] is None
    assert by_body[json.dumps(event)]["receiveCount"] == 3 and by_body[json.dumps(event)]["error"] == "ValueError: no"
    # Sent there by hand: the count of the first look (0 receives before it), the same at every look.
    counts = [
        sorted((m["body"] if isinstance(m["body"], str) else "", m["receiveCount"]) for m in look) for look in looks
    ]
    assert counts[0] == counts[1] == counts[2]
    assert by_body[DEEP]["receiveCount"] == 0
    json.dumps(looks[0], indent=2)  # what `dlq show --json` prints: no recursion limit reached


def test_dlq_receive_counts_are_the_same_after_a_restart(aws: Aws, tmp_path: Path) -> None:
    """A restart puts DLQ messages back under new message ids, with every receive (looks included) counted."""
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="audit-dlq")["QueueUrl"]
    ledger = Ledger()
    event = an_event()
    failed = {"MessageId": "m-1", "Body": json.dumps(event), "Attributes": {"ApproximateReceiveCount": "3"}}
    report(ledger, "audit", 3, [failed], {"m-1"}, {"m-1": ("ValueError: no", "")})
    for body in (json.dumps(event), "poison by hand"):
        sqs.send_message(QueueUrl=dlq, MessageBody=body)
    api = LocalApi(session=boto3.Session(region_name=REGION), env=None, topology=lambda: None, ledger=ledger)  # type: ignore[arg-type]
    first = {str(m["body"]): m["receiveCount"] for m in api.dlq_messages("audit", dlq)}
    for _ in range(3):
        api.dlq_messages("audit", dlq)
    ledger.save(tmp_path / "trace.json")
    # The restart: the same bodies again under new ids, received as often as they were (as state.py does).
    sqs.purge_queue(QueueUrl=dlq)
    for body in (json.dumps(event), "poison by hand"):
        sqs.send_message(QueueUrl=dlq, MessageBody=body)
        for _ in range(5):
            sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0)
    again = LocalApi(
        session=boto3.Session(region_name=REGION),
        env=None,  # type: ignore[arg-type]
        topology=lambda: None,  # type: ignore[arg-type, return-value]
        ledger=Ledger.load(tmp_path / "trace.json"),
    )
    after = {str(m["body"]): m["receiveCount"] for m in again.dlq_messages("audit", dlq)}
    assert after == first == {str(event): 3, "poison by hand": 0}


def test_a_look_that_fails_midway_leaves_no_message_hidden(aws: Aws) -> None:
    from fanout import consumers

    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="audit-dlq")["QueueUrl"]
    for n in range(15):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"m{n}")
    calls = 0

    class Flaky:
        def __getattr__(self, name: str) -> Any:
            return getattr(sqs, name)

        def receive_message(self, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise ConnectionError("the emulator went away")
            return sqs.receive_message(**kwargs)

    with pytest.raises(ConnectionError):
        consumers.peek(Flaky(), dlq)
    assert _visible(sqs, dlq) == (15, 0)
    assert len(consumers.peek(sqs, dlq)) == 15 and _visible(sqs, dlq) == (15, 0)


# ---------------------------------------------------------------------- replay's archive reader


def test_replay_skips_archive_lines_that_are_not_events_and_names_each(s3: Any) -> None:
    good, also_good = an_event("2026-05-01T10:00:00.000Z"), an_event("2026-05-01T11:00:00.000Z")
    day = archive.partition_prefix("2026-05-01")
    s3.put_object(Bucket=BUCKET, Key=archive.object_key([good]), Body=archive.to_ndjson([good]))
    bad = {
        f"{day}not-json.ndjson": b"<html>not an event</html>\n",
        f"{day}not-utf8.ndjson": b'{"id": "\xff"}\n',
        f"{day}deep.ndjson": DEEP.encode(),
        f"{day}mixed.ndjson": b'{"id": "no-type"}\n' + archive.to_ndjson([also_good]) + b"[1, 2]\n",
    }
    for key, body in bad.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    published: list[dict[str, Any]] = []
    skipped: list[str] = []

    def publish(batch: list[dict[str, Any]]) -> int:
        published.extend(batch)
        return len(batch)

    window = (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 2, tzinfo=UTC))
    assert replay.replay(s3, BUCKET, *window, publish, skip=skipped.append) == 2
    assert published == [good, also_good]
    assert len(skipped) == 5 and all("\n" not in line for line in skipped)
    said = "\n".join(skipped)
    assert f"s3://{BUCKET}/{day}not-json.ndjson line 1: not JSON (Expecting value" in said
    assert f"{day}not-utf8.ndjson line 1: not UTF-8 text (byte 0xff at offset 8)" in said
    assert f"{day}deep.ndjson line 1: JSON nested deeper than 100 levels" in said
    assert f"{day}mixed.ndjson line 1: not a valid event (unknown event type None)" in said
    assert f"{day}mixed.ndjson line 3: a JSON list, not an event object" in said


def test_trace_on_aws_passes_over_log_lines_it_cannot_read() -> None:
    from fanout import topology

    topo = topology.from_config("dev", {"consumers": [{"name": "persister", "handler": "handlers.persister:handler"}]})
    group = f"/aws/lambda/{topo.prefix}-persister"
    rows = [
        {"@log": f"1:{group}", "@message": DEEP},
        {"@log": f"1:{group}", "@message": json.dumps({"event_id": "E1", "message": "event received"})},
    ]
    doc = tracing.from_logs(rows, "E1", topo, {group: "persister"})
    assert doc["consumers"]["persister"] == {"state": "processed", "attempts": 1, "error": None}


def test_the_log_relay_passes_a_deeply_nested_line_through() -> None:
    import io

    from fanout.local.logfmt import relay

    out = io.StringIO()
    line = '{"a":' * 100_000
    relay([line + "\n", '{"level": "INFO", "message": "after"}\n'], "audit", out, "text")
    lines = out.getvalue().splitlines()
    assert lines[0] == line and "after" in lines[1]
