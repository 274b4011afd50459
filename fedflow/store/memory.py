"""An in-memory Store: fast, thread-safe, gone when the process exits."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .base import RUNNING, SUSPENDED, TERMINAL, FlowRecord, LogEntry, Store, check_changes


class MemoryStore(Store):
    """Keeps every record in dicts under one lock (insertion order = creation order)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._flows: dict[str, FlowRecord] = {}
        self._logs: dict[str, list[LogEntry]] = {}
        self._replicas: dict[str, str] = {}
        self._schedules: dict[str, list] = {}  # name -> [spec, next_at, last_id]

    def create(self, record: FlowRecord, *, acknowledge: bool = True) -> bool:
        with self._lock:
            if record.id in self._flows:
                return False
            self._flows[record.id] = dataclasses.replace(record, version=0)
            self._logs[record.id] = []
            return True

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
            del self._flows[flow_id], self._logs[flow_id]
            return True

    def delete_terminal(self) -> int:
        with self._lock:
            doomed = [fid for fid, rec in self._flows.items() if rec.status in TERMINAL]
            for fid in doomed:
                del self._flows[fid], self._logs[fid]
            return len(doomed)

    def list(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(fid, rec.status) for fid, rec in self._flows.items()]

    def ids(self, status: str) -> list[str]:
        with self._lock:
            return [fid for fid, rec in self._flows.items() if rec.status == status]

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

    def put_replica(self, source: str, text: str) -> None:
        with self._lock:
            self._replicas[source] = text

    def get_replica(self, source: str) -> str | None:
        with self._lock:
            return self._replicas.get(source)

    def replica_sources(self) -> list[str]:
        with self._lock:
            return list(self._replicas)

    def timers(self) -> list[tuple[str, str, float]]:
        with self._lock:
            found = [(fid, rec.waiting or "", rec.wake_at) for fid, rec in self._flows.items()
                     if rec.status == SUSPENDED and rec.wake_at is not None]
        return sorted(found, key=lambda t: t[2])

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
