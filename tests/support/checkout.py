"""A copy of the repository that a test may edit (scaffold into, break, reload), as a clone would have it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The tests' own copies of the stack configs as the project ships them. Tests never read the checkout's
# Pulumi.<stack>.yaml: its user adds consumers (`fanout new-consumer`) and edits settings.
STACK_CONFIGS = Path(__file__).resolve().parent / "stacks"
# What `fanout new-consumer` writes in a user's checkout; not the project's, so not copied when untracked.
USER_DIRS = ("handlers/", "tests/unit/")


def _listed(*flags: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", *flags], cwd=ROOT, capture_output=True, check=True).stdout
    return list(filter(None, listed.decode().split("\0")))


def repo_copy(dest: Path, *, venv: bool = True) -> Path:
    """The tracked and new (not ignored) files under dest, mtimes kept so make sees the venv as current;
    with venv, .venv links to this checkout's, so `make run` in the copy installs nothing.

    The copy is the project's, not the user's: its stack configs are the tests' own (STACK_CONFIGS), and
    new untracked modules under handlers/ and tests/unit/ (a user's `fanout new-consumer`) stay out.
    """
    new = set(_listed("--others", "--exclude-standard"))
    for rel in sorted(set(_listed("--cached")) | new):
        src = ROOT / rel
        if rel in new and rel.startswith(USER_DIRS):
            continue
        if src.is_symlink():  # a tracked link (fanout_kit/event_schemas) stays a link, as a clone has it
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).symlink_to(src.readlink())
        elif src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for config in STACK_CONFIGS.glob("Pulumi.*.yaml"):
        shutil.copy2(config, dest / config.name)
    if venv:
        (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest
