"""`fanout schemas check`: the command a CI pipeline runs, from a copy of a checkout, offline."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _checkout(tmp_path: Path) -> Path:
    """The parts of a checkout the command reads, copied so a test can break them."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "schemas", copy / "schemas")
    shutil.copytree(ROOT / "tests/contract/published", copy / "tests/contract/published")
    shutil.copytree(ROOT / "tests/contract/fixtures", copy / "tests/contract/fixtures")
    return copy


def _run(cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fanout.cli", "schemas", "check", *extra],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _edit(path: Path, change) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")


def test_the_checkout_as_it_is_passes(tmp_path: Path) -> None:
    done = _run(_checkout(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "5 published schema(s)" in done.stdout


@pytest.mark.parametrize(
    ("file", "change", "expected"),
    [
        (
            "data.v1.json",
            lambda s: s["properties"]["informationOne"].update(maxLength=10),
            "data.v1.json: $.informationOne: maxLength lowered to 10",
        ),
        (
            "data.v1.json",
            lambda s: s["required"].append("informationThree"),
            "data.v1.json: $: now requires ['informationThree']",
        ),
        (
            "cloudevent.v1.json",
            lambda s: s["properties"]["subject"].update(maxLength=3),
            "fanout.data.generated.v1.json: $.allOf[0].subject: maxLength lowered to 3",
        ),
    ],
)
def test_a_narrowing_change_fails_naming_schema_and_field(tmp_path: Path, file: str, change, expected: str) -> None:
    repo = _checkout(tmp_path)
    _edit(repo / "schemas" / file, change)
    done = _run(repo)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert expected in lines, lines
    assert not any(line.startswith("Traceback") for line in lines)


def test_a_widening_change_passes(tmp_path: Path) -> None:
    repo = _checkout(tmp_path)
    _edit(repo / "schemas/data.v1.json", lambda s: s["properties"]["informationOne"].update(maxLength=4096))
    assert _run(repo).returncode == 0


def test_a_change_that_rejects_a_published_sample_is_named_with_the_sample(tmp_path: Path) -> None:
    repo = _checkout(tmp_path)
    # A keyword the structural check cannot reason about is reported, and the sample it rejects too.
    _edit(repo / "schemas/data.v1.json", lambda s: s["properties"]["informationOne"].update(format="email"))
    sample = repo / "tests/contract/fixtures/fanout.data.generated.v1/minimal.json"
    done = _run(repo)
    assert done.returncode == 1
    assert "data.v1.json: $.informationOne: keyword 'format' added or changed" in done.stderr
    _edit(repo / "schemas/data.v1.json", lambda s: s["properties"]["informationOne"].pop("format"))
    _edit(repo / "schemas/data.v1.json", lambda s: s["properties"]["informationOne"].update(maxLength=1))
    done = _run(repo)
    assert f"rejects published sample {sample.name}: $.data.informationOne:" in done.stderr


def test_a_removed_published_schema_is_a_break(tmp_path: Path) -> None:
    repo = _checkout(tmp_path)
    (repo / "schemas/item.v1.json").unlink()
    (repo / "schemas/fanout.data.persisted.v1.json").unlink()
    done = _run(repo)
    assert done.returncode == 1
    assert any(line.startswith("item.v1.json: was published and is gone") for line in done.stderr.splitlines())


def test_no_schemas_directory_is_one_clear_line(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "fanout: error: no schema directory schemas"
