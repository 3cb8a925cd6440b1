"""Handler code run outside make run's function processes sees one function's variables, never the union."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import handlers.generator
from fanout import cli, localenv, topology
from fanout.local.runtime import function_environ, publisher_environ

CONFIG: dict[str, Any] = {
    "prefix": "fanout-envtest",
    "consumers": [
        {"name": "persister", "handler": "handlers.persister:handler"},
        {"name": "archive", "handler": "handlers.archive:handler"},
        {"name": "audit", "handler": "handlers.audit:handler", "environment": {"AUDIT_SECRET": "audit-only"}},
    ],
}
# Variables of other functions that the generator must not see.
OTHERS = ("TABLE_NAME", "EVENT_BUS_NAME", "ARCHIVE_BUCKET", "JWT_SECRET", "CURSOR_SECRET_ARN", "AUDIT_SECRET")


@pytest.fixture
def topo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> topology.Topology:
    built = topology.from_config("dev", CONFIG)  # a stack config of the test's own, never the user's
    monkeypatch.setattr(topology, "load", lambda stack="dev", root=None: built)
    for key in list(os.environ):
        if key.startswith("FANOUT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FANOUT_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("FANOUT_AWS_PORT", "14566")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return built


def test_fanout_generate_runs_the_generators_code_with_the_generators_environment(
    topo: topology.Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if an earlier command (or the shell) had left another function's variables behind.
    for name in OTHERS:
        monkeypatch.setenv(name, "left over")
    seen: dict[str, str] = {}

    def generate(count: int, users: list[str], seed: int | None = None) -> list[str]:
        seen.update(os.environ)
        return ["01K00000000000000000000000"] * count

    monkeypatch.setattr(handlers.generator, "generate", generate)
    assert cli.main(["generate", "--count", "1"]) == 0
    expected = function_environ(localenv.load(), topo, "generator")
    assert {k: seen.get(k) for k in expected} == expected
    assert seen["POWERTOOLS_SERVICE_NAME"] == "generator" and seen["TOPIC_ARN"].endswith(":fanout-envtest-data-events")
    assert [name for name in OTHERS if name in seen] == []


def test_replay_and_the_runtimes_own_process_hold_no_functions_variables(topo: topology.Topology) -> None:
    env = publisher_environ(localenv.load(), topo)
    assert set(env) == {
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "TOPIC_ARN",
    }
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:14566"
