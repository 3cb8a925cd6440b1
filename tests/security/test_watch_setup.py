"""A `--path` to a big directory does not freeze the runtime while its watch is set up.

watchfiles holds the GIL while it sets a watch up, so watching a whole checkout (a node_modules, a
.git) stopped every other thread of `make run` (API, pollers, Ctrl+C) for as long as that took. Only
the handler's own files are watched now; a change to its module is still seen.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from fanout.local.live import Watcher, handler_dirs


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository-like directory: a handler package among 60,000 entries of .git, node_modules and others."""
    root = tmp_path_factory.mktemp("big")
    for top in ("node_modules", ".git/objects", "docs", ".venv/lib"):
        for i in range(100):
            d = root / top / f"p{i}"
            for j in range(15):
                (d / f"d{j}").mkdir(parents=True)
                for k in range(10):
                    (d / f"d{j}" / f"f{k}.txt").touch()
    package = root / "team" / "react"
    package.mkdir(parents=True)
    (root / "team" / "__init__.py").touch()
    (package / "__init__.py").write_text("from team.react.core import handler\n")
    (package / "core.py").write_text("def handler(event, context):\n    return {}\n")
    (root / "helpers.py").write_text("X = 1\n")
    return root


def test_only_the_handlers_own_directories_are_watched(big: Path) -> None:
    dirs = handler_dirs("team.react:handler", str(big))
    assert set(dirs) == {big, big / "team", big / "team" / "react"}
    single = handler_dirs("helpers:X", str(big))
    assert single == [big]  # a top-level module: its directory, without the subtree


def test_setting_up_the_watch_does_not_stop_other_threads(big: Path) -> None:
    stop, seen, gaps = threading.Event(), [], []

    def tick() -> None:
        last = time.monotonic()
        while not stop.is_set():
            time.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    watcher = Watcher(
        "test-watch",
        lambda: handler_dirs("team.react:handler", str(big)),
        seen.append,
        stop,
        recursive=False,
    )
    try:
        watcher.start()
        time.sleep(1.5)  # set-up done (it took about 1 s of held GIL for the whole tree)
        worst = max(gaps)
        (big / "team" / "react" / "core.py").write_text("def handler(event, context):\n    return {'v': 2}\n")
        deadline = time.monotonic() + 3
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        watcher.join(5)
        ticker.join(5)
    assert worst < 0.3, f"another thread was held up {worst:.2f} s while the watch started"
    assert any(big / "team" / "react" / "core.py" in changed for changed in seen), seen
