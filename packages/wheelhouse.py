"""Download the pinned wheels of fanout-kit's dependencies (and theirs) into a directory.

    python packages/wheelhouse.py DEST

The versions and hashes are the project's own (requirements-dev.lock); which packages are needed is
read from packages/fanout-kit/pyproject.toml and the installed packages' metadata. The wheel test
installs the kit from DEST with `pip --no-index`, so it runs offline.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements-dev.lock"
KIT = ROOT / "packages" / "fanout-kit" / "pyproject.toml"
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: list[str]) -> set[str]:
    """Names of the roots and everything they require (without extras), from installed metadata."""
    seen: set[str] = set()
    todo = [canonical(_NAME.match(r).group(1)) for r in roots if _NAME.match(r)]  # type: ignore[union-attr]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for req in metadata.requires(name) or []:
            if "extra ==" in req:
                continue
            match = _NAME.match(req)
            if match:
                todo.append(canonical(match.group(1)))
    return seen


def locked(names: set[str]) -> str:
    """The lock's entries (pin and hashes) for these names, as a requirements file."""
    entries, current, keep = [], [], False
    for line in LOCK.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            if keep:
                entries.append("\n".join(current))
            match = _NAME.match(line)
            keep = bool(match) and canonical(match.group(1)) in names  # type: ignore[union-attr]
            current = [line]
        elif line.strip().startswith("--hash"):
            current.append(line)
    if keep:
        entries.append("\n".join(current))
    return "\n".join(entries) + "\n"


def main(dest: str) -> int:
    roots = tomllib.loads(KIT.read_text())["project"]["dependencies"]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write(locked(closure(roots)))
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"]
    cmd += ["--require-hashes", "--only-binary=:all:", "-r", fh.name, "-d", dest]
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
