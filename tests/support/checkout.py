"""A copy of the repository that a test may edit (scaffold into, break, reload), as a clone would have it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def repo_copy(dest: Path, *, venv: bool = True) -> Path:
    """The tracked and new (not ignored) files under dest, mtimes kept so make sees the venv as current;
    with venv, .venv links to this checkout's, so `make run` in the copy installs nothing."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_symlink():  # a tracked link (fanout_kit/event_schemas) stays a link, as a clone has it
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).symlink_to(src.readlink())
        elif src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if venv:
        (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest
