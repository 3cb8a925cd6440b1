"""`fanout new-consumer`: writes a handler and a unit test that pass lint and tests as written, adds the
consumer to the stack config(s) keeping every other byte, and refuses bad names writing nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fanout import cli, new_consumer, topology
from tests.support.checkout import repo_copy

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = repo_copy(tmp_path / "repo", venv=False)
    monkeypatch.setattr(new_consumer, "ROOT", root)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def without_block(text: str, name: str) -> str:
    """The text with the block new-consumer inserted for `name` taken out again."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"# {name}: added by"))
    end = start + 1
    while end < len(lines) and (lines[end].startswith("      ") or lines[end].strip() == f"- name: {name}"):
        end += 1
    return "".join(lines[:start] + lines[end:])


def test_scaffold_passes_lint_and_its_own_test_with_no_edit(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (repo / "Pulumi.dev.yaml").read_text()
    assert cli.main(["new-consumer", "audit"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["handlers/audit.py", "tests/unit/test_audit.py", "Pulumi.dev.yaml"]
    after = (repo / "Pulumi.dev.yaml").read_text()
    # Every comment and line of the user's file is still there, in order; only the entry was added.
    assert without_block(after, "audit") == before
    added = topology.load("dev", repo).consumer("audit")
    assert added.handler == "handlers.audit:handler"
    assert added.filter_policy == {"type": ["fanout.data.generated.v1"]}
    assert [c.name for c in topology.load("dev", repo).consumers][:2] == ["persister", "archive"]
    files = ["handlers/audit.py", "tests/unit/test_audit.py"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for check in (["ruff", "format", "--check", *files], ["ruff", "check", *files]):
        done = subprocess.run([str(VENV_BIN / check[0]), *check[1:]], cwd=repo, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit/test_audit.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_bus_consumer_in_two_stacks(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {s: (repo / f"Pulumi.{s}.yaml").read_text() for s in ("dev", "prd")}
    assert cli.main(["new-consumer", "on-persisted", "--source", "bus", "--stack", "dev", "--stack", "prd"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "handlers/on_persisted.py",
        "tests/unit/test_on_persisted.py",
        "Pulumi.dev.yaml",
        "Pulumi.prd.yaml",
    ]
    for stack in ("dev", "prd"):
        text = (repo / f"Pulumi.{stack}.yaml").read_text()
        assert without_block(text, "on-persisted") == before[stack]
        c = topology.load(stack, repo).consumer("on-persisted")
        assert c.source == "bus" and c.filter_policy is None
        assert c.event_pattern == {"source": ["fanout.persister"], "detail-type": ["fanout.data.persisted.v1"]}
    assert "DataPersisted" in (repo / "handlers/on_persisted.py").read_text()


def test_several_types(repo: Path) -> None:
    argv = ["new-consumer", "both", "--type", "fanout.data.generated.v1", "--type", "fanout.data.persisted.v1"]
    assert cli.main(argv) == 0
    c = topology.load("dev", repo).consumer("both")
    assert c.filter_policy == {"type": ["fanout.data.generated.v1", "fanout.data.persisted.v1"]}
    assert "event: DataGenerated | DataPersisted" in (repo / "handlers/both.py").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bad name"], "invalid name 'bad name'"),
        (["9lives"], "must start with a letter"),
        (["class"], "must start with a letter"),
        (["core"], "invalid name 'core'"),
        (["persister"], "name 'persister' is taken"),
        (["archive"], "name 'archive' is taken"),
        (["api"], "name 'api' is taken: handlers/api.py exists"),
        (["a" * 60], "too long"),
        (["audit", "--type", "fanout.data.deleted.v1"], "unknown event type 'fanout.data.deleted.v1'"),
        (["audit", "--stack", "nope"], "no stack config Pulumi.nope.yaml"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = snapshot(repo)
    assert cli.main(["new-consumer", *argv]) != 0
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert snapshot(repo) == before


def test_a_name_taken_by_a_test_file_elsewhere_is_refused(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # tests/e2e/test_consumers.py exists: a second test_consumers.py would clash in pytest's module names.
    assert cli.main(["new-consumer", "consumers"]) != 0
    assert "tests/e2e/test_consumers.py exists" in capsys.readouterr().err


CONFIG_WITH_COMMENTS = """\
# The demo stack.
config:
  aws:region: eu-west-1   # where it runs
  fanout:consumers:
    # The persister, first.
    - name: persister
      handler: "handlers.persister:handler"   # quoted on purpose
      filterPolicy: {type: [fanout.data.generated.v1]}
    # - name: retired   (kept for history)
  # About the generator:
  fanout:generator: {enabled: false}
"""

CONFIG_LAST_KEY = """\
config:
  fanout:prefix: demo
  fanout:consumers:
  - name: persister
    handler: handlers.persister:handler
# trailing remark
"""

CONFIG_NO_CONSUMERS = """\
config:
  fanout:prefix: demo
  fanout:generator:
    enabled: false
  # last comment
"""


@pytest.mark.parametrize("text", [CONFIG_WITH_COMMENTS, CONFIG_LAST_KEY, CONFIG_NO_CONSUMERS])
def test_the_entry_lands_in_the_list_and_nothing_else_moves(tmp_path: Path, text: str) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    (tmp_path / "handlers").mkdir()
    (tmp_path / "tests").mkdir()
    made = new_consumer.plan("audit", None, "topic", None, tmp_path)
    updated = made.files[tmp_path / "Pulumi.dev.yaml"]
    kept = [line for line in updated.splitlines() if "audit" not in line and "fanout.data.generated.v1]" not in line]
    original = [line for line in text.splitlines() if "fanout.data.generated.v1]" not in line]
    assert [line for line in kept if line.strip() not in ("filterPolicy:", "fanout:consumers:")] == [
        line for line in original if line.strip() not in ("filterPolicy:", "fanout:consumers:")
    ]
    made.write(tmp_path)
    topo = topology.load("dev", tmp_path)
    assert [c.name for c in topo.consumers] == ["persister", "audit"]
    assert topo.consumer("audit").filter_policy == {"type": ["fanout.data.generated.v1"]}


def test_the_comment_above_the_next_key_stays_with_it(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text(CONFIG_WITH_COMMENTS)
    made = new_consumer.plan("audit", None, "topic", None, tmp_path)
    lines = made.files[tmp_path / "Pulumi.dev.yaml"].splitlines()
    assert lines.index("  # About the generator:") == lines.index("  fanout:generator: {enabled: false}") - 1
    assert lines.index("    # - name: retired   (kept for history)") < lines.index("    - name: audit")
