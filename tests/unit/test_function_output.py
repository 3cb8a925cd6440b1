"""A function's own output reaches the terminal whatever its bytes: invalid UTF-8, escapes, huge lines."""

from __future__ import annotations

import os
import threading
import tracemalloc

from fanout.local.output import lines


def _through_pipe(data: bytes, limit: int = 1024) -> list[str]:
    read, write = os.pipe()

    def feed() -> None:
        with os.fdopen(write, "wb") as fh:
            fh.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        return list(lines(read, limit))
    finally:
        writer.join()
        os.close(read)


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert _through_pipe(b"ok \xff\xfe here\nnext\n") == ["ok \ufffd\ufffd here", "next"]


def test_terminal_escapes_are_shown_not_sent() -> None:
    got = _through_pipe(b"\x1b]0;owned\x07title\x1b[2J\r\nplain\ttab\n")
    assert got == ["\\x1b]0;owned\\x07title\\x1b[2J", "plain\ttab"]


def test_powertools_json_passes_unchanged() -> None:
    record = b'{"level":"INFO","message":"caf\xc3\xa9 \\u001b[31m"}\n'
    assert _through_pipe(record) == ['{"level":"INFO","message":"caf\u00e9 \\u001b[31m"}']


def test_a_long_line_is_cut_and_the_next_one_kept() -> None:
    got = _through_pipe(b"x" * 5000 + b"\nafter\n" + b"y" * 3000, limit=1024)
    assert got == ["x" * 1024 + " [line cut: 3976 more bytes]", "after", "y" * 1024 + " [line cut: 1976 more bytes]"]


def test_a_64_mib_line_does_not_balloon_memory() -> None:
    read, write = os.pipe()
    chunk = b"z" * (1024 * 1024)

    def feed() -> None:
        with os.fdopen(write, "wb") as fh:
            for _ in range(64):
                fh.write(chunk)
            fh.write(b"\nend\n")

    tracemalloc.start()
    writer = threading.Thread(target=feed)
    writer.start()
    try:
        got = list(lines(read))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        writer.join()
        os.close(read)
    assert got[1:] == ["end"] and got[0].endswith(f" [line cut: {64 * 1024 * 1024 - 256 * 1024} more bytes]")
    # What a line is cut to, a read chunk and copies of them, never the line itself (64 MiB).
    assert peak < 4 * 1024 * 1024, peak
