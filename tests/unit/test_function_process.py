"""A local function is its own process (fanout.local.environments.FunctionProcess): its own environment,
real timeouts, crash isolation, reload without losing what runs, an import error reported once."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fanout.local.environments import FunctionBroken, FunctionError, FunctionProcess, FunctionTimeout
from fanout.local.lambda_context import LocalContext

HANDLER = """\
import os
import time

VERSION = "{version}"


def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("crash"):
        os._exit(3)
    if event.get("fail"):
        raise ValueError("Unauthorized")
    own = {{k: v for k, v in os.environ.items() if k.startswith("X_")}}
    return {{"version": VERSION, "pid": os.getpid(), "env": own}}
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "team_fn.py").write_text(HANDLER.format(version="v1"))
    return tmp_path


@pytest.fixture
def function(code: Path) -> Any:
    reports: list[str] = []
    fn = FunctionProcess(
        "team",
        "team_fn:handler",
        {"PATH": os.environ.get("PATH", ""), "X_OWN": "mine"},
        slots=2,
        timeout_seconds=5,
        paths=[str(code)],
        on_broken=lambda name, error: reports.append(f"{name}: {error}"),
    )
    fn.reports = reports
    yield fn
    fn.kill()


def ctx(timeout: int = 5) -> LocalContext:
    return LocalContext(function_name="team", region="us-east-1", timeout_seconds=timeout)


def test_the_function_sees_its_own_environment_only(function: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_PARENT_ONLY", "leak")
    assert function({}, ctx())["env"] == {"X_OWN": "mine"}


def test_errors_keep_their_message(function: Any) -> None:
    with pytest.raises(FunctionError) as err:
        function({"fail": True}, ctx())
    assert str(err.value) == "Unauthorized" and err.value.kind == "ValueError" and "ValueError" in err.value.trace


def test_a_handler_past_its_timeout_is_stopped_and_the_next_call_starts_afresh(function: Any) -> None:
    before = function({}, ctx())["pid"]
    started = time.monotonic()
    with pytest.raises(FunctionTimeout, match=r"timed out after 1\.00 seconds"):
        function({"sleep": 30}, ctx(timeout=1))
    assert time.monotonic() - started < 5
    assert function({}, ctx())["pid"] != before


def test_a_crash_fails_its_invocation_only_and_the_function_comes_back(function: Any) -> None:
    with pytest.raises(FunctionError, match="exited"):
        function({"crash": True}, ctx())
    assert function({}, ctx())["version"] == "v1"


def test_reload_switches_to_new_code_while_a_running_invocation_finishes_on_the_old(function: Any, code: Path) -> None:
    function.start()
    slow: list[Any] = []
    running = threading.Thread(target=lambda: slow.append(function({"sleep": 1.5}, ctx())))
    running.start()
    time.sleep(0.3)
    (code / "team_fn.py").write_text(HANDLER.format(version="v2"))
    assert function.uses({str(code / "team_fn.py")})
    function.reload()
    assert function({}, ctx())["version"] == "v2"
    running.join(10)
    assert slow and slow[0]["version"] == "v1"


def test_two_saves_in_one_second_of_the_same_size_both_load(function: Any, code: Path) -> None:
    # A bytecode cache checks mtime seconds and size; what live reload watches compiles from source.
    for version in ("v2", "v3", "v4"):
        (code / "team_fn.py").write_text(HANDLER.format(version=version))
        function.reload()
        assert function({}, ctx())["version"] == version


def test_code_that_does_not_import_is_reported_once_until_fixed(function: Any, code: Path) -> None:
    function.start()
    (code / "team_fn.py").write_text(HANDLER.format(version="v2") + "\nthis is not python(\n")
    function.reload()
    for _ in range(3):
        with pytest.raises(FunctionBroken, match=r"team_fn.py line \d+: SyntaxError"):
            function({}, ctx())
    assert len(function.reports) == 1 and function.reports[0].startswith("team: team_fn.py line")
    assert function.broken is not None
    (code / "team_fn.py").write_text(HANDLER.format(version="v3"))
    function.reload()
    assert function.broken is None and function({}, ctx())["version"] == "v3"


def test_only_functions_that_loaded_a_file_are_reloaded(function: Any, code: Path, tmp_path: Path) -> None:
    function.start()
    assert function.uses({str(code / "team_fn.py")})
    assert not function.uses({str(tmp_path / "elsewhere.py")})


LIBRARY_WITH_CLASS_STATE = """\
class Router:
    current = None  # as Powertools' BaseRouter.current_event: set on the class by each resolve()
"""

RESOLVING_HANDLER = """\
import time

import shared_router


def handler(event, context):
    shared_router.Router.current = event
    time.sleep(0.05)  # the handler's work, between reading the request and answering it
    return shared_router.Router.current["n"]
"""


def test_concurrent_invocations_never_see_each_others_request(tmp_path: Path) -> None:
    # Each concurrent invocation has an execution environment of its own, library state included; in threads
    # of one process, 300 concurrent POSTs once stored bodies under each other's ids.
    (tmp_path / "shared_router.py").write_text(LIBRARY_WITH_CLASS_STATE)
    (tmp_path / "resolving_fn.py").write_text(RESOLVING_HANDLER)
    fn = FunctionProcess(
        "resolving",
        "resolving_fn:handler",
        {"PATH": os.environ.get("PATH", "")},
        slots=4,
        timeout_seconds=10,
        paths=[str(tmp_path)],
    )
    try:
        fn.start()
        assert len(set(fn.pids())) == 4, "one process per environment"
        results: dict[int, Any] = {}

        def call(n: int) -> None:
            results[n] = fn({"n": n}, ctx(10))

        threads = [threading.Thread(target=call, args=(n,)) for n in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == {n: n for n in range(24)}
    finally:
        fn.kill()


# ---------------------------------------------------------------- process groups, output, memory, the stop

BEHAVING = """\
import os
import subprocess
import sys
import time


def handler(event, context):
    if event.get("spawn"):
        child = subprocess.Popen(["sleep", "300"])
        return {"child": child.pid}
    if event.get("print"):
        sys.stdout.buffer.write(b"bad byte \\xff then \\x1b]0;owned\\x07 title\\n")
        sys.stdout.buffer.write(b"x" * (8 * 1024 * 1024) + b"\\n")  # far past what a pipe holds
        sys.stdout.flush()
        return {"printed": True}
    if event.get("allocate_mb"):
        block = bytearray(event["allocate_mb"] * 1024 * 1024)
        return {"allocated": len(block) // (1024 * 1024)}
    if event.get("sleep"):
        time.sleep(event["sleep"])
    import boto3  # what a handler loads under its memory size

    boto3.client("sqs", region_name="us-east-1")
    return {"pid": os.getpid(), "group": os.getpgid(0), "session": os.getsid(0)}
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def behaving(tmp_path: Path) -> Any:
    (tmp_path / "behaving_fn.py").write_text(BEHAVING)
    fn = FunctionProcess(
        "behaving",
        "behaving_fn:handler",
        {"PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"},
        timeout_seconds=10,
        paths=[str(tmp_path)],
    )
    yield fn
    fn.kill()


def test_each_environment_is_its_own_session_out_of_reach_of_a_terminals_ctrl_c(behaving: Any) -> None:
    # A terminal's Ctrl+C signals its foreground process group: the runtime's, never a worker's.
    got = behaving({}, ctx(10))
    assert got["group"] == got["pid"] == got["session"] and got["group"] != os.getpgid(0)


def test_what_a_handler_starts_goes_with_its_environment(behaving: Any) -> None:
    child = behaving({"spawn": True}, ctx(10))["child"]
    assert _alive(child)
    behaving.stop()
    assert not _alive(child)


def test_a_handler_past_its_timeout_goes_with_what_it_started(behaving: Any) -> None:
    child = behaving({"spawn": True}, ctx(10))["child"]
    with pytest.raises(FunctionTimeout):
        behaving({"sleep": 30}, ctx(1))
    assert not _alive(child)


def test_any_bytes_a_handler_prints_are_relayed_and_it_goes_on(
    behaving: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert behaving({"print": True}, ctx(10)) == {"printed": True}
    assert behaving({}, ctx(10))["pid"]  # the relay still reads: the next invocation is not blocked
    assert time.monotonic() - started < 8
    deadline = time.monotonic() + 5
    out = ""
    while "line cut" not in out and time.monotonic() < deadline:
        time.sleep(0.1)
        out += capsys.readouterr().out
    assert "bad byte \ufffd then \\x1b]0;owned\\x07 title" in out and "\x1b" not in out
    assert f"[line cut: {8 * 1024 * 1024 - 256 * 1024} more bytes]" in out


def test_the_memory_size_applies_as_on_lambda(behaving: Any) -> None:
    assert behaving({}, ctx(10))["pid"]  # boto3 and a client load within 128 MB
    assert behaving({"allocate_mb": 40}, ctx(10)) == {"allocated": 40}
    with pytest.raises(FunctionError) as err:
        behaving({"allocate_mb": 1536}, ctx(10))
    assert err.value.kind == "MemoryError"


def test_an_invocation_cut_short_by_the_stop_is_not_the_handlers_failure(
    behaving: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fanout.local import environments

    monkeypatch.setattr(environments, "_stopping", False)  # kill_all sets it: back for the other tests
    behaving.start()
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            behaving({"sleep": 30}, ctx(60))
        except BaseException as exc:
            outcome.append(exc)

    running = threading.Thread(target=call)
    running.start()
    time.sleep(0.5)
    environments.kill_all()
    running.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], environments.FunctionStopped)
    with pytest.raises(environments.FunctionStopped):  # and none starts again while the stack stops
        behaving({}, ctx(10))
