"""moto's server as a child process: a second core for AWS emulation, killed with its parent, and
closed to web pages (fanout.local.emulator_server)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from fanout.local.emulator_server import KEY_ENV, SECRET_ENV
from fanout.localenv import HOST


class EmulatorError(RuntimeError):
    pass


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to moto if this process dies, even by SIGKILL.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Emulator:
    def __init__(self, port: int, state_dir: Path, access_key_id: str, secret_access_key: str) -> None:
        self.port = port
        self.state_dir = state_dir
        # The only keys its guard accepts (it verifies each request's SigV4 signature with them).
        self.access_key_id, self.secret_access_key = access_key_id, secret_access_key
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 30) -> None:
        if not port_free(self.port):
            raise EmulatorError(
                f"port {self.port} is in use (another fanout running?); set FANOUT_AWS_PORT to a free port"
            )
        self.proc = subprocess.Popen(
            # moto behind the guard: only requests signed with this run's keys, none from pages, no /moto-api/.
            [sys.executable, "-m", "fanout.local.emulator_server", HOST, str(self.port), str(self.state_dir)],
            env={**os.environ, KEY_ENV: self.access_key_id, SECRET_ENV: self.secret_access_key},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            # Its own session: a terminal's Ctrl+C reaches only the runtime, which stops moto itself after
            # the final snapshot. PR_SET_PDEATHSIG still ends it if the runtime dies.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EmulatorError(f"moto server exited with code {self.proc.returncode}")
            try:
                # Any HTTP answer (the guard's 403 to an unsigned request) means it serves.
                with urllib.request.urlopen(f"{self.url}/", timeout=1):  # noqa: S310 (loopback only)
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise EmulatorError(f"moto server did not answer on {self.url} within {timeout:.0f} s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 1.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(1)
