"""The store interface: durable flow records, their replay logs, replica slots.

A store persists *text*: every value field is tagged JSON made by
`fedflow.values`, so a store never sees live Python objects and both
implementations behave the same. Every mutating method is one atomic
transaction, committed before it returns.

`acknowledge=False` marks an intermediate write that no caller hears of
(a new flow before it runs, a journal entry, a resume before its replay): it
must survive a crash of the process, and may wait for the next acknowledged
write to become durable against power loss too. That is one fsync per
outcome a caller sees, not one per step.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

#: Statuses a flow record can have.
RUNNING, SUSPENDED, DONE, FAILED, CANCELLED, MOVED = (
    "running", "suspended", "done", "failed", "cancelled", "moved")
TERMINAL = frozenset({DONE, FAILED, CANCELLED, MOVED})
LIVE = frozenset({RUNNING, SUSPENDED})
STATUSES = frozenset({RUNNING, SUSPENDED, DONE, FAILED, CANCELLED, MOVED})


@dataclasses.dataclass
class FlowRecord:
    """One flow's persisted state (without its log). Value fields hold tagged JSON text."""

    id: str
    name: str | None
    status: str
    input: str
    result: str | None = None
    error: str | None = None       # JSON text {"type", "message"} of the failure
    waiting: str | None = None     # the tag a suspended flow waits on
    request: str | None = None     # JSON text [kind, payload] of a pending host request
    owner: str | None = None       # where a moved flow went / who owns it
    epoch: int = 0                 # bumped on every handoff, for ownership fencing
    created: float = 0.0
    updated: float = 0.0
    wake_at: float | None = None   # when a suspended flow's timer fires (seconds since the epoch)


#: A log entry is a small JSON-able dict, stored as text by the store:
#:   {"t": "s", "tag": str, "v": tree}                      a resolved suspend
#:   {"t": "s", "tag": str, "v": null, "w": 1}              a suspend ended by its timer
#:   {"t": "j", "k": str, "n": str, "v": tree}              a journaled step result
#:   {"t": "j", "k": str, "n": str, "e": {"type", "message"}}  a journaled step error
LogEntry = dict[str, Any]


class Store(abc.ABC):
    """Persistence for one engine. Implementations: MemoryStore, SQLiteStore."""

    @abc.abstractmethod
    def create(self, record: FlowRecord, *, acknowledge: bool = True) -> bool:
        """Insert a new flow; False (and nothing changed) if the id already exists."""

    @abc.abstractmethod
    def get(self, flow_id: str) -> FlowRecord | None:
        """The record for `flow_id`, or None."""

    @abc.abstractmethod
    def load_log(self, flow_id: str) -> list[LogEntry]:
        """The flow's log entries in append order (empty if none)."""

    @abc.abstractmethod
    def append_log(self, flow_id: str, entry: LogEntry, *, acknowledge: bool = True) -> bool:
        """Append one entry to the log of a `running` flow (one transaction); False, changing
        nothing, when the flow is missing or not running (cancelled or moved meanwhile)."""

    @abc.abstractmethod
    def transition(self, flow_id: str, expect: Iterable[str] | None, changes: dict[str, Any],
                   append: Sequence[LogEntry] = (), *, acknowledge: bool = True) -> bool:
        """Atomically: if the flow's status is in `expect` (any when None), apply
        `changes` (FlowRecord field -> value) and append `append` to its log.
        Returns False, changing nothing, when the flow is missing or the status differs."""

    @abc.abstractmethod
    def delete(self, flow_id: str, only: Iterable[str]) -> bool:
        """Delete the flow and its log if its status is in `only`; True if deleted."""

    @abc.abstractmethod
    def delete_terminal(self) -> int:
        """Delete every flow in a TERMINAL status; the count removed."""

    @abc.abstractmethod
    def list(self) -> list[tuple[str, str]]:
        """[(id, status), ...] in creation order."""

    @abc.abstractmethod
    def ids(self, status: str) -> list[str]:
        """Ids of flows in `status`, in creation order."""

    @abc.abstractmethod
    def pending(self) -> list[tuple[str, str | None, str | None]]:
        """[(id, waiting_tag, request_text_or_None), ...] for suspended flows."""

    @abc.abstractmethod
    def records(self) -> Iterator[tuple[FlowRecord, list[LogEntry]]]:
        """Every flow with its log, in creation order (for export)."""

    @abc.abstractmethod
    def put_flows(self, flows: Sequence[tuple[FlowRecord, list[LogEntry]]]) -> None:
        """Insert or replace these flows and their whole logs, all in one transaction."""

    @abc.abstractmethod
    def put_replica(self, source: str, text: str) -> None:
        """Keep `text` (an export, as JSON text) in the replica slot of engine `source`."""

    @abc.abstractmethod
    def get_replica(self, source: str) -> str | None:
        """The replica held for engine `source`, or None."""

    @abc.abstractmethod
    def replica_sources(self) -> list[str]:
        """Names of the engines whose replicas this store holds."""

    # -- timers: a suspended flow's wake_at ------------------------------------

    @abc.abstractmethod
    def timers(self) -> list[tuple[str, str, float]]:
        """[(id, waiting_tag, wake_at), ...] for suspended flows with a timer, earliest first."""

    @abc.abstractmethod
    def next_wake(self) -> float | None:
        """The earliest wake_at of a suspended flow, or None when no timer is set."""

    @abc.abstractmethod
    def due(self, now: float, limit: int) -> list[tuple[str, str, float]]:
        """Up to `limit` timers (as in `timers`) with wake_at <= `now`, earliest first."""

    # -- schedules ---------------------------------------------------------------

    @abc.abstractmethod
    def put_schedule(self, name: str, spec: str, next_at: float) -> None:
        """Create or replace schedule `name` (`spec`: its JSON text), next tick at `next_at`."""

    @abc.abstractmethod
    def schedules(self) -> list[tuple[str, str, float, str | None]]:
        """[(name, spec, next_at, last_id), ...] in name order; last_id: the last tick's flow."""

    @abc.abstractmethod
    def delete_schedule(self, name: str) -> bool:
        """Drop schedule `name`; True if it existed."""

    @abc.abstractmethod
    def advance_schedule(self, name: str, spec: str, expect_next_at: float, next_at: float,
                         last_id: str | None) -> bool:
        """Compare-and-set: if schedule `name` still has `spec` and `expect_next_at`, set its
        next tick and last tick's flow; False (nothing changed) when it moved on or changed."""

    def close(self) -> None:  # noqa: B027 - optional for stores without resources
        """Release resources; the store is unusable afterwards."""
