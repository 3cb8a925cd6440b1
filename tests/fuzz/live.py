"""One `make run` stack shared by the fuzz and security suites, its output logged to a file.

At DEBUG level the stack logs megabytes; this launcher has them written to a file (nothing to
drain, nothing held in memory) that the log scan reads.
Every token a test sends is registered here so the scan knows what must never appear.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stack import SECRET, Stack, launch, stop

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
    log = (tmp_root / LOG_NAME).open("w", encoding="utf-8")
    try:
        stack = launch(state, stdout=log, timeout=90, FANOUT_VISIBILITY_TIMEOUT="1", FANOUT_LOG_LEVEL="DEBUG")
    except RuntimeError as exc:
        log.close()
        raise RuntimeError(f"{exc}: {(tmp_root / LOG_NAME).read_text()[-2000:]}") from None

    def cleanup() -> None:
        stop(stack)
        log.close()

    config.add_cleanup(cleanup)
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
