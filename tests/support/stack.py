"""Start the local stack as a user would (`make run` in a subprocess, on free ports) for e2e and browser tests."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import requests

ROOT = Path(__file__).resolve().parents[2]
SECRET = "e2e-secret-that-is-long-enough-for-hs256-0123456789"
CLI = ROOT / ".venv" / "bin" / "fanout"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    api_url: str
    aws_endpoint: str
    env: dict[str, str]
    proc: subprocess.Popen[str]
    state_dir: Path
    # The stack's output, line by line, as the drain thread reads it (or, with stdout=a file, what the caller puts).
    output: list[str] = field(default_factory=list)
    drain: threading.Thread | None = None

    def text(self) -> str:
        """All the stack printed so far (the banner, logs, "fanout: stopping")."""
        return "".join(self.output)

    def token(self, sub: str, roles: tuple[str, ...] = ("data.read", "data.write"), ttl: int = 600) -> str:
        now = int(time.time())
        return jwt.encode({"sub": sub, "Role": list(roles), "iat": now, "exp": now + ttl}, SECRET, algorithm="HS256")

    def auth(self, sub: str, **kw: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, **kw)}"}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(CLI), *args], env=self.env, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"fanout {' '.join(args)} failed: {result.stderr}")
        return result

    def credentials(self) -> tuple[str, str]:
        """This run's keys for the emulated endpoint (it refuses any other), from the stack's state dir."""
        import json

        doc = json.loads((self.state_dir / "credentials.json").read_text())
        return doc["access_key_id"], doc["secret_access_key"]

    def signed(self, method: str, url: str, service: str, body: bytes = b"", **headers: str) -> dict[str, str]:
        """Headers for a raw request signed (SigV4) with this run's keys, as an SDK would send it."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(Credentials(*self.credentials()), service, self.env["AWS_REGION"]).add_auth(request)
        return dict(request.headers.items())

    def boto(self, service: str) -> Any:
        import boto3

        key_id, secret = self.credentials()
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name=self.env["AWS_REGION"],
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )


_PROJECT_COPY: list[Path] = []


def project_copy() -> Path:
    """The project as shipped, copied once per test process: stacks run from it unless a test names another
    checkout, so no stack reads the user's own stack configs or handlers/ (theirs to edit)."""
    if not _PROJECT_COPY:
        from tests.support.checkout import repo_copy

        base = Path(tempfile.mkdtemp(prefix="fanout-project-"))
        atexit.register(shutil.rmtree, base, True)
        _PROJECT_COPY.append(repo_copy(base))
    return _PROJECT_COPY[0]


def stack_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FANOUT_"))}
    env.update(
        FANOUT_PORT=str(free_port()),
        FANOUT_AWS_PORT=str(free_port()),
        FANOUT_JWT_SECRET=SECRET,
        FANOUT_STATE_DIR=str(state_dir),
        FANOUT_GENERATOR="off",
        AWS_REGION="us-east-1",
    )
    env.update(extra)  # after the defaults, so a test can override one (e.g. FANOUT_GENERATOR="on")
    return env


def _drain(pipe: Any, lines: list[str]) -> None:
    # Read for the whole life of the stack: an unread pipe fills at 64 KiB and then every thread of the
    # stack that logs blocks (a long checkout path in each traceback gets there within a few poison messages).
    with contextlib.suppress(ValueError, OSError):
        for line in pipe:
            lines.append(line)


def launch(
    state_dir: Path, *, stdout: Any = subprocess.PIPE, timeout: float = 60, cwd: Path | None = None, **extra: str
) -> Stack:
    """Start `make run` on free ports and wait until /healthz answers; the caller stops it with stop().

    With the default stdout=PIPE a thread drains the output into `Stack.output` as it comes;
    a caller may pass an open file instead (the kernel then writes it, nothing to drain).
    `cwd` runs it in another checkout (a copy of the repository that a test may edit); by default, in
    `project_copy()`.
    """
    cwd = cwd or project_copy()
    env = stack_env(state_dir, **extra)
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "-s", "run"],
        cwd=cwd,
        env=env,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stack = Stack(
        api_url=f"http://127.0.0.1:{env['FANOUT_PORT']}",
        aws_endpoint=f"http://127.0.0.1:{env['FANOUT_AWS_PORT']}",
        env=env,
        proc=proc,
        state_dir=state_dir,
    )
    if proc.stdout is not None:
        stack.drain = threading.Thread(
            target=_drain, args=(proc.stdout, stack.output), name="stack-output", daemon=True
        )
        stack.drain.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                if stack.drain is not None:
                    stack.drain.join(5)
                said = stack.text() if stack.drain is not None else "(see its output file)"
                raise RuntimeError(f"make run exited with {proc.returncode}: {said}")
            try:
                if requests.get(f"{stack.api_url}/healthz", timeout=1).status_code == 200:
                    return stack
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the local stack did not become healthy in time")
            time.sleep(0.2)
    except BaseException:
        stop(stack)
        raise


@contextlib.contextmanager
def running_stack(state_dir: Path, timeout: float = 60, cwd: Path | None = None, **extra: str) -> Iterator[Stack]:
    stack = launch(state_dir, timeout=timeout, cwd=cwd, **extra)
    try:
        yield stack
    finally:
        stop(stack)


def stop(stack: Stack, timeout: float = 10) -> int | None:
    if stack.proc.poll() is None:
        stack.proc.send_signal(signal.SIGTERM)
        try:
            stack.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(stack.proc.pid, signal.SIGKILL)
            stack.proc.wait(5)
    finish_output(stack)
    return stack.proc.returncode


def finish_output(stack: Stack, timeout: float = 5) -> str:
    """Once the stack has exited: wait for the drain to reach the end of its output, then return all of it."""
    if stack.drain is not None:
        stack.drain.join(timeout)
        if stack.proc.stdout and not stack.drain.is_alive():
            stack.proc.stdout.close()
    return stack.text()
