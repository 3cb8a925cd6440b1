"""The handlers `fanout subscribe --handler` registered: the only place the runtime learns code locations.

Which module a consumer runs, and from which directory, never comes from the emulated endpoint (its
queues and tags can be written by anything that reaches it). The CLI registers a handler through the
running stack (POST /_local/handlers, proving it holds this run's secret key, which only the
developer can read); the runtime checks it and keeps it in `handlers.json` in the state dir (0600).
Before each start of a handler the runtime checks again that its directory, and the module in it,
belong to the user running the stack and are writable by nobody else.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fanout.local import safefs

log = logging.getLogger("fanout.local")
HANDLER_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
# A registration whose queue never appears (the CLI stopped half-way) is forgotten after this long.
UNCLAIMED_SECONDS = 120.0


class RegistryError(ValueError):
    """A registration refused; the message says why in one line."""


@dataclass(frozen=True)
class Registration:
    handler: str
    path: str | None
    at: float  # when it was registered (epoch seconds)


def _owned_and_private(path: Path, what: str, uid: int) -> None:
    info = path.stat()
    if info.st_uid != uid:
        raise RegistryError(f"{what} {path} belongs to uid {info.st_uid}, not to the user running the stack ({uid})")
    if info.st_mode & 0o022:
        raise RegistryError(
            f"{what} {path} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"anyone who can write there could run code as you: `chmod go-w {path}`"
        )


def check(handler: str, path: str | None, uid: int | None = None) -> None:
    """Refuse a handler spec or directory that is malformed, or that someone else could change."""
    uid = os.getuid() if uid is None else uid
    if not isinstance(handler, str) or not HANDLER_RE.match(handler):
        raise RegistryError(f"handler must look like module.name:function, got {handler!r}")
    if path is None:
        return
    if not isinstance(path, str) or not Path(path).is_absolute():
        raise RegistryError(f"path must be an absolute directory, got {path!r}")
    root = Path(path)
    if not root.is_dir():
        raise RegistryError(f"path {path}: no such directory")
    _owned_and_private(root, "path", uid)
    module = handler.split(":", 1)[0].replace(".", "/")
    for candidate in (root / f"{module}.py", root / module):
        if candidate.exists():
            _owned_and_private(candidate, "module", uid)
            break
    else:
        raise RegistryError(f"path {path}: no {module}.py (or package {module}/) in it for handler {handler}")


class Registry:
    """handlers.json: consumer name -> registration; written only by the running stack."""

    def __init__(self, file: Path, secret: str) -> None:
        self.file = file
        self.secret = secret
        self._lock = threading.Lock()
        self._entries: dict[str, Registration] = {}
        raw = self._read()
        for name, doc in raw.items():
            try:
                self._entries[name] = Registration(str(doc["handler"]), doc.get("path"), float(doc.get("at", 0)))
            except (TypeError, KeyError, ValueError):
                log.warning("%s: entry %r is not a registration; ignored", file, name)

    def _read(self) -> dict[str, Any]:
        if not safefs.is_file(self.file):
            return {}
        try:
            doc = json.loads(safefs.read_bytes(self.file))
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            return doc
        except (ValueError, UnicodeDecodeError) as exc:
            aside = safefs.set_aside(self.file)
            log.warning("state file %s is unreadable (%s); moved it to %s, started without it", self.file, exc, aside)
            return {}

    def _save(self) -> None:
        doc = {n: {"handler": r.handler, "path": r.path, "at": r.at} for n, r in sorted(self._entries.items())}
        safefs.write_bytes_atomic(self.file, json.dumps(doc, indent=2).encode())

    def entries(self) -> dict[str, Registration]:
        with self._lock:
            return dict(self._entries)

    def register(self, name: str, handler: str, path: str | None) -> Registration:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise RegistryError(f"name must be 1 to 80 letters, digits, '-' or '_', got {name!r}")
        check(handler, path)
        with self._lock:
            entry = self._entries[name] = Registration(handler, path, time.time())
            self._save()
        return entry

    def remove(self, name: str) -> bool:
        with self._lock:
            if self._entries.pop(name, None) is None:
                return False
            self._save()
            return True

    def handle(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """POST /_local/handlers: {"secret", "name", "handler", "path"} registers; "handler": null removes."""
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return 400, {"message": "body must be a JSON object"}
        if not isinstance(doc, dict):
            return 400, {"message": "body must be a JSON object"}
        given = doc.get("secret")
        # Only a holder of this run's secret key (the developer: it is in their 0600 state file) registers code.
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), self.secret.encode()):
            return 403, {"message": "registering a handler needs this run's secret key (`fanout env`)"}
        name = doc.get("name")
        if doc.get("handler") is None:
            return 200, {"name": name, "removed": self.remove(str(name))}
        try:
            entry = self.register(name, doc.get("handler"), doc.get("path"))
        except RegistryError as exc:
            return 400, {"message": str(exc)}
        return 200, {"name": name, "handler": entry.handler, "path": entry.path}
