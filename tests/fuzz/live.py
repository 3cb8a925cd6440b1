"""One `make run` stack shared by the fuzz and security suites, its output logged to a file.

tests/support/stack.py pipes the stack's output and reads it at the end; at DEBUG level a
pipe would fill and block the stack, so this launcher writes to a file the log scan reads.
Every token a test sends is registered here so the scan knows what must never appear.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.support.stack import ROOT, SECRET, Stack, stack_env

TOKENS_SENT: set[str] = set()
_STACK: Stack | None = None
LOG_NAME = "stack.log"


def remember(token: str) -> str:
    TOKENS_SENT.add(token)
    return token


def shared_stack(config: pytest.Config, tmp_root: Path) -> Stack:
    """Start once per session (on first use), stop when the session ends."""
    global _STACK
    if _STACK is not None:
        return _STACK
    state = tmp_root / "state"
    state.mkdir(parents=True, exist_ok=True)
    env = stack_env(state, FANOUT_VISIBILITY_TIMEOUT="1", FANOUT_LOG_LEVEL="DEBUG")
    log = (tmp_root / LOG_NAME).open("w", encoding="utf-8")
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "-s", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stack = Stack(
        api_url=f"http://127.0.0.1:{env['FANOUT_PORT']}",
        aws_endpoint=f"http://127.0.0.1:{env['FANOUT_AWS_PORT']}",
        env=env,
        proc=proc,
        state_dir=state,
    )

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log.close()

    config.add_cleanup(stop)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"make run exited with {proc.returncode}: {(tmp_root / LOG_NAME).read_text()[-2000:]}")
        try:
            if requests.get(f"{stack.api_url}/healthz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the local stack did not become healthy in time")
        time.sleep(0.2)
    _STACK = stack
    stack.output.append(str(tmp_root / LOG_NAME))  # where the log file is
    return stack


def log_path(stack: Stack) -> Path:
    return Path(stack.output[0])


def token(stack: Stack, sub: str, roles: tuple[str, ...] = ("data.read", "data.write"), ttl: int = 600) -> str:
    return remember(stack.token(sub, roles=roles, ttl=ttl))


def auth(stack: Stack, sub: str, **kw: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(stack, sub, **kw)}"}  # type: ignore[arg-type]


__all__ = ["SECRET", "TOKENS_SENT", "auth", "log_path", "remember", "shared_stack", "token"]
