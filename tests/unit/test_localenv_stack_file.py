"""The CLI finds the stack running on its state dir (ports, region, stack, secret) with no FANOUT_* set."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fanout import localenv


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in list(os.environ):
        if key.startswith(("FANOUT_", "AWS_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FANOUT_STATE_DIR", str(tmp_path))
    return tmp_path


def _running(state_dir: Path, **changes: object) -> localenv.LocalEnv:
    env = dataclasses.replace(
        localenv.load(), port=18100, aws_port=14600, region="eu-north-1", stack="prd", jwt_secret="s" * 40, **changes
    )
    localenv.write_stack_file(env)
    return env


def test_the_cli_reaches_the_stack_of_its_state_dir(clean: Path) -> None:
    _running(clean)
    assert stat.S_IMODE((clean / localenv.STACK_FILE).stat().st_mode) == 0o600  # it holds the secret
    env = localenv.with_running_stack(localenv.load())
    assert (env.port, env.aws_port, env.region, env.stack, env.jwt_secret) == (
        18100,
        14600,
        "eu-north-1",
        "prd",
        "s" * 40,
    )
    assert localenv.for_cli().api_url == "http://127.0.0.1:18100"


def test_a_variable_that_is_set_wins(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _running(clean)
    monkeypatch.setenv("FANOUT_AWS_PORT", "14700")
    monkeypatch.setenv("FANOUT_JWT_SECRET", "t" * 40)
    env = localenv.with_running_stack(localenv.load())
    assert (env.port, env.aws_port, env.jwt_secret) == (18100, 14700, "t" * 40)
    monkeypatch.setenv("FANOUT_PORT", "18200")  # another stack: the file says nothing about it
    assert localenv.with_running_stack(localenv.load()).aws_port == 14700
    assert localenv.with_running_stack(localenv.load()).port == 18200


def test_a_file_left_by_a_stack_that_is_gone_is_ignored(clean: Path) -> None:
    _running(clean)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    doc = json.loads((clean / localenv.STACK_FILE).read_text())
    (clean / localenv.STACK_FILE).write_text(json.dumps({**doc, "pid": int(dead.stdout)}))
    assert localenv.with_running_stack(localenv.load()).port == 8000


def test_the_banner_names_a_state_dir_only_when_it_is_not_the_default(clean: Path) -> None:
    assert localenv.cli_command(localenv.load()) == f"FANOUT_STATE_DIR={clean} .venv/bin/fanout"
    default = dataclasses.replace(localenv.load(), state_dir=localenv.default_state_dir())
    assert localenv.cli_command(default) == ".venv/bin/fanout"
    odd = dataclasses.replace(localenv.load(), state_dir=clean / "a dir")
    assert localenv.cli_command(odd) == f"FANOUT_STATE_DIR='{clean}/a dir' .venv/bin/fanout"
