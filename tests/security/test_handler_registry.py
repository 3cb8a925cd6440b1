"""Which code a `fanout subscribe --handler` consumer runs: only what the holder of the run's secret
registered, in a 0600 file, and only from a directory (and module) that nobody else can change."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from fanout.local.registry import Registry, RegistryError, check

SECRET = "the-runs-secret"


@pytest.fixture
def code(tmp_path: Path) -> Path:
    where = tmp_path / "team"
    where.mkdir(mode=0o755)
    (where / "react.py").write_text("def handler(event, context):\n    return {}\n")
    (where / "pkg").mkdir()
    (where / "pkg" / "__init__.py").write_text("def handler(event, context):\n    return {}\n")
    return where


def test_a_private_directory_of_the_users_is_accepted(code: Path) -> None:
    check("react:handler", str(code))
    check("pkg:handler", str(code))
    check("handlers.archive:handler", None)  # from the project itself


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_directory_others_can_write_is_refused(code: Path, mode: int) -> None:
    code.chmod(mode)
    with pytest.raises(RegistryError, match="writable by group or others"):
        check("react:handler", str(code))


def test_a_module_others_can_write_is_refused(code: Path) -> None:
    (code / "react.py").chmod(0o666)
    with pytest.raises(RegistryError, match=r"module .*writable by group or others"):
        check("react:handler", str(code))
    (code / "pkg").chmod(0o777)
    with pytest.raises(RegistryError, match="writable by group or others"):
        check("pkg:handler", str(code))


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user needs root")
def test_a_directory_of_another_user_is_refused(code: Path) -> None:
    os.chown(code, 65534, 65534)
    with pytest.raises(RegistryError, match="belongs to uid 65534"):
        check("react:handler", str(code))


@pytest.mark.parametrize(
    ("handler", "path"),
    [("react", None), ("os:system; x", None), ("react:handler", "relative/dir"), ("react:handler", "/no/such/dir")],
)
def test_malformed_registrations_are_refused(handler: str, path: str | None) -> None:
    with pytest.raises(RegistryError):
        check(handler, path)


def test_only_the_runs_secret_registers_and_the_file_is_private(tmp_path: Path, code: Path) -> None:
    registry = Registry(tmp_path / "handlers.json", SECRET)
    body = {"name": "team", "handler": "react:handler", "path": str(code)}
    for wrong in ({}, {"secret": "guess"}, {"secret": 42}):
        status, _ = registry.handle(json.dumps({**body, **wrong}).encode())
        assert status == 403
    assert registry.entries() == {} and not (tmp_path / "handlers.json").exists()
    status, doc = registry.handle(json.dumps({**body, "secret": SECRET}).encode())
    assert status == 200 and doc["handler"] == "react:handler"
    assert stat.S_IMODE((tmp_path / "handlers.json").stat().st_mode) == 0o600
    # Kept across restarts: a new registry reads it back.
    assert Registry(tmp_path / "handlers.json", "next-run").entries()["team"].path == str(code)
    code.chmod(0o777)
    status, doc = registry.handle(json.dumps({**body, "name": "other", "secret": SECRET}).encode())
    assert status == 400 and "writable by group or others" in doc["message"]
    status, doc = registry.handle(json.dumps({"name": "team", "handler": None, "secret": SECRET}).encode())
    assert status == 200 and doc["removed"] and registry.entries() == {}


def test_a_cut_short_registry_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "handlers.json").write_text('{"team": {"handler": "react:ha')
    assert Registry(tmp_path / "handlers.json", SECRET).entries() == {}
    assert (tmp_path / "handlers.json.unreadable").exists()
