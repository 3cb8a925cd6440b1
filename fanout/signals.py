"""Stopping on SIGINT/SIGTERM without taking a lock inside a signal handler.

Python runs a signal handler in the main thread between two bytecodes, possibly while that
thread holds a lock. `threading.Event` is built on a non-reentrant lock: a handler calling
`event.set()` while the main thread is inside `event.wait()` waits for itself, for good (the
hang `make run` once showed). So the handler here only counts and remembers, and
`signal.set_wakeup_fd` has the interpreter write each signal's number to a pipe at C level;
the main loop `select()`s on that pipe, so it wakes at once.

A second signal forces the exit (the stop in progress may be what hangs): the handler writes
one line with `os.write` (no buffered-IO lock) and calls `force`, by default `os._exit`. One
that comes within `grace` seconds of the first is the same request arriving twice (SIGTERM to
the process group reaches the runtime, and make forwards its own copy), not a second one.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(BaseException):
    """Raised (only inside `interruptible()`) by the first signal: a slow start gives way to the stop.

    A BaseException, like KeyboardInterrupt, so that `except Exception` in the code it interrupts
    does not swallow it.
    """


def _exit(code: int) -> None:
    os._exit(code)


class StopSignals:
    """Install with `with StopSignals() as signals:`; the main loop polls `signals.wait(timeout)`."""

    def __init__(
        self,
        signals: tuple[signal.Signals, ...] = STOP_SIGNALS,
        force: Callable[[int], None] = _exit,
        name: str = "fanout",
        grace: float = 0.5,
    ) -> None:
        self.signals = signals
        self.force = force
        self.name = name
        self.grace = grace
        self.count = 0  # plain ints and attributes only: assigning them takes no lock
        self.first: int | None = None
        self._first_at = 0.0
        self._woken = False  # a stop signal's wakeup byte was read (its Python handler may not have run yet)
        self._interruptible = False
        self._read_fd = self._write_fd = -1
        self._previous: dict[int, Any] = {}
        self._previous_wakeup = -1

    # ------------------------------------------------------------------ install / restore

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("signal handlers can only be installed from the main thread")
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)  # set_wakeup_fd requires it: a full pipe never blocks a signal
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
        signal.set_wakeup_fd(self._previous_wakeup)
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._read_fd = self._write_fd = -1

    # ------------------------------------------------------------------ the handler

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # No locks here, no print(), no logging: only assignments, time.monotonic, os.write and os._exit.
        now = time.monotonic()
        if self.count and now - self._first_at < self.grace:
            return  # the first request, delivered twice
        self.count += 1
        if self.first is None:
            self.first, self._first_at = signum, now
        if self.count > 1:
            os.write(2, f"{self.name}: second signal ({signal.Signals(signum).name}), exiting now\n".encode())
            self.force(128 + signum)
            return
        if self._interruptible:
            self._interruptible = False
            raise StopRequested

    # ------------------------------------------------------------------ what the main loop calls

    @property
    def stopping(self) -> bool:
        return self.count > 0 or self._woken

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` s, returning early (True) once a stop signal has arrived."""
        if self.stopping:
            return True
        with contextlib.suppress(InterruptedError):
            select.select([self._read_fd], [], [], timeout)
        # The wakeup byte is written at C level before the Python-level handler runs (which happens at
        # the main thread's next bytecode); reading the byte as well makes the stop certain either way.
        with contextlib.suppress(BlockingIOError, OSError):
            if any(signum in self.signals for signum in os.read(self._read_fd, 512)):
                self._woken = True
        return self.stopping

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Within this block the first signal raises StopRequested (e.g. to cut a slow start short)."""
        if self.count:
            raise StopRequested
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False


def watchdog(
    seconds: float, force: Callable[[int], None] = _exit, name: str = "fanout", backstop: float = 0.2
) -> threading.Thread:
    """Force the exit if the stop has not finished within `seconds`.

    First a thread, which says so and calls `force` (killing the children). A thread needs the GIL,
    which thousands of busy threads can keep from it for minutes; so the kernel ends the process
    `backstop` seconds later in any case: SIGALRM with its default action, which runs no Python code.
    (Only from the main thread, where a signal's disposition can be set.)
    """

    def expire() -> None:
        os.write(2, f"{name}: the stop took longer than {seconds:g} s; exiting now\n".encode())
        force(1)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, seconds + backstop)
    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer
