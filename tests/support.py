"""Plain helpers shared by the tests (no tests here); import them by name: `from support import Calls`.

Fixtures live in conftest.py; helpers for the command line and gRPC tests stay in
test_cli_support.py and test_grpc_support.py.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

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


def unique(prefix: str) -> str:
    """`prefix` plus a random suffix: a name or id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
