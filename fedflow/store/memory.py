"""An in-memory Store: fast, thread-safe, gone when the process exits."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .base import (
    DEFAULT_PAGE,
    RUNNING,
    SUSPENDED,
    TERMINAL,
    FlowPage,
    FlowRecord,
    FlowSummary,
    LogEntry,
    Store,
    check_changes,
    check_page,
    page_position,
    summary,
)


class MemoryStore(Store):
    """Keeps every record in dicts under one lock (insertion order = creation order)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._flows: dict[str, FlowRecord] = {}
        self._logs: dict[str, list[LogEntry]] = {}
        self._replicas: dict[str, str] = {}
        self._slot_notes: dict[str, tuple[float, str | None]] = {}  # source -> (stored at, sender)
        self._seq: dict[str, int] = {}  # id -> creation number, the position a page token names
        self._next_seq = 1
        self._schedules: dict[str, list] = {}  # name -> [spec, next_at, last_id]
        self._answers: dict[str, tuple[str, float]] = {}  # call key -> (answer, recorded at), oldest first

    def create(self, record: FlowRecord, *, acknowledge: bool = True) -> bool:
        with self._lock:
            if record.id in self._flows:
                return False
            self._flows[record.id] = dataclasses.replace(record, version=0)
            self._logs[record.id] = []
            self._number(record.id)
            return True

    def _number(self, flow_id: str) -> None:
        """Give a new flow the next creation number (under the lock)."""
        if flow_id not in self._seq:
            self._seq[flow_id] = self._next_seq
            self._next_seq += 1

    def get(self, flow_id: str) -> FlowRecord | None:
        with self._lock:
            rec = self._flows.get(flow_id)
            return dataclasses.replace(rec) if rec else None

    def load_log(self, flow_id: str) -> list[LogEntry]:
        with self._lock:
            return list(self._logs.get(flow_id, ()))

    def append_log(self, flow_id: str, entry: LogEntry, *, version: int | None = None,
                   acknowledge: bool = True) -> bool:
        with self._lock:
            rec = self._flows.get(flow_id)
            if rec is None or rec.status != RUNNING or (version is not None and rec.version != version):
                return False
            self._logs[flow_id].append(entry)
            return True

    def transition(self, flow_id: str, expect: Iterable[str] | None, changes: dict[str, Any],
                   append: Sequence[LogEntry] = (), *, version: int | None = None,
                   acknowledge: bool = True) -> bool:
        check_changes(changes)
        with self._lock:
            rec = self._flows.get(flow_id)
            if rec is None or (expect is not None and rec.status not in set(expect)) \
                    or (version is not None and rec.version != version):
                return False
            for field, value in changes.items():
                setattr(rec, field, value)
            rec.version += 1
            self._logs[flow_id].extend(append)
            return True

    def delete(self, flow_id: str, only: Iterable[str]) -> bool:
        with self._lock:
            rec = self._flows.get(flow_id)
            if rec is None or rec.status not in set(only):
                return False
            del self._flows[flow_id], self._logs[flow_id], self._seq[flow_id]
            return True

    def delete_terminal(self) -> int:
        with self._lock:
            doomed = [fid for fid, rec in self._flows.items() if rec.status in TERMINAL]
            for fid in doomed:
                del self._flows[fid], self._logs[fid], self._seq[fid]
            return len(doomed)

    def list(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(fid, rec.status) for fid, rec in self._flows.items()]

    def ids(self, status: str) -> list[str]:
        with self._lock:
            return [fid for fid, rec in self._flows.items() if rec.status == status]

    def list_page(self, status: str | None = None, flow: str | None = None, id_prefix: str | None = None,
                  limit: int = DEFAULT_PAGE, after: str | None = None) -> FlowPage:
        """Up to `limit` flows, newest first, filtered; see `Store.list_page`."""
        check_page(status, limit)
        before = page_position(after)
        rows: list[FlowSummary] = []
        with self._lock:
            for fid in reversed(self._flows):  # insertion order is creation order
                seq = self._seq[fid]
                if before is not None and seq >= before:
                    continue
                rec = self._flows[fid]
                if (status and rec.status != status) or (flow and rec.name != flow) \
                        or (id_prefix and not fid.startswith(id_prefix)):
                    continue
                if len(rows) == limit:
                    return FlowPage(rows, str(self._seq[rows[-1].id]))
                rows.append(summary(rec))
        return FlowPage(rows, None)

    def count_by_status(self) -> dict[str, int]:
        """How many flows are in each status (statuses with none are left out)."""
        counts: dict[str, int] = {}
        with self._lock:
            for rec in self._flows.values():
                counts[rec.status] = counts.get(rec.status, 0) + 1
        return counts

    def pending(self) -> list[tuple[str, str | None, str | None]]:
        with self._lock:
            return [(fid, rec.waiting, rec.request) for fid, rec in self._flows.items()
                    if rec.status == SUSPENDED]

    def records(self) -> Iterator[tuple[FlowRecord, list[LogEntry]]]:
        with self._lock:
            snapshot = [(dataclasses.replace(rec), list(self._logs[fid])) for fid, rec in self._flows.items()]
        yield from snapshot

    def put_flows(self, flows: Sequence[tuple[FlowRecord, list[LogEntry]]]) -> None:
        with self._lock:
            for rec, log in flows:
                old = self._flows.get(rec.id)
                version = rec.version if old is None else max(rec.version, old.version + 1)
                self._flows[rec.id] = dataclasses.replace(rec, version=version)
                self._logs[rec.id] = list(log)
                self._number(rec.id)

    def put_replica(self, source: str, text: str, sender: str | None = None) -> None:
        with self._lock:
            self._replicas[source] = text
            self._slot_notes[source] = (time.time(), sender)

    def get_replica(self, source: str) -> str | None:
        with self._lock:
            return self._replicas.get(source)

    def replica_sources(self) -> list[str]:
        with self._lock:
            return list(self._replicas)

    def replica_slots(self) -> list[tuple[str, int, float, str | None]]:
        with self._lock:
            return [(source, len(text.encode("utf-8", "surrogatepass")), *self._slot_notes[source])
                    for source, text in self._replicas.items()]

    def timers(self) -> list[tuple[str, str, float]]:
        with self._lock:
            found = [(fid, rec.waiting or "", rec.wake_at) for fid, rec in self._flows.items()
                     if rec.status == SUSPENDED and rec.wake_at is not None]
        return sorted(found, key=lambda t: t[2])

    def count_timers(self) -> int:
        with self._lock:
            return sum(1 for rec in self._flows.values() if rec.status == SUSPENDED and rec.wake_at is not None)

    def next_wake(self) -> float | None:
        with self._lock:
            return min((rec.wake_at for rec in self._flows.values()
                        if rec.status == SUSPENDED and rec.wake_at is not None), default=None)

    def due(self, now: float, limit: int) -> list[tuple[str, str, float]]:
        return [t for t in self.timers() if t[2] <= now][:limit]

    def put_schedule(self, name: str, spec: str, next_at: float) -> None:
        with self._lock:
            self._schedules[name] = [spec, next_at, None]

    def schedules(self) -> list[tuple[str, str, float, str | None]]:
        with self._lock:
            return [(name, *self._schedules[name]) for name in sorted(self._schedules)]

    def delete_schedule(self, name: str) -> bool:
        with self._lock:
            return self._schedules.pop(name, None) is not None

    def advance_schedule(self, name: str, spec: str, expect_next_at: float, next_at: float,
                         last_id: str | None) -> bool:
        with self._lock:
            row = self._schedules.get(name)
            if row is None or row[0] != spec or row[1] != expect_next_at:
                return False
            row[1:] = [next_at, last_id]
            return True

    def record_answer(self, key: str, text: str, at: float) -> str:
        with self._lock:
            return self._answers.setdefault(key, (text, at))[0]

    def recorded_answer(self, key: str) -> str | None:
        with self._lock:
            found = self._answers.get(key)
            return None if found is None else found[0]

    def prune_answers(self, before: float, keep: int) -> int:
        with self._lock:
            keys = list(self._answers)
            excess = max(len(keys) - keep, 0)
            doomed = keys[:excess] + [k for k in keys[excess:] if self._answers[k][1] < before]
            for key in doomed:
                self._answers.pop(key, None)
            return len(doomed)
