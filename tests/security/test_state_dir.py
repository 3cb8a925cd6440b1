"""The state dir against another local user: created 0700, refused when others can write it or own it,
and no file in it opened through a link planted there. A state file cut short is named and set aside.

In-process, on moto's mock (no stack), except the `make run` refusal, which runs the real command.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fanout import consumers, localenv, topology
from fanout.local import state
from fanout.local.ledger import Ledger
from fanout.local.provision import provision
from tests.support.stack import ROOT, project_copy, stack_env


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> localenv.LocalEnv:
    for name in [k for k in os.environ if k.startswith(("AWS_", "FANOUT_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FANOUT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return localenv.load()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file of the developer's that a planted link points at (a shell rc file, a 0600 key)."""
    target = tmp_path / "precious"
    target.write_text("echo hello\n")
    target.chmod(0o600)
    return target


@pytest.fixture
def session(env: localenv.LocalEnv) -> Iterator[Any]:
    with mock_aws():
        s = boto3.session.Session(region_name=env.region)
        provision(topology.load("dev"), env, s)
        yield s


def _kept(env: localenv.LocalEnv) -> state.LocalState:
    return state.LocalState(env.state_dir, topology.load("dev"), env)


# ------------------------------------------------------------------------------------ the dir itself
def test_the_state_dir_is_created_private(env: localenv.LocalEnv) -> None:
    kept = _kept(env)
    kept.lock()
    try:
        assert stat.S_IMODE(env.state_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((env.state_dir / ".lock").stat().st_mode) == 0o600
        with_keys = kept.new_credentials()
        assert localenv.read_credentials(env.state_dir) == (with_keys.access_key_id, with_keys.secret_access_key)
        assert stat.S_IMODE((env.state_dir / "credentials.json").stat().st_mode) == 0o600
    finally:
        kept.unlock()
    assert localenv.read_credentials(env.state_dir) is None  # a stopped stack's keys are gone with it


def test_a_state_dir_others_can_write_is_refused(env: localenv.LocalEnv) -> None:
    env.state_dir.mkdir(mode=0o777)
    env.state_dir.chmod(0o777)
    with pytest.raises(state.StateError, match="writable by group or others"):
        _kept(env).lock()
    assert not (env.state_dir / ".lock").exists()


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user needs root")
def test_a_state_dir_owned_by_someone_else_is_refused(env: localenv.LocalEnv) -> None:
    env.state_dir.mkdir(mode=0o700)
    os.chown(env.state_dir, 65534, 65534)
    with pytest.raises(state.StateError, match="belongs to uid 65534"):
        _kept(env).lock()


def test_make_run_refuses_it_in_one_line(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "fanout.local"],
        cwd=project_copy(),
        env=stack_env(shared),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "writable by group or others" in lines[0] and str(shared) in lines[0], done.stderr


# ------------------------------------------------------------------------------------ planted links
def test_a_planted_lock_link_is_not_followed(env: localenv.LocalEnv, outside: Path) -> None:
    env.state_dir.mkdir(mode=0o700)
    (env.state_dir / ".lock").symlink_to(outside)
    with pytest.raises(state.StateError, match="symbolic link"):
        _kept(env).lock()
    assert outside.read_text() == "echo hello\n"


def test_planted_tmp_links_are_not_written_through(env: localenv.LocalEnv, outside: Path, session: Any) -> None:
    topo = topology.load("dev")
    kept = _kept(env)
    kept.lock()
    try:
        kept.ledger = Ledger()  # saved with each snapshot, through trace.json.tmp
        assert kept.restore(session)["items"] == 0
        key = "events/dt=2026-01-01/a.ndjson"
        session.client("s3").put_object(Bucket=topo.archive_bucket_name, Key=key, Body=b'{"id":"a"}\n')
        mirror = env.state_dir / "s3" / topo.archive_bucket_name / "events" / "dt=2026-01-01"
        mirror.mkdir(parents=True)
        planted = [
            env.state_dir / "consumers.json.tmp",
            env.state_dir / "trace.json.tmp",
            env.state_dir / "tables" / f"{topo.table_name}.jsonl.tmp",
            mirror / "a.ndjson.tmp",
        ]
        (env.state_dir / "tables").mkdir()
        for link in planted:
            link.symlink_to(outside)
        assert kept.snapshot(session)
    finally:
        kept.unlock()
    assert outside.read_text() == "echo hello\n"
    assert (mirror / "a.ndjson").read_bytes() == b'{"id":"a"}\n' and not (mirror / "a.ndjson").is_symlink()
    assert not (env.state_dir / "consumers.json").is_symlink()
    for written in (env.state_dir / "consumers.json", mirror / "a.ndjson"):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_a_planted_archive_link_is_not_uploaded(env: localenv.LocalEnv, outside: Path, session: Any) -> None:
    topo = topology.load("dev")
    mirror = env.state_dir / "s3" / topo.archive_bucket_name / "events"
    mirror.mkdir(parents=True)
    (mirror / "stolen.ndjson").symlink_to(outside)
    (mirror / "dir-link").symlink_to(outside.parent, target_is_directory=True)
    (mirror / "real.ndjson").write_bytes(b'{"id":"r"}\n')
    assert _kept(env).restore(session)["objects"] == 1
    listed = session.client("s3").list_objects_v2(Bucket=topo.archive_bucket_name).get("Contents", [])
    assert [o["Key"] for o in listed] == ["events/real.ndjson"]


def test_a_planted_mirror_dir_link_is_not_written_through(env: localenv.LocalEnv, tmp_path: Path, session: Any) -> None:
    topo = topology.load("dev")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    kept = _kept(env)
    kept.lock()
    try:
        kept.restore(session)
        session.client("s3").put_object(Bucket=topo.archive_bucket_name, Key="events/x.ndjson", Body=b"{}\n")
        (env.state_dir / "s3" / topo.archive_bucket_name).mkdir(parents=True)
        (env.state_dir / "s3" / topo.archive_bucket_name / "events").symlink_to(elsewhere, target_is_directory=True)
        kept.snapshot(session)
    finally:
        kept.unlock()
    assert list(elsewhere.iterdir()) == []


# ------------------------------------------------------------------------------------ cut short
def test_a_truncated_state_file_is_named_and_set_aside(
    env: localenv.LocalEnv, session: Any, caplog: pytest.LogCaptureFixture
) -> None:
    topo = topology.load("dev")
    env.state_dir.mkdir(mode=0o700)
    (env.state_dir / "tables").mkdir()
    (env.state_dir / "tables" / f"{topo.table_name}.jsonl").write_text('{"pk":{"S":"USER#a"},"sk":{"S":"DA')
    (env.state_dir / "consumers.json").write_text('[{"name": "extra", "queue_na')
    (env.state_dir / "queues.json").write_bytes(b'{"q": [{"body": "\xff')
    with caplog.at_level(logging.WARNING, logger="fanout.local.state"):
        counts = _kept(env).restore(session)
    assert counts == {"items": 0, "objects": 0, "consumers": 0, "messages": 0}
    said = [r.getMessage() for r in caplog.records]
    for name in (f"tables/{topo.table_name}.jsonl", "consumers.json", "queues.json"):
        path = env.state_dir / name
        assert any(str(path) in line and "unreadable" in line for line in said), (name, said)
        assert not path.exists() and path.with_name(path.name + ".unreadable").exists()  # kept, never deleted
    assert consumers.discover(session.client("sqs"), session.client("sns"), env.topic_arn(topo.topic_name))


def test_fanout_env_without_a_stack_says_so(env: localenv.LocalEnv) -> None:
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "fanout"), "env"],
        env={**os.environ, "FANOUT_PORT": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "no credentials of a running stack" in done.stderr
