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
