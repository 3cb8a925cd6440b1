"""The two wheels of `make dist`, installed into a clean virtualenv outside any checkout, and a consumer run there."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"  # `make install`: the kit's dependencies, pinned, as wheels

CONSUMER = """
import json, sys
import fanout_kit
from fanout_kit import DataGenerated, consumer
from fanout_kit.testing import failures, lambda_context, new_event, sqs_event

seen = []

@consumer(DataGenerated)
def handler(event: DataGenerated) -> None:
    seen.append(event.data.information_one)

batch = sqs_event(new_event(DataGenerated, subject="alice"), "poison")
answer = handler(batch, lambda_context())
try:
    import handlers  # noqa: F401
    handlers_importable = True
except ImportError:
    handlers_importable = False
print(json.dumps({
    "failures": sorted(failures(answer)),
    "poison": batch["Records"][1]["messageId"],
    "seen": seen,
    "kit": fanout_kit.__file__,
    "handlers_importable": handlers_importable,
    "path": sys.path,
}))
"""


def run(cmd: list[str | Path], cwd: Path) -> str:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{cmd}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dist = tmp_path_factory.mktemp("dist")
    run(["make", "-s", "dist", f"DIST={dist}"], ROOT)
    return {p.name.split("-")[0]: p for p in dist.glob("*.whl")}


def test_make_dist_writes_both_wheels_the_kit_with_its_schemas_and_without_the_project(
    wheels: dict[str, Path],
) -> None:
    assert set(wheels) == {"fanout_kit", "fanout_subscriber"}
    assert wheels["fanout_kit"].name.endswith("-py3-none-any.whl")
    names = zipfile.ZipFile(wheels["fanout_kit"]).namelist()
    schemas = sorted(n.removeprefix("fanout_kit/event_schemas/") for n in names if "/event_schemas/" in n)
    assert schemas == sorted(p.name for p in (ROOT / "schemas").glob("*.json"))
    assert "fanout_kit/testing.py" in names
    assert not [n for n in names if n.startswith(("handlers/", "fanout/", "infra/"))]
    sub = zipfile.ZipFile(wheels["fanout_subscriber"]).namelist()
    assert "fanout_subscriber/consumer.py" in sub
    assert not [n for n in sub if not n.startswith(("fanout_subscriber/", "fanout_subscriber-"))]


def test_the_wheels_install_in_a_clean_virtualenv_and_a_consumer_reports_only_the_poison_record(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    assert (WHEELHOUSE / ".done").is_file(), "run `make install` (it fills .venv/wheelhouse)"
    elsewhere = tmp_path / "elsewhere"  # cwd outside the repository, nothing of the checkout on the path
    elsewhere.mkdir()
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], elsewhere)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check", "install", "--quiet"]
    # The kit with its dependencies, resolved by pip from the pinned wheels only (no index).
    run([*pip, "--no-index", "--find-links", WHEELHOUSE, wheels["fanout_kit"]], elsewhere)
    # The subscriber's dependencies (Pulumi and its AWS provider, 270 MB) are left out here; its
    # requirements are checked against the project's pins below.
    run([*pip, "--no-deps", "--no-index", wheels["fanout_subscriber"]], elsewhere)
    out = run([python, "-I", "-c", CONSUMER], elsewhere)
    answer = json.loads(out.splitlines()[-1])  # the kit logs to stdout before it
    assert answer["failures"] == [answer["poison"]]
    assert answer["seen"] == ["one"]
    assert answer["kit"].startswith(str(venv))
    assert not answer["handlers_importable"]
    assert not [p for p in answer["path"] if p.startswith(str(ROOT))]
    found = run(
        [python, "-I", "-c", "import importlib.util as u; print(u.find_spec('fanout_subscriber').origin)"], elsewhere
    )
    assert found.strip().startswith(str(venv))


def test_the_wheels_require_ranges_that_hold_the_project_pins(wheels: dict[str, Path]) -> None:
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "requirements-dev.lock").read_text().splitlines():
        if "==" in line and not line[0].isspace():
            name, version = line.split(" ")[0].split("==")
            pins[name.lower()] = version
    for wheel in wheels.values():
        with zipfile.ZipFile(wheel) as zf:
            meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            requires = [
                line.split(": ", 1)[1]
                for line in zf.read(meta).decode().splitlines()
                if line.startswith("Requires-Dist: ")
            ]
        assert requires, wheel.name
        for raw in requires:
            req = Requirement(raw)
            assert req.specifier, f"{wheel.name}: {raw} has no version range"
            assert req.specifier.contains(pins[req.name.lower()]), (
                f"{wheel.name}: {raw} excludes the pinned {pins[req.name.lower()]}"
            )
