"""The trace ledger, `fanout trace --aws` on Logs Insights (botocore Stubber), `fanout tail --aws` cleanup (moto)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from fanout import observe, topology, tracing
from fanout.local.ledger import Ledger, message_key
from fanout.local.trace import report
from tests.support.checkout import STACK_CONFIGS

EVENT = {"id": "01K0000000000000000000000A", "type": "fanout.data.generated.v1", "subject": "alice"}


def _event(n: int) -> dict[str, Any]:
    return {**EVENT, "id": f"E{n:08d}", "time": "2026-01-01T00:00:00.000Z"}


def _message(event_id: str, count: int, mid: str = "m-1") -> dict[str, Any]:
    return {
        "MessageId": mid,
        "Body": json.dumps({"id": event_id}),
        "Attributes": {"ApproximateReceiveCount": str(count)},
    }


# ---------------------------------------------------------------------- ledger


def test_ledger_states_from_attempts() -> None:
    ledger = Ledger()
    ledger.published(_event(1), {"persister": True, "audit": False, "slow": True})
    for count in (1, 2):
        report(ledger, "persister", 3, [_message("E00000001", count)], {"m-1"}, {"m-1": ("ValueError: bad", "")})
    doc = ledger.trace("E00000001", ["persister", "audit", "slow"])
    assert doc is not None
    assert doc["consumers"]["persister"]["state"] == "retrying"
    assert doc["consumers"]["persister"]["attempts"] == 2
    assert doc["consumers"]["persister"]["error"] == "ValueError: bad"
    assert doc["consumers"]["audit"]["state"] == "filtered"
    assert doc["consumers"]["slow"]["state"] == "pending"
    report(ledger, "persister", 3, [_message("E00000001", 3)], {"m-1"}, {})
    assert ledger.trace("E00000001", [])["consumers"]["persister"]["state"] == "dlq"
    # Redriven (a new message, received once) and then processed: a second delivery, handled by one
    # invocation; its attempts are not retries of the first delivery.
    report(ledger, "persister", 3, [_message("E00000001", 1, "m-2")], set(), {})
    after = ledger.trace("E00000001", [])["consumers"]["persister"]
    assert after["state"] == "processed" and after["error"] is None
    assert (after["attempts"], after["deliveries"]) == (1, 2)
    assert ledger.trace("never", ["persister"]) is None


def test_ledger_dlq_info_is_stable_and_survives_a_save(tmp_path: Path) -> None:
    ledger = Ledger()
    report(ledger, "p", 3, [_message("E1", 3)], {"m-1"}, {"m-1": ("KeyError: 'x'", "")})
    # However often the DLQ is looked at (each look is a receive), the count on arrival is what shows.
    for seen in (4, 5, 6):
        assert ledger.dlq_info("p", "E1", seen) == (3, "KeyError: 'x'")
    # A message the ledger never saw fail: the first look's count, then the same.
    hand = message_key("not an event")
    assert ledger.dlq_info("p", hand, 2) == (1, None)
    assert ledger.dlq_info("p", hand, 7) == (1, None)
    ledger.save(tmp_path / "trace.json")
    loaded = Ledger.load(tmp_path / "trace.json")
    assert loaded.trace("E1", []) == ledger.trace("E1", [])
    assert loaded.dlq_info("p", "E1", 9) == (3, "KeyError: 'x'")
    assert loaded.dlq_info("p", hand, 9) == (1, None)


def test_ledger_memory_is_bounded() -> None:
    ledger = Ledger(capacity=100)
    for n in range(1000):
        ledger.published(_event(n), {"persister": True})
    assert len(ledger) == 100
    assert ledger.trace(_event(0)["id"], []) is None
    assert ledger.trace(_event(999)["id"], []) is not None
    assert [e["id"] for e in ledger.recent(3)] == [_event(n)["id"] for n in (999, 998, 997)]


def test_an_unreadable_ledger_file_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "trace.json").write_text("{not json")
    assert len(Ledger.load(tmp_path / "trace.json")) == 0


def test_failed_attempts_are_logged_once_with_attempt_n_of_m(caplog: pytest.LogCaptureFixture) -> None:
    ledger = Ledger()
    with caplog.at_level("WARNING", logger="fanout.local.poller"):
        report(ledger, "audit", 3, [_message("E1", 1)], {"m-1"}, {"m-1": ("ValueError: no", "")})
        report(ledger, "audit", 3, [_message("E1", 3)], {"m-1"}, {"m-1": ("ValueError: no", "")})
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "attempt 1 of 3 failed, will be retried: ValueError: no"
    assert lines[1] == "attempt 3 of 3 failed; the message goes to audit's DLQ (last error: ValueError: no)"
    assert caplog.records[0].function == "audit"
    assert caplog.records[1].event_id == "E1" and caplog.records[1].message_id == "m-1"
    assert "skipping" not in " ".join(lines)


def test_each_failed_attempt_is_one_line_with_its_traceback_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fanout.local import logfmt

    monkeypatch.setattr(logfmt, "_shown", set())
    monkeypatch.delenv("FANOUT_LOG_LEVEL", raising=False)
    tb = 'Traceback (most recent call last):\n  File "handlers/audit.py", line 9, in handler\nValueError: no'
    with caplog.at_level("WARNING", logger="fanout.local.poller"):
        for count in (1, 2, 3):
            report(Ledger(), "audit", 3, [_message("E1", count)], {"m-1"}, {"m-1": ("ValueError: no", tb)})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0] == "attempt 1 of 3 failed, will be retried: ValueError: no\n" + tb
    assert lines[1] == "attempt 2 of 3 failed, will be retried: ValueError: no"
    assert lines[2] == "attempt 3 of 3 failed; the message goes to audit's DLQ (last error: ValueError: no)"
    assert not [line for line in lines if "will be retried" in line and "3 of 3" in line]


# ---------------------------------------------------------------------- trace --aws


def _row(group: str, line: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"field": "@timestamp", "value": "2026-01-01 00:00:01.000"},
        {"field": "@log", "value": f"123456789012:{group}"},
        {"field": "@message", "value": json.dumps(line)},
    ]


def test_trace_on_aws_reads_the_functions_log_lines_through_logs_insights() -> None:
    topo = topology.load("dev", STACK_CONFIGS)
    event_id = "01K00000000000000000000000"
    prefix = f"/aws/lambda/{topo.prefix}"
    logs = boto3.client("logs", region_name="us-east-1")
    rows = [
        _row(
            f"{prefix}-api",
            {
                "level": "INFO",
                "message": "data accepted",
                "event_id": event_id,
                "timestamp": "2026-01-01 00:00:00,500+0000",
            },
        ),
        _row(f"{prefix}-persister", {"level": "INFO", "message": "event received", "event_id": event_id}),
        _row(f"{prefix}-archive", {"level": "INFO", "message": "event received", "event_id": event_id}),
        _row(
            f"{prefix}-archive",
            {
                "level": "WARNING",
                "message": "archive failed: OSError: x; the message will be retried",
                "event_id": event_id,
                "receive_count": 1,
            },
        ),
    ]
    with Stubber(logs) as stub:
        stub.add_response(
            "start_query",
            {"queryId": "q-1"},
            {"logGroupNames": ANY, "startTime": ANY, "endTime": ANY, "queryString": ANY},
        )
        stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q-1"})
        stub.add_response("get_query_results", {"status": "Complete", "results": rows}, {"queryId": "q-1"})
        doc = tracing.on_aws(logs, topo, event_id)
        stub.assert_no_pending_responses()
    shaped = tracing.contract_shape(doc)
    assert shaped["published"] == "2026-01-01T00:00:00.500Z"
    assert shaped["stored"] is True and shaped["announced"] is True
    assert shaped["consumers"]["persister"] == {"state": "processed", "attempts": 1}
    assert shaped["consumers"]["archive"] == {"state": "retrying", "attempts": 1}
    assert doc["consumers"]["archive"]["error"].startswith("archive failed")


def test_trace_on_aws_queries_every_function_log_group_from_the_ulid_time() -> None:
    topo = topology.load("dev", STACK_CONFIGS)
    event_id = "01K00000000000000000000000"
    logs = boto3.client("logs", region_name="us-east-1")
    made = tracing.id_time(event_id)
    assert made is not None
    groups = sorted(tracing.log_groups(topo))
    with Stubber(logs) as stub:
        stub.add_response(
            "start_query",
            {"queryId": "q-2"},
            {"logGroupNames": groups, "startTime": int(made - 300), "endTime": ANY, "queryString": ANY},
        )
        stub.add_response("get_query_results", {"status": "Complete", "results": []}, {"queryId": "q-2"})
        with pytest.raises(tracing.TraceError, match="no log line mentions event"):
            tracing.on_aws(logs, topo, event_id)
    assert f"/aws/lambda/{topo.prefix}-persister" in groups and f"/aws/lambda/{topo.prefix}-api" in groups


def test_trace_on_aws_reports_a_failed_query() -> None:
    logs = boto3.client("logs", region_name="us-east-1")
    with Stubber(logs) as stub:
        stub.add_response(
            "start_query",
            {"queryId": "q-3"},
            {"logGroupNames": ANY, "startTime": ANY, "endTime": ANY, "queryString": ANY},
        )
        stub.add_response("get_query_results", {"status": "Failed", "results": []}, {"queryId": "q-3"})
        with pytest.raises(tracing.TraceError, match="failed"):
            tracing.on_aws(logs, topology.load("dev", STACK_CONFIGS), "01K00000000000000000000000")


def test_trace_on_aws_refuses_an_id_that_would_break_the_query() -> None:
    with pytest.raises(tracing.TraceError, match="letters, digits"):
        tracing.query(None, [], 'x" or 1=1', 0, 1)


# ---------------------------------------------------------------------- tail --aws


@mock_aws
def test_tail_on_aws_removes_its_queue_and_subscription_after_count(capsys: pytest.CaptureFixture[str]) -> None:
    sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="t")["TopicArn"]
    before = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]

    def publish_when_subscribed() -> None:
        import time

        while not sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
            time.sleep(0.05)
        for subject in ("bob", "alice", "alice"):
            event = {**EVENT, "subject": subject, "id": f"id-{subject}"}
            sns.publish(
                TopicArn=topic,
                Message=json.dumps(event),
                MessageAttributes={"subject": {"DataType": "String", "StringValue": subject}},
            )

    t = threading.Thread(target=publish_when_subscribed)
    t.start()
    printed = observe.tail(sqs, sns, topic, None, "alice", True, 2)
    t.join()
    assert printed == 2
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["subject"] for e in out] == ["alice", "alice"]
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == before
    assert not [u for u in sqs.list_queues().get("QueueUrls", []) if "fanout-tail-" in u]


@mock_aws
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_tail_on_aws_cleans_up_on_a_signal_and_on_an_error(sig: signal.Signals) -> None:
    sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="t")["TopicArn"]
    timer = threading.Timer(0.5, lambda: signal.raise_signal(sig))
    timer.start()
    assert observe.tail(sqs, sns, topic, "fanout.data.generated.v1", None, False, None) == 0
    timer.join()
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    assert not [u for u in sqs.list_queues().get("QueueUrls", []) if "fanout-tail-" in u]

    class Broken:
        def __getattr__(self, name: str) -> Any:
            if name == "receive_message":
                raise RuntimeError("network down")
            return getattr(sqs, name)

    with pytest.raises(RuntimeError, match="network down"):
        observe.tail(Broken(), sns, topic, None, None, False, None)
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    assert not [u for u in sqs.list_queues().get("QueueUrls", []) if "fanout-tail-" in u]


def test_bus_consumers_in_the_trace_pattern_verdicts_and_eventbridge_bodies() -> None:
    from fanout.local.trace import Taps

    topo = topology.from_config(
        "dev",
        {
            "consumers": [
                {"name": "persister", "handler": "handlers.persister:handler"},
                {
                    "name": "on-persisted",
                    "handler": "handlers.archive:handler",
                    "source": "bus",
                    "eventPattern": {"source": ["fanout.persister"], "detail-type": ["fanout.data.persisted.v1"]},
                },
                {
                    "name": "on-other",
                    "handler": "handlers.archive:handler",
                    "source": "bus",
                    "eventPattern": {"detail-type": ["something.else.v1"]},
                },
            ]
        },
    )
    ledger = Ledger()
    taps = Taps.__new__(Taps)  # only the bus verdicts are exercised: no clients needed
    taps.topology, taps.ledger = (lambda: topo), ledger
    cloudevent = {**EVENT, "type": "fanout.data.persisted.v1", "source": "fanout.persister"}
    envelope = {
        "version": "0",
        "id": "eb-1",
        "detail-type": "fanout.data.persisted.v1",
        "source": "fanout.persister",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": cloudevent,
    }
    taps._on_bus({"Body": json.dumps(envelope)})
    # The bus consumer's queue holds the EventBridge envelope: the ledger finds the CloudEvent's id in it.
    message = {"MessageId": "m-7", "Body": json.dumps(envelope), "Attributes": {"ApproximateReceiveCount": "1"}}
    report(ledger, "on-persisted", 3, [message], set(), {})
    doc = ledger.trace(EVENT["id"], ["persister", "on-persisted", "on-other"])
    assert doc is not None and doc["announced"] is True
    assert doc["consumers"]["on-persisted"]["state"] == "processed"
    assert doc["consumers"]["on-other"]["state"] == "filtered"


def test_an_unchanged_ledger_is_not_written_again(tmp_path: Path) -> None:
    ledger, path = Ledger(), tmp_path / "trace.json"
    ledger.published(_event(1), {})
    ledger.save(path)
    path.write_text("{}")  # a marker: a second save of the unchanged ledger must leave it
    ledger.save(path)
    assert path.read_text() == "{}"
    ledger.published(_event(2), {})
    ledger.save(path)
    assert [e["id"] for e in json.loads(path.read_text())["events"]] == [_event(1)["id"], _event(2)["id"]]
    path.unlink()
    ledger.save(path)  # a missing file is written whatever changed
    assert path.is_file()


def test_replay_to_a_bus_consumer_is_refused_with_the_way_to_do_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from fanout.cli import CliError

    bus_topo = topology.from_config(
        "dev",
        {
            "consumers": [
                {"name": "persister", "handler": "handlers.persister:handler"},
                {"name": "on-persisted", "handler": "handlers.archive:handler", "source": "bus",
                 "eventPattern": {"source": ["fanout.persister"]}},
            ]
        },
    )  # fmt: skip
    monkeypatch.setattr(topology, "load", lambda stack: bus_topo)
    with pytest.raises(CliError, match=r"on-persisted is a bus consumer.*--event-archive"):
        observe.replay_to_consumer(None, None, "arn:aws:sns:us-east-1:1:t", "on-persisted")
