"""A certain stop: `make run`'s main loop against signals at random moments, forced exits, stale locks.

The signal tests run in a small subprocess of their own (one for hundreds of trials): a hang
then fails the test by its timeout instead of hanging pytest, and pytest's own signal handlers
stay out of the way. They exercise the very loop `make run` runs (fanout.local.__main__.serve).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fanout import localenv, topology
from fanout.local import state
from tests.support.checkout import STACK_CONFIGS

ROOT = Path(__file__).resolve().parents[2]

STRESS = textwrap.dedent(
    """
    import os, random, signal, sys, threading, time

    from fanout.local.__main__ import serve
    from fanout.signals import StopSignals

    trials, seed = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    busy = threading.Lock()
    main = threading.main_thread().ident

    def spin():  # other threads want the GIL, as the gateway and pollers do in a running stack
        while True:
            sum(range(2000))

    sys.setswitchinterval(0.0002)  # hand the GIL over often: signals land between more bytecodes, and fast
    threading.Thread(target=spin, daemon=True).start()

    def healthy():
        # Like Runtime.healthy(): a lock and a little work, so signals also land while a lock is held.
        with busy:
            sum(range(rng.randrange(10, 400)))
        return True

    worst, doubles = 0.0, 0
    for n in range(trials):
        forced = []
        double = n % 8 == 0
        sig = rng.choice([signal.SIGINT, signal.SIGTERM])
        delay = rng.uniform(0, 0.004)
        to_main = rng.random() < 0.5  # to the process (any thread gets it) or to the main thread itself

        returned = threading.Event()
        pause = rng.uniform(0, 0.002)

        def send():
            time.sleep(delay)
            signal.pthread_kill(main, sig) if to_main else os.kill(os.getpid(), sig)
            if double:
                # A second signal, as a user's second Ctrl+C: after the first was seen (two pending signals
                # of one kind merge into one, in the kernel and in Python), while the stop runs.
                returned.wait(5)
                time.sleep(pause)
                signal.pthread_kill(main, sig) if to_main else os.kill(os.getpid(), sig)

        with StopSignals(force=forced.append, grace=0) as signals:
            sender = threading.Thread(target=send)
            started = time.monotonic()
            sender.start()
            assert serve(signals, healthy, interval=rng.choice([0.0003, 0.001, 0.003, 1.0])) is True
            worst = max(worst, time.monotonic() - started - delay)
            returned.set()
            sender.join()
            deadline = time.monotonic() + 2
            while signals.count < (2 if double else 1) and time.monotonic() < deadline:
                time.sleep(0.0005)  # let the handler of a signal still in flight run before restoring
            assert signals.count == (2 if double else 1), (n, signals.count)
            assert forced == ([128 + sig] if double else []), (n, forced)
            doubles += double
    print(f"trials={trials} doubles={doubles} worst_ms={worst * 1000:.1f}")
    """
)


def _python(code: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FANOUT_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_main_loop_stops_on_every_signal_at_random_moments() -> None:
    started = time.monotonic()
    seed = str(time.time_ns() % 100_000)
    done = _python(STRESS, "600", seed, timeout=120)
    assert done.returncode == 0, f"seed {seed}: {done.stderr[-3000:]}"
    summary = dict(part.split("=") for part in done.stdout.split())
    assert summary["trials"] == "600" and int(summary["doubles"]) == 75
    # Each stop is noticed at once (the wakeup fd), not at the next poll: with a 1 s poll too, far below it.
    assert float(summary["worst_ms"]) < 250, summary
    assert time.monotonic() - started < 100


HUNG_STOP = textwrap.dedent(
    """
    import sys, time
    from fanout.local.__main__ import serve
    from fanout.signals import StopSignals, watchdog

    with StopSignals() as signals:
        print("ready", flush=True)
        assert serve(signals, lambda: True, interval=1.0)
        print("stopping", flush=True)
        if sys.argv[1] == "watchdog":
            watchdog(0.5, signals.force)
        time.sleep(60)  # a stop that hangs
    """
)


def _start(mode: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FANOUT_"))}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-c", HUNG_STOP, mode],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_second_signal_forces_the_exit_of_a_hung_stop() -> None:
    proc = _start("second-signal")
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "stopping"
        proc.send_signal(signal.SIGTERM)  # within the grace: the same request delivered twice, ignored
        time.sleep(0.8)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGINT
    assert err.strip() == "fanout: second signal (SIGINT), exiting now"


def test_a_stop_that_hangs_is_forced_by_the_watchdog() -> None:
    proc = _start("watchdog")
    try:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        proc.kill()
    assert proc.returncode == 1 and "stopping" in out
    assert "took longer than 0.5 s" in err and elapsed < 5


GIL_HELD = textwrap.dedent(
    """
    from fanout.signals import watchdog

    print("stopping", flush=True)
    watchdog(0.5)
    sum(range(10**14))  # one C call that never lets the GIL go: no other thread runs, the watchdog's neither
    """
)


def test_the_watchdog_fires_even_when_no_thread_can_get_the_gil() -> None:
    # Thousands of busy threads (a flood of connections) can starve a timer thread for minutes; the kernel's
    # timer ends the process all the same.
    started = time.monotonic()
    done = _python(GIL_HELD, timeout=20)
    assert done.stdout.strip() == "stopping"
    assert done.returncode == -signal.SIGALRM, (done.returncode, done.stderr)
    assert time.monotonic() - started < 5


INTERRUPTED_START = textwrap.dedent(
    """
    import os, signal, threading, time
    from fanout.signals import StopRequested, StopSignals

    with StopSignals() as signals:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        started = time.monotonic()
        try:
            with signals.interruptible():
                time.sleep(30)  # a slow start
        except StopRequested:
            print(f"cut short after {time.monotonic() - started:.1f} s; stopping={signals.stopping}")
    """
)


def test_a_signal_during_a_slow_start_cuts_it_short() -> None:
    done = _python(INTERRUPTED_START, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("cut short after 0.2 s; stopping=True", "cut short after 0.3 s; stopping=True")


# ---------------------------------------------------------------- the state dir's lock


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid  # reaped: no process has this pid now (pids are not reused this fast)


def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> state.LocalState:
    monkeypatch.setenv("FANOUT_STATE_DIR", str(tmp_path))
    return state.LocalState(tmp_path, topology.load("dev", STACK_CONFIGS), localenv.load())


def test_a_clean_stop_leaves_no_lock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = _state(tmp_path, monkeypatch)
    kept.lock()
    assert (tmp_path / state.LOCK).read_text() == str(os.getpid())
    kept.unlock()
    assert not (tmp_path / state.LOCK).exists()


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dead = _dead_pid()
    (tmp_path / state.LOCK).write_text(str(dead))
    kept = _state(tmp_path, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="fanout.local.state"):
        kept.lock()
    try:
        notes = [r.getMessage() for r in caplog.records]
        assert len(notes) == 1 and f"pid {dead}" in notes[0] and "no longer running" in notes[0], notes
        assert (tmp_path / state.LOCK).read_text() == str(os.getpid())
    finally:
        kept.unlock()


def test_a_held_lock_whose_pid_is_gone_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import fcntl

    # Something that is not a stack (a stray process that inherited the descriptor) holds the flock.
    (tmp_path / state.LOCK).write_text(str(_dead_pid()))
    stray = os.open(tmp_path / state.LOCK, os.O_RDWR)
    fcntl.flock(stray, fcntl.LOCK_EX | fcntl.LOCK_NB)
    kept = _state(tmp_path, monkeypatch)
    try:
        with caplog.at_level(logging.WARNING, logger="fanout.local.state"):
            kept.lock()
        assert any("is gone" in r.getMessage() for r in caplog.records)
        assert (tmp_path / state.LOCK).read_text() == str(os.getpid())
    finally:
        kept.unlock()
        os.close(stray)


def test_a_lock_held_by_a_live_stack_is_refused_naming_its_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _state(tmp_path, monkeypatch)
    first.lock()
    try:
        with pytest.raises(state.StateError, match=f"pid {os.getpid()}"):
            _state(tmp_path, monkeypatch).lock()
    finally:
        first.unlock()


# ---------------------------------------------------------------- the CLI's long-running commands


CLI_INTERRUPTED = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from fanout import cli

    # As in a terminal: a shell without job control starts background commands with SIGINT ignored, and
    # Python then keeps it ignored (CI may run the suite that way); Ctrl+C in a terminal is this default.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def slow(args):  # stands for a long generate/replay/redrive: plain Python, interrupted by Ctrl+C
        # The Ctrl+C comes once the command runs: under load, building the parser alone can take 0.3 s, and a
        # KeyboardInterrupt inside a third-party import may be swallowed there.
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        while True:
            time.sleep(0.01)

    cli.cmd_generate = slow
    sys.exit(cli.main(["generate", "--count", "5"]))
    """
)


def test_ctrl_c_ends_a_long_cli_command_with_one_line() -> None:
    # The CLI installs no handler of its own: SIGINT is Python's KeyboardInterrupt, SIGTERM the default exit.
    started = time.monotonic()
    done = _python(CLI_INTERRUPTED, timeout=30)
    assert done.returncode == 130 and done.stderr == "fanout: interrupted\n", done.stderr
    assert time.monotonic() - started < 20
