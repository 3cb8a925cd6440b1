"""Reproducible Lambda artifacts: `handlers/` + `fanout_kit` as one zip, the locked dependencies as layers.

Two layers: every locked package but the X-Ray SDK, and the X-Ray SDK alone (with wrapt, which
only it needs), attached only to the functions of stacks that turn `fanout:tracingSdk` on. The
SDK is in maintenance (support ends 2027-02-25): handlers trace only through Powertools' Tracer,
so moving to OpenTelemetry changes this layer, not the handlers.

Same inputs, same bytes: entries are sorted, timestamps and permissions fixed, no bytecode and
no machine-specific files (pip's console scripts carry the builder's interpreter path). So a
`pulumi up` with nothing changed uploads nothing. Run as `python -m infra.package`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from infra.paths import BUILD, HANDLERS, KIT, LOCK, SCHEMAS

# python3.11 reached Lambda's deprecation date (June 2026); 3.13 is supported until mid-2029.
# The layer's compiled wheels (cryptography, cffi, wrapt) must match this version and architecture.
RUNTIME = "python3.13"
PYTHON_VERSION = "3.13"
ARCHITECTURE = "arm64"
# The python3.13 runtime is Amazon Linux 2023 (glibc 2.34): any of these wheel tags loads there.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")

HANDLER_ZIP = BUILD / "handlers.zip"
LAYER_ZIP = BUILD / "layer.zip"
LAYER_STAMP = BUILD / "layer.stamp"
TRACING_LAYER_ZIP = BUILD / "layer-tracing.zip"
TRACING_LAYER_STAMP = BUILD / "layer-tracing.stamp"
# Bump when the layer recipe changes, so an old zip is not reused.
LAYER_RECIPE = "3"
# The locked packages that only Powertools' Tracer loads (aws_xray_sdk and its wrapt).
TRACING_PACKAGES = frozenset({"aws-xray-sdk", "wrapt"})

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
_FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256: str  # hex, for people
    source_code_hash: str  # base64 of the digest, the form Lambda reports as CodeSha256
    size: int

    @classmethod
    def of(cls, path: Path) -> Artifact:
        digest = hashlib.sha256(path.read_bytes()).digest()
        return cls(path, digest.hex(), base64.b64encode(digest).decode(), path.stat().st_size)


@dataclass(frozen=True)
class Artifacts:
    handlers: Artifact
    layer: Artifact
    tracing_layer: Artifact | None = None  # the X-Ray SDK, for stacks with fanout:tracingSdk


def _write_zip(target: Path, entries: Iterable[tuple[str, Path]]) -> Artifact:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for arcname, source in sorted(entries):
            info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
            info.external_attr = _FILE_MODE
            info.create_system = 3  # unix, so the mode bits above are honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, source.read_bytes(), compresslevel=9)
    tmp.replace(target)
    return Artifact.of(target)


def _tree(root: Path, prefix: str, suffixes: tuple[str, ...] | None = None) -> list[tuple[str, Path]]:
    entries = []
    for path in root.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        if suffixes is not None and path.suffix not in suffixes:
            continue
        entries.append((f"{prefix}{path.relative_to(root).as_posix()}", path))
    return entries


# The kit's test helpers are for consumers' tests, never for a function.
KIT_LEFT_OUT = ("fanout_kit/testing.py",)


def build_handlers() -> Artifact:
    """handlers/ and fanout_kit/ at the zip root (the handler strings are `handlers.<module>.<function>`),
    the kit with its schemas as the wheel has them (fanout_kit/event_schemas/) and without its test helpers."""
    kit = [(arc, path) for arc, path in _tree(KIT, "fanout_kit/", (".py",)) if arc not in KIT_LEFT_OUT]
    entries = _tree(HANDLERS, "handlers/", (".py", ".json")) + kit
    entries += _tree(SCHEMAS, "fanout_kit/event_schemas/", (".json",))
    return _write_zip(HANDLER_ZIP, entries)


def lock_requirements(tracing: bool) -> str:
    """The lock's entries (pins, hashes, comments) of the tracing packages, or of every other one."""
    entries = re.split(r"(?m)^(?=[A-Za-z0-9])", LOCK.read_text(encoding="utf-8"))
    kept = []
    for entry in entries:
        name = re.match(r"[A-Za-z0-9._-]+", entry)
        if name is not None and (name.group(0).lower().replace("_", "-") in TRACING_PACKAGES) == tracing:
            kept.append(entry)
    return "".join(kept)


def _layer_stamp(tracing: bool = False) -> str:
    recipe = f"{LAYER_RECIPE}|{PYTHON_VERSION}|{','.join(PLATFORMS)}|{'tracing' if tracing else 'core'}|".encode()
    return hashlib.sha256(recipe + LOCK.read_bytes()).hexdigest()


def build_layer(force: bool = False, *, tracing: bool = False) -> Artifact:
    """Locked third-party packages under python/ (the layer path Lambda puts on sys.path): every one
    but the X-Ray SDK, or (`tracing`) the X-Ray SDK alone."""
    target, stamp_file = (TRACING_LAYER_ZIP, TRACING_LAYER_STAMP) if tracing else (LAYER_ZIP, LAYER_STAMP)
    stamp = _layer_stamp(tracing)
    if not force and target.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp:
        return Artifact.of(target)
    with tempfile.TemporaryDirectory(prefix="fanout-layer-") as tmp:
        site = Path(tmp) / "python"
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(lock_requirements(tracing), encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        cmd += ["--no-deps", "--no-compile", "--require-hashes", "-r", str(requirements), "--target", str(site)]
        cmd += [arg for p in PLATFORMS for arg in ("--platform", p)]
        cmd += ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp"]
        env = {**os.environ, "PIP_NO_INPUT": "1"}
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"pip could not build the layer:\n{result.stdout}\n{result.stderr}")
        # Console scripts embed this machine's interpreter path; Lambda never runs them.
        shutil.rmtree(site / "bin", ignore_errors=True)
        artifact = _write_zip(target, _tree(site, "python/"))
    stamp_file.write_text(stamp)
    return artifact


def existing() -> Artifacts:
    """The artifacts as last built, or stand-ins where none is (the offline plan and tests upload nothing)."""

    def one(path: Path) -> Artifact:
        if path.is_file():
            return Artifact.of(path)
        return Artifact(path, "0" * 64, base64.b64encode(bytes(32)).decode(), 0)

    return Artifacts(handlers=one(HANDLER_ZIP), layer=one(LAYER_ZIP), tracing_layer=one(TRACING_LAYER_ZIP))


def build_all(force_layer: bool = False) -> Artifacts:
    return Artifacts(
        handlers=build_handlers(),
        layer=build_layer(force=force_layer),
        tracing_layer=build_layer(force=force_layer, tracing=True),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild the layer even if the lock is unchanged")
    args = parser.parse_args(argv)
    try:
        artifacts = build_all(force_layer=args.force)
    except RuntimeError as exc:
        print(f"package: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    for artifact in (artifacts.handlers, artifacts.layer, artifacts.tracing_layer):
        if artifact is None:
            continue
        rel = artifact.path.relative_to(BUILD.parents[1])
        print(f"{rel}  {artifact.size / 1024:,.0f} KiB  sha256 {artifact.sha256}")  # noqa: T201
    print(f"runtime {RUNTIME} ({ARCHITECTURE})")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
