"""A function process's own output (its prints and log lines), made safe to relay to the terminal.

The relay must never stop reading: a worker whose pipe is full blocks in its next print, and its
invocation then times out. So bytes are read as they come, in bounded chunks, whatever they are:
invalid UTF-8 is replaced, a line longer than `limit` is cut (the rest of it skipped, not held in
memory), and control characters (terminal escape sequences, a stray carriage return) are shown as
escapes instead of driving the terminal. Powertools' JSON lines carry none raw, so they pass as they are.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from fanout.text import printable

# CloudWatch Logs keeps at most 256 KiB of one log event; a line is cut there too.
LINE_LIMIT = 256 * 1024
CHUNK = 64 * 1024


def _show(raw: bytes) -> str:
    return printable(raw.removesuffix(b"\r").decode("utf-8", errors="replace"))


def lines(fd: int, limit: int = LINE_LIMIT) -> Iterator[str]:
    """The lines read from the file descriptor `fd` until end of file, each at most `limit` bytes (then cut)."""
    pending = b""
    cut = 0  # bytes of the current over-long line skipped so far (0: not in one)
    while True:
        try:
            chunk = os.read(fd, CHUNK)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            break
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            whole = pending + chunk[start:end] if not cut else pending
            more = cut + end - start if cut else max(0, len(whole) - limit)
            yield _show(whole[:limit]) + (f" [line cut: {more} more bytes]" if more else "")
            pending, cut = b"", 0
            start = end + 1
        rest = chunk[start:]
        if cut:
            cut += len(rest)
        elif len(pending) + len(rest) > limit:
            whole = pending + rest
            pending, cut = whole[:limit], len(whole) - limit
        else:
            pending += rest
    if pending or cut:
        yield _show(pending) + (f" [line cut: {cut} more bytes]" if cut else "")
