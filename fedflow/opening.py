"""The write that says a flow is running, made only when it starts to matter.

A started or resumed flow must be on disk as `running` before its first new
side effect (a journaled step or remote call that has not run before), so a
crash during that effect leaves it recoverable. Until then nothing has
happened that replay would not redo, so the write waits: if the run reaches
a suspend or its end first, the running state and the outcome are one
transaction instead of two.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from .replay import AbortSignal
from .store.base import RUNNING, SUSPENDED, FlowRecord, LogEntry, Store


class Opening:
    """How one run of one flow reaches the store: `flush()` early, or `finish()` at once."""

    def __init__(self, store: Store, rec: FlowRecord, *, resume_entry: LogEntry | None = None,
                 written: bool = False, explain: Callable[[str], Exception]) -> None:
        """`rec` is the flow (for a start, the record to create); `resume_entry` the value a
        resume delivers; `written` when the store already says running (a recovery)."""
        self._store = store
        self._rec = rec
        self.resume_entry = resume_entry
        self._explain = explain
        self.written = written
        self.recovering = written  # a run over a record a crash left running

    def flush(self) -> None:
        """Write the running state now (before a side effect); AbortSignal if the flow changed."""
        if self.written:
            return
        changes = {"status": RUNNING, "waiting": None, "request": None, "wake_at": None, "updated": time.time()}
        if self.resume_entry is None:
            ok = self._store.create(dataclasses.replace(self._rec, **changes), acknowledge=False)
        else:
            ok = self._store.transition(self._rec.id, [SUSPENDED], changes, [self.resume_entry],
                                        acknowledge=False)
        if not ok:
            raise AbortSignal(self._explain(self._rec.id))
        self.written = True

    def finish(self, status: str, fields: dict[str, Any]) -> bool:
        """Record how the run ended (acknowledged); False when the flow changed meanwhile."""
        changes = {"waiting": None, "request": None, "wake_at": None, **fields, "status": status,
                   "updated": time.time()}
        if self.written:
            return self._store.transition(self._rec.id, [RUNNING], changes)
        if self.resume_entry is None:
            return self._store.create(dataclasses.replace(self._rec, **changes))
        return self._store.transition(self._rec.id, [SUSPENDED], changes, [self.resume_entry])
