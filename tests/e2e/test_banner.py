"""What `make run` prints, pasted as printed into another shell, reaches the stack that printed it.

The stack runs on free ports (never the defaults), with its own state dir and JWT secret; every
command is run by bash from the checkout with no FANOUT_* or AWS_* variable but those the banner's
own text sets, as a user would paste it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.e2e.helpers import wait_for
from tests.support.stack import Stack, project_copy, running_stack


def _shell_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("FANOUT_", "AWS_"))}


def _paste(script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], cwd=project_copy(), env=_shell_env(), capture_output=True, text=True, timeout=timeout
    )


def _banner(stack: Stack) -> str:
    wait_for(lambda: "Press Ctrl+C to stop." in stack.text(), timeout=10)
    return stack.text()


def _cli(banner: str) -> str:
    match = re.search(r"\(tail and trace: (.+?) tail, (.+?) trace ID\)", banner)
    assert match, banner
    assert match.group(1) == match.group(2)
    return match.group(1)


def test_the_banner_commands_reach_a_stack_on_other_ports(tmp_path: Path) -> None:
    with running_stack(tmp_path, FANOUT_GENERATOR="off") as stack:
        assert not stack.api_url.endswith(":8000") and not stack.aws_endpoint.endswith(":4566")
        banner = _banner(stack)
        cli = _cli(banner)
        assert f"(replay: {cli} replay --since ISO --until ISO)" in banner

        # The "Try it" block, as printed: a token from the CLI, a POST and a GET with it.
        block = banner.split("Try it:\n", 1)[1].split("\n\n", 1)[0]
        assert f"TOKEN=$({cli} token --sub alice)" in block
        posted = _paste(block.replace("\n  ", "\n").strip())
        assert posted.returncode == 0, posted.stderr
        ids = re.findall(r'"id":\s*"([0-9A-Z]{26})"', posted.stdout)
        assert ids, posted.stdout + posted.stderr
        event_id = ids[0]

        # `tail` as printed sees the next event published on this stack's topic.
        tail = subprocess.Popen(
            ["bash", "-c", f"{cli} tail"],
            cwd=project_copy(),
            env=_shell_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl+C reaches the whole group, as in a terminal
        )
        seen: list[str] = []

        def drain() -> None:
            assert tail.stdout is not None
            for line in tail.stdout:
                seen.append(line)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any("fanout.data.generated.v1" in s for s in seen):
                stack.cli("generate", "--count", "1", "--sub", "banner-tail")
                time.sleep(1.5)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(tail.pid, signal.SIGINT)
            tail.wait(15)
            reader.join(5)
        assert any("banner-tail" in s for s in seen), "".join(seen)

        # `trace ID` as printed, with the id the POST answered: stored, and archived (what replay reads).
        def traced() -> dict[str, Any] | None:
            r = _paste(f"{cli} trace {event_id} --json")
            assert r.returncode == 0, r.stderr
            doc = json.loads(r.stdout)
            done = doc["stored"] and doc["consumers"]["archive"]["state"] == "processed"
            return doc if done else None

        assert wait_for(traced, timeout=20)["id"] == event_id

        # `replay` as printed, over a window holding the archived event.
        now = datetime.now(UTC)
        since = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        until = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        replayed = _paste(f"{cli} replay --since {since} --until {until}")
        assert replayed.returncode == 0, replayed.stderr
        assert re.search(r"replayed [1-9]\d* events", replayed.stdout), replayed.stdout
