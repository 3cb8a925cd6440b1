"""`make run`'s terminal log lines: Powertools JSON made readable, tracebacks once, JSON on request."""

from __future__ import annotations

import io
import json
import logging

import pytest

from fanout.local import logfmt

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "handlers/audit.py", line 9, in handler\n'
    "    1 / 0\n"
    "ZeroDivisionError: division by zero"
)
RECORD = {
    "level": "WARNING",
    "location": "_record:157",
    "message": "audit failed: ZeroDivisionError: division by zero; the message will be retried",
    "timestamp": "2026-12-01 20:13:53,893+0000",
    "service": "audit",
    "cold_start": False,
    "function_name": "audit-0",
    "function_request_id": "eb21269b",
    "event_id": "01K00000000000000000000000",
    "message_id": "m-1",
    "receive_count": 2,
    "exception": TRACEBACK,
    "exception_name": "ZeroDivisionError",
}


def test_a_powertools_record_becomes_one_line_and_its_traceback_once() -> None:
    out = io.StringIO()
    logfmt.relay([json.dumps(RECORD) + "\n", "a print() from the handler\n"], "audit", out, fmt="text")
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "20:13:53.893 audit WARNING audit failed: ZeroDivisionError: division by zero; the message will be retried"
        "  event=01K00000000000000000000000 message=m-1 receive_count=2"
    )
    assert lines[1:5] == TRACEBACK.splitlines()
    assert out.getvalue().count("Traceback") == 1
    assert lines[5] == "a print() from the handler"


def test_json_format_keeps_lambdas_lines_as_they_are() -> None:
    out = io.StringIO()
    raw = json.dumps(RECORD)
    logfmt.relay([raw + "\n"], "audit", out, fmt="json")
    assert out.getvalue() == raw + "\n"


def test_control_characters_in_a_field_cannot_drive_the_terminal() -> None:
    out = io.StringIO()
    logfmt.relay(
        [json.dumps({**RECORD, "exception": None, "message": "x\x1b]0;owned\x07"}) + "\n"], "a", out, fmt="text"
    )
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()


def test_the_runtimes_own_records_have_the_same_shape() -> None:
    record = logging.LogRecord(
        "fanout.local.poller", logging.ERROR, __file__, 1, "attempt %d of %d failed", (3, 3), None
    )
    record.function, record.event_id, record.message_id = "persister", "E1", "m-9"
    text = logfmt.ReadableFormatter().format(record)
    assert text.split(" ", 1)[1] == "persister ERROR   attempt 3 of 3 failed  event=E1 message=m-9"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    text = logfmt.ReadableFormatter().format(record)
    assert text.count("Traceback (most recent call last):") == 1 and text.endswith("ValueError: boom")
    doc = json.loads(logfmt.JsonFormatter().format(record))
    assert doc["level"] == "ERROR" and doc["service"] == "persister" and doc["event_id"] == "E1"
    assert "ValueError: boom" in doc["exception"]


def test_an_unknown_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANOUT_LOG_FORMAT", "yaml")
    with pytest.raises(ValueError, match="FANOUT_LOG_FORMAT must be text or json"):
        logfmt.log_format()


def test_the_kits_failure_line_is_left_to_the_runtimes_attempt_line() -> None:
    """Locally the runtime says "attempt N of M failed" (the DLQ on the last one): one line per attempt."""
    out = io.StringIO()
    failed = json.dumps({**RECORD, "message": "audit failed: ZeroDivisionError: division by zero", "outcome": "failed"})
    logfmt.relay([failed + "\n", "a print() from the handler\n"], "audit", out, fmt="text")
    assert out.getvalue() == "a print() from the handler\n"
    out = io.StringIO()
    logfmt.relay([failed + "\n"], "audit", out, fmt="json")  # the JSON lines Lambda writes, all of them
    assert out.getvalue() == failed + "\n"


def test_a_traceback_is_printed_once_per_distinct_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FANOUT_LOG_LEVEL", raising=False)
    monkeypatch.setattr(logfmt, "_shown", set())
    other_id = TRACEBACK.replace("division by zero", "division by zero (event 01K2)")
    elsewhere = TRACEBACK.replace("line 9", "line 12")
    assert logfmt.traceback_once("audit", TRACEBACK) == "\n" + TRACEBACK
    assert logfmt.traceback_once("audit", other_id) == ""  # the same error, another message
    assert logfmt.traceback_once("audit", elsewhere) == "\n" + elsewhere  # raised somewhere else
    assert logfmt.traceback_once("notifier", TRACEBACK) == "\n" + TRACEBACK  # another function
    assert logfmt.traceback_once("audit", "") == ""
    monkeypatch.setenv("FANOUT_LOG_LEVEL", "debug")
    assert logfmt.traceback_once("audit", TRACEBACK) == "\n" + TRACEBACK  # DEBUG shows every one
