"""Plain helpers shared by the tests (no tests here); import them by name: `from support import Calls`.

Fixtures live in conftest.py; helpers for the command line and gRPC tests stay in
test_cli_support.py and test_grpc_support.py.
"""

from __future__ import annotations

import math
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedflow import Fail, journal

WAIT = 5.0  # bound on every cross-thread wait: a broken engine fails, it never hangs


class Calls:
    """A thread-safe record of calls, to count side effects."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, item: Any = None) -> None:
        with self._lock:
            self.seen.append(item)

    @property
    def n(self) -> int:
        return len(self.seen)


def note(path: Path, line: str) -> None:
    """Append one line with one unbuffered write (it survives SIGKILL once written)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def unique(prefix: str) -> str:
    """`prefix` plus a random suffix: a name or id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def same(a: Any, b: Any) -> bool:
    """Equal *and* of exactly the same types all the way down (True is not 1, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, Fail):
        return same(a.reason, b.reason)
    return a == b


def blocks_until(release: Callable[[], object], action: Callable[[], object], patience: float = 0.3) -> None:
    """Run `action` in a thread: assert it is still blocked after `patience` seconds, then
    call `release()` and assert the thread ends (within WAIT)."""
    worker = threading.Thread(target=action, name="blocked-action")
    worker.start()
    worker.join(patience)
    blocked = worker.is_alive()
    release()
    worker.join(WAIT)
    assert blocked, "the action waited"
    assert not worker.is_alive(), "the action ended once released"


def log_of(holder: Any, flow_id: str) -> list[dict[str, Any]]:
    """The log of `flow_id` in `holder` (an Engine or a Store), its entries read as dicts."""
    store = getattr(holder, "store", holder)
    return journal.load_all(store.load_log(flow_id), flow_id)
