"""Functions locally, as on Lambda: one invocation per message at a time, a real timeout, a clean Ctrl+C,
code that does not load never burns a receive, and a stop that leaves no process behind.

The stack runs from a copy of the repository whose stack config has probe consumers. Each probe's
handler appends what it saw to a log file (event id, the record's receive count, the time), and waits
while a control file exists, so a test can hold an invocation in flight.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import descendants, post, wait_for
from tests.support.checkout import repo_copy
from tests.support.stack import Stack, finish_output, launch, running_stack

pytestmark = pytest.mark.e2e

PROBE = '''\
"""Probe consumers of the e2e tests: each appends what it saw to CONTROL/<name>.log."""

import json
import os
import subprocess
import time

CONTROL = {control!r}


def _log(name, text):
    with open(os.path.join(CONTROL, name + ".log"), "a", encoding="utf-8") as fh:
        fh.write(text + "\\n")


def _run(name, event, nap=0.0):
    for r in event["Records"]:
        _log(name, f"start {{json.loads(r['body'])['id']}} {{r['attributes']['ApproximateReceiveCount']}} "
             f"{{time.time():.3f}} {{os.getpid()}}")
    time.sleep(nap)
    while os.path.exists(os.path.join(CONTROL, name + ".block")):
        time.sleep(0.05)
    _log(name, "end")
    return {{"batchItemFailures": []}}


def slow(event, context):
    return _run("slow", event, nap=8)


def held(event, context):
    return _run("held", event)


def overtime(event, context):
    return _run("overtime", event, nap=20)


def spawn(event, context):
    child = subprocess.Popen(["sleep", "300"])
    _log("spawn", str(child.pid))
    return _run("spawn", event)
'''

MENDING = '''\
"""Does not import while CONTROL/mending.broken exists."""

import json
import os

CONTROL = {control!r}
if os.path.exists(os.path.join(CONTROL, "mending.broken")):
    raise RuntimeError("not fixed yet")


def handler(event, context):
    with open(os.path.join(CONTROL, "mending.log"), "a", encoding="utf-8") as fh:
        for r in event["Records"]:
            fh.write(f"start {{json.loads(r['body'])['id']}} {{r['attributes']['ApproximateReceiveCount']}}\\n")
    return {{"batchItemFailures": []}}
'''

HANG = '''\
"""An init that never ends."""

import os
import time

with open(os.path.join({control!r}, "hang.pid"), "w", encoding="utf-8") as fh:
    fh.write(str(os.getpid()))
time.sleep(600)


def handler(event, context):
    return {{}}
'''


def _consumer(name: str, handler: str, *, timeout: int = 30, receives: int = 3) -> str:
    return textwrap.indent(
        textwrap.dedent(
            f"""\
            - name: probe-{name}
              handler: {handler}
              timeoutSeconds: {timeout}
              maxReceiveCount: {receives}
              filterPolicy:
                subject: [probe-{name}]
            """
        ),
        "    ",
    )


PROBES = (
    _consumer("slow", "handlers.e2e_probe:slow")
    + _consumer("held", "handlers.e2e_probe:held")
    + _consumer("overtime", "handlers.e2e_probe:overtime", timeout=2, receives=2)
    + _consumer("mending", "handlers.e2e_mending:handler", receives=2)
)


def _with_consumers(repo: Path, entries: str) -> None:
    config = repo / "Pulumi.dev.yaml"
    text = config.read_text()
    anchor = "  fanout:consumers:\n"
    assert anchor in text
    config.write_text(text.replace(anchor, anchor + entries, 1))


def _checkout(root: Path) -> tuple[Path, Path]:
    repo, control = repo_copy(root / "repo"), root / "control"
    control.mkdir()
    (repo / "handlers" / "e2e_probe.py").write_text(PROBE.format(control=str(control)))
    (repo / "handlers" / "e2e_mending.py").write_text(MENDING.format(control=str(control)))
    return repo, control


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    (tmp_path / "repo").mkdir()
    repo, control = _checkout(tmp_path)
    _with_consumers(repo, PROBES)
    yield repo, control


def _log(control: Path, name: str) -> list[list[str]]:
    path = control / f"{name}.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _trace(stack: Stack, event_id: str) -> dict[str, Any]:
    return json.loads(stack.cli("trace", event_id, "--json").stdout)


def _dlq(stack: Stack, name: str) -> list[Any]:
    return json.loads(stack.cli("dlq", "show", name, "--json").stdout)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_slow_handler_runs_once_and_one_past_its_timeout_is_stopped(
    checkout: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, control = checkout
    # A 1 s queue visibility timeout: without a hold on the batch in flight it would be delivered again at once.
    with running_stack(tmp_path / "state", cwd=repo, FANOUT_VISIBILITY_TIMEOUT="1") as stack:
        slow = post(stack, "probe-slow").json()["id"]
        over = post(stack, "probe-overtime").json()["id"]
        wait_for(lambda: ["end"] in _log(control, "slow"), timeout=40, interval=0.5)
        wait_for(lambda: _dlq(stack, "probe-overtime"), timeout=40, interval=0.5)
        time.sleep(3)  # a second delivery of the slow one would have started by now
        starts = [line for line in _log(control, "slow") if line[0] == "start"]
        assert [s[1:3] for s in starts] == [[slow, "1"]], starts  # one invocation, at its first receive
        assert _trace(stack, slow)["consumers"]["probe-slow"] == {"state": "processed", "attempts": 1}

        # Past its 2 s timeout: stopped (its process killed), the attempt failed; its retry never overlapped it.
        over_starts = [line for line in _log(control, "overtime") if line[0] == "start"]
        assert [s[1:3] for s in over_starts] == [[over, "1"], [over, "2"]], over_starts
        assert ["end"] not in _log(control, "overtime")
        assert float(over_starts[1][3]) - float(over_starts[0][3]) >= 2
        assert not _alive(int(over_starts[0][4]))
        assert [m["body"]["id"] for m in _dlq(stack, "probe-overtime")] == [over]
        assert _trace(stack, over)["consumers"]["probe-overtime"] == {"state": "dlq", "attempts": 2}
        out = stack.text()
        assert "timed out after 2.00 seconds" in out, out[-3000:]


def test_ctrl_c_mid_invocation_is_a_clean_stop(checkout: tuple[Path, Path], tmp_path: Path) -> None:
    repo, control = checkout
    state = tmp_path / "state"
    (control / "held.block").touch()
    (control / "mending.broken").touch()
    first = launch(state, cwd=repo, FANOUT_SNAPSHOT_SECONDS="1")
    try:
        family = descendants(first.proc.pid)
        held = post(first, "probe-held").json()["id"]
        waiting = [post(first, "probe-mending").json()["id"] for _ in range(2)]
        wait_for(lambda: _log(control, "held"), timeout=30)  # its invocation is in flight
        family += descendants(first.proc.pid)
        started = time.monotonic()
        os.killpg(first.proc.pid, signal.SIGINT)  # what a terminal's Ctrl+C does: the whole foreground group
        first.proc.wait(10)
        elapsed = time.monotonic() - started
        out = finish_output(first)
    finally:
        if first.proc.poll() is None:
            os.killpg(first.proc.pid, signal.SIGKILL)
            first.proc.wait(5)
    print(f"Ctrl+C with a handler mid-invocation: stopped in {elapsed:.2f} s")
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"
    assert "Traceback" not in out and "KeyboardInterrupt" not in out and "FunctionCrashed" not in out, out[-3000:]
    assert "fanout: stopping" in out and "exiting now" not in out, out[-3000:]
    assert "failed" not in out.split("fanout: stopping", 1)[1], out[-3000:]  # no attempt failed by the stop
    time.sleep(0.3)
    assert [p for p in set(family) if _alive(p)] == []
    assert _log(control, "held") and ["end"] not in _log(control, "held")

    (control / "held.block").unlink()
    with running_stack(state, cwd=repo) as second:
        # The message cut short comes back untouched: handled at what is again its first receive, once.
        wait_for(lambda: ["end"] in _log(control, "held"), timeout=30)
        starts = [line[1:3] for line in _log(control, "held") if line[0] == "start"]
        assert starts == [[held, "1"], [held, "1"]], starts
        assert _trace(second, held)["consumers"]["probe-held"] == {"state": "processed", "attempts": 1}
        assert _dlq(second, "probe-held") == []

        # Code that did not import at either start: its messages waited, no receive counted; a fix runs them.
        assert not _log(control, "mending")
        (control / "mending.broken").unlink()
        source = repo / "handlers" / "e2e_mending.py"
        source.write_text(source.read_text() + "\n")  # a saved fix
        wait_for(lambda: len(_log(control, "mending")) >= 2, timeout=30)
        time.sleep(1)
        assert sorted(_log(control, "mending")) == sorted([["start", w, "1"] for w in waiting])
        assert _dlq(second, "probe-mending") == []


def test_sigterm_leaves_no_process_behind(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    repo, control = _checkout(tmp_path)
    (repo / "handlers" / "e2e_hang.py").write_text(HANG.format(control=str(control)))
    with running_stack(tmp_path / "state", cwd=repo) as stack:
        family = descendants(stack.proc.pid)
        # Added while it runs: a handler that starts a child of its own, and one whose init never ends.
        _with_consumers(
            repo, _consumer("spawn", "handlers.e2e_probe:spawn") + _consumer("hang", "handlers.e2e_hang:handler")
        )
        wait_for(lambda: "probe-spawn" in stack.cli("status", "--json").stdout, timeout=30, interval=0.5)
        post(stack, "probe-spawn")
        wait_for(lambda: (control / "hang.pid").exists() and ["end"] in _log(control, "spawn"), timeout=30)
        spawned, hung = int(_log(control, "spawn")[0][0]), int((control / "hang.pid").read_text())
        family += descendants(stack.proc.pid)
        assert _alive(spawned) and _alive(hung)
        started = time.monotonic()
        stack.proc.send_signal(signal.SIGTERM)
        stack.proc.wait(10)
        elapsed = time.monotonic() - started
        out = finish_output(stack)
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"
    assert "Traceback" not in out.split("fanout: stopping", 1)[1], out[-3000:]
    time.sleep(0.3)
    left = [p for p in {*family, spawned, hung} if _alive(p)]
    assert left == [], f"left behind: {left}"
