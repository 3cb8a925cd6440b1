"""Lambda execution environments, emulated: each a fresh copy of the handler's module.

On AWS every concurrent invocation runs in its own environment with its own module state,
and one environment handles one invocation at a time. Handlers may rely on that (Powertools'
resolver keeps the current event in module state), so the local runtime gives each poller its
own copy and the gateway a pool of copies, never sharing one between two threads at once.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import queue
from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]
_copies = itertools.count(1)


def load_handler(spec: str) -> Handler:
    """The handler of the shared module (for callers that never run it concurrently)."""
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


def new_environment(spec: str) -> Handler:
    """The handler of a fresh copy of its module: one execution environment's worth of state."""
    module, _, function = spec.partition(":")
    original = importlib.import_module(module)  # imports its package and shared dependencies once
    name = f"{module}__env{next(_copies)}"
    found = importlib.util.spec_from_file_location(name, original.__file__)
    if found is None or found.loader is None:
        raise ImportError(f"cannot load {module} again from {original.__file__}")
    copy = importlib.util.module_from_spec(found)
    found.loader.exec_module(copy)
    return getattr(copy, function)


class EnvironmentPool:
    """Up to `size` environments; a call waits for a free one, as invocations wait for concurrency."""

    def __init__(self, spec: str, size: int) -> None:
        self._free: queue.LifoQueue[Handler] = queue.LifoQueue()
        for _ in range(size):
            self._free.put(new_environment(spec))

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        handler = self._free.get()
        try:
            return handler(event, context)
        finally:
            self._free.put(handler)
