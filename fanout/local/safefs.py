# ruff: noqa: PTH101, PTH102, PTH103, PTH105, PTH108, PTH114, PTH116, PTH118
# (os-level calls on purpose: modes, O_NOFOLLOW, lstat; pathlib follows links)
"""Files in the state dir, opened so that a link planted there is never followed.

The state dir holds users' data, the emulated endpoint's credentials and the handlers a developer
registered: it is created 0700, refused when someone else owns it or can write to it, and every file
in it is opened with O_NOFOLLOW (temporary files also with O_EXCL), so a symlink put there points
nowhere we write or read.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO


class UnsafeStateError(OSError):
    """The state dir or a file in it is not safe to use; the message names it and says what to do."""


def private_dir(path: Path) -> Path:
    """Create the state dir (0700) or check an existing one: owned by this user, writable by nobody else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeStateError(f"state dir {path} is not a directory; set FANOUT_STATE_DIR to a directory of yours")
    if info.st_uid != os.getuid():
        raise UnsafeStateError(
            f"state dir {path} belongs to uid {info.st_uid}, not to you (uid {os.getuid()}); "
            "set FANOUT_STATE_DIR to a directory of your own"
        )
    if info.st_mode & 0o022:
        raise UnsafeStateError(
            f"state dir {path} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"run `chmod 700 {path}` or set FANOUT_STATE_DIR"
        )
    if info.st_mode & 0o077:
        # Readable by others (an older run, or made by hand): it holds users' data and this run's keys.
        os.chmod(path, 0o700)
    return path


def subdir(path: Path) -> Path:
    """A directory inside the state dir (0700), refused when it is a link."""
    with contextlib.suppress(FileExistsError):
        os.makedirs(path, 0o700)
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise UnsafeStateError(f"{path} is a link or not a directory; remove it")
    return path


def open_fd(path: Path, flags: int, mode: int = 0o600) -> int:
    """os.open without following a link at the last component (ELOOP names the file)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the path is a symlink
            raise UnsafeStateError(f"{path} is a symbolic link; fanout follows no link in its state dir") from None
        raise


def read_bytes(path: Path) -> bytes:
    with os.fdopen(open_fd(path, os.O_RDONLY), "rb") as fh:
        return fh.read()


def read_text(path: Path) -> str:
    return read_bytes(path).decode("utf-8")


def is_file(path: Path) -> bool:
    """A regular file itself, not a link to one."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _fresh_tmp(path: Path) -> int:
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # a leftover (or a planted link): unlinking a link removes the link only
    return open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` at once: a fresh 0600 temporary file beside it, then a rename over it."""
    fd = _fresh_tmp(path)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    # rename() replaces a link at `path` itself; it never writes through it.
    os.replace(path.with_name(path.name + ".tmp"), path)


def write_atomic(path: Path, write: Callable[[TextIO], None]) -> None:
    """As write_bytes_atomic, for a writer of text."""
    subdir(path.parent)
    fd = _fresh_tmp(path)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        write(fh)
    os.replace(path.with_name(path.name + ".tmp"), path)


def files_under(root: Path) -> Iterator[Path]:
    """Every regular file under root, never through a link (links and what they point to are skipped)."""
    for here, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(here, d))]
        for name in files:
            path = Path(here) / name
            if is_file(path):
                yield path


def set_aside(path: Path) -> Path:
    """Move a file that cannot be read out of the way (kept beside it, never deleted); returns where."""
    aside = path.with_name(f"{path.name}.unreadable")
    n = 1
    while os.path.lexists(aside):
        n += 1
        aside = path.with_name(f"{path.name}.unreadable-{n}")
    os.replace(path, aside)
    return aside
