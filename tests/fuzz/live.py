"""One `make run` stack shared by the fuzz and security suites, its output logged to a file.

At DEBUG level the stack logs megabytes; this launcher has them written to a file (nothing to
drain, nothing held in memory) that the log scan reads.
Every token a test sends is registered here; when the session ends, the log is scanned for all of
them (`scan_logs_at_end`, a pytest_sessionfinish hook of both suites), so no test has to run last.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.stack import SECRET, Stack, launch, stop

TOKENS_SENT: set[str] = set()
_STACK: Stack | None = None
_SCANNED = False
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


def secrets(tokens: set[str]) -> set[str]:
    """Each token, and its signature alone: a log line holding either would leak it."""
    out = set()
    for t in tokens:
        if len(t) >= 20:
            out.add(t)
        signature = t.rsplit(".", 1)[-1]
        if len(signature) >= 20:
            out.add(signature)
    return out


def leaked_tokens() -> list[str]:
    """The start of each token (or signature) sent this session that the shared stack's log holds."""
    if _STACK is None or not TOKENS_SENT:
        return []
    time.sleep(1)  # the stack's last lines reach the file
    text = log_path(_STACK).read_text(encoding="utf-8", errors="replace")
    return [s[:16] + "..." for s in secrets(TOKENS_SENT) if s in text]


def scan_logs_at_end(session: pytest.Session) -> None:
    """Fail the session if the stack logged any token a test sent (both suites' conftests call this)."""
    global _SCANNED
    if _SCANNED:
        return
    _SCANNED = True
    leaked = leaked_tokens()
    if leaked:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"{len(leaked)} tokens or signatures (of {len(TOKENS_SENT)} tokens sent) in the stack's logs: {leaked[:3]}"
        )
        if reporter is not None:
            reporter.write("\n")
            reporter.write_sep("!", "token in the logs", red=True)
            reporter.write_line(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def token(stack: Stack, sub: str, roles: tuple[str, ...] = ("data.read", "data.write"), ttl: int = 600) -> str:
    return remember(stack.token(sub, roles=roles, ttl=ttl))


def auth(stack: Stack, sub: str, **kw: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(stack, sub, **kw)}"}  # type: ignore[arg-type]


__all__ = [
    "SECRET",
    "TOKENS_SENT",
    "auth",
    "leaked_tokens",
    "log_path",
    "remember",
    "scan_logs_at_end",
    "secrets",
    "shared_stack",
    "token",
]
