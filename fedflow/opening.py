"""The write that says a flow is running, made only when it starts to matter.

A started or resumed flow must be on disk as `running` before its first new
side effect (a journaled step or remote call that has not run before), so a
crash during that effect leaves it recoverable. Until then nothing has
happened that replay would not redo, so the write waits: if the run reaches
a suspend or its end first, the running state and the outcome are one
transaction instead of two.

Every write here is a compare-and-set on the version the run read: a flow
resumed, cancelled or claimed meanwhile by anyone else (another thread,
Engine or process on the same store) makes it fail, changing nothing.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from . import journal
from .replay import AbortSignal
from .store.base import RUNNING, SUSPENDED, FlowRecord, Store


class Opening:
    """How one run of one flow reaches the store: `flush()` early, or `finish()` at once."""

    def __init__(self, store: Store, rec: FlowRecord, *, resume_entry: journal.Entry | None = None,
                 written: bool = False, explain: Callable[[str], Exception]) -> None:
        """`rec` is the flow as read (for a start, the record to create); `resume_entry` the value
        a resume delivers; `written` when the store already says running (a recovery, after
        `claim`)."""
        self._store = store
        self._rec = rec
        self.resume_entry = resume_entry
        self._explain = explain
        self.written = written
        self.recovering = written  # a run over a record a crash left running
        self.version = rec.version  # the version every write of this run compares with

    def claim(self) -> bool:
        """For a recovery: take the running flow as this run's (a compare-and-set, so of two
        engines recovering it, one runs it); False when someone else changed it first."""
        if not self._store.transition(self._rec.id, [RUNNING], {"updated": time.time()}, version=self.version):
            return False
        self.version += 1
        return True

    def flush(self) -> None:
        """Write the running state now (before a side effect); AbortSignal if the flow changed."""
        if self.written:
            return
        changes = {"status": RUNNING, "waiting": None, "request": None, "wake_at": None, "updated": time.time()}
        if self.resume_entry is None:
            ok = self._store.create(dataclasses.replace(self._rec, **changes), acknowledge=False)
            self.version = 0
        else:
            ok = self._store.transition(self._rec.id, [SUSPENDED], changes, [journal.dump(self.resume_entry)],
                                        version=self.version, acknowledge=False)
            self.version += 1
        if not ok:
            raise AbortSignal(self._explain(self._rec.id))
        self.written = True

    def journal(self, entry: journal.Entry) -> bool:
        """Commit one journal entry of this run (unacknowledged); False when the flow changed."""
        return self._store.append_log(self._rec.id, journal.dump(entry), version=self.version, acknowledge=False)

    def finish(self, status: str, fields: dict[str, Any]) -> bool:
        """Record how the run ended (acknowledged); False when the flow changed meanwhile."""
        changes = {"waiting": None, "request": None, "wake_at": None, **fields, "status": status,
                   "updated": time.time()}
        if self.written:
            return self._store.transition(self._rec.id, [RUNNING], changes, version=self.version)
        if self.resume_entry is None:
            return self._store.create(dataclasses.replace(self._rec, **changes))
        return self._store.transition(self._rec.id, [SUSPENDED], changes, [journal.dump(self.resume_entry)],
                                      version=self.version)
