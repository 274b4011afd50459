"""The store interface: durable flow records, their replay logs, replica slots.

A store keeps *opaque text*: a record's value fields (input, result, error,
request) and every log entry are strings made and read above the store (the
engine encodes them); a store never parses, rewrites or interprets them, and
gives back exactly the text it was given. So a new store (SQLite, PostgreSQL,
...) is a small class: rows in, rows out, and the compare-and-set below.

Every mutating method is one atomic transaction, committed before it returns.

Every state change is a compare-and-set checked by the store itself, in the
same transaction as the change: each record carries a `version` that the
store sets to 0 on `create` and raises by one on every `transition` (and on
`put_flows` over an existing flow). A caller passes the version it read (the
engine always does; None, "any version", is for tools); a flow that changed
meanwhile (another thread, Engine or process got there first) makes the call
return False and changes nothing. The status guard (`expect`) is checked in
the same statement. A new store joins the `store` fixture of
tests/test_store_contract.py, which holds every store to this contract.

`acknowledge=False` marks an intermediate write that no caller hears of
(a new flow before it runs, a journal entry, a resume before its replay): it
must survive a crash of the process, and may wait for the next acknowledged
write to become durable against power loss too. That is one fsync per
outcome a caller sees, not one per step.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..errors import FedflowError

#: Statuses a flow record can have.
RUNNING, SUSPENDED, DONE, FAILED, CANCELLED, MOVED = (
    "running", "suspended", "done", "failed", "cancelled", "moved")
TERMINAL = frozenset({DONE, FAILED, CANCELLED, MOVED})
LIVE = frozenset({RUNNING, SUSPENDED})
STATUSES = frozenset({RUNNING, SUSPENDED, DONE, FAILED, CANCELLED, MOVED})


@dataclasses.dataclass
class FlowRecord:
    """One flow's persisted state (without its log). Value fields hold text the store keeps as it is."""

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
    version: int = 0               # set by the store: 0 when created, +1 on every transition
    wake_at: float | None = None   # when a suspended flow's timer fires (seconds since the epoch)


@dataclasses.dataclass(frozen=True)
class FlowSummary:
    """One row of a flow listing: the record without its values (input, result, error, request)."""

    id: str
    name: str | None
    status: str
    waiting: str | None
    owner: str | None
    epoch: int
    created: float
    updated: float
    wake_at: float | None = None  # when its timer fires, for a flow waiting on one


@dataclasses.dataclass(frozen=True)
class FlowPage:
    """One page of a listing, newest flow first; `next_token` fetches the next page (None: last page)."""

    flows: list[FlowSummary]
    next_token: str | None


#: Flows in a page when no limit is given, and the most one page may hold.
DEFAULT_PAGE, MAX_PAGE = 100, 1000


def check_page(status: str | None, limit: int) -> None:
    """Refuse a listing's status filter or limit with a FedflowError that names the fix."""
    if status is not None and status not in STATUSES:
        raise FedflowError(f"status {status!r} is not one of {', '.join(sorted(STATUSES))}; pick one of those")
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE:
        raise FedflowError(f"a page holds 1 to {MAX_PAGE} flows, not {limit!r}; pass a limit in that range")


def page_position(token: str | None) -> int | None:
    """The position a page token stands for (None: the first page); FedflowError when it is not a token."""
    if token is None or token == "":
        return None
    if not (isinstance(token, str) and token.isascii() and token.isdigit() and len(token) < 20):
        raise FedflowError(f"page token {token!r} was not made by this instance; pass the next_page_token of "
                           f"the previous page, or none for the first page")
    return int(token)


def summary(rec: FlowRecord) -> FlowSummary:
    """The listing row of `rec`."""
    return FlowSummary(rec.id, rec.name, rec.status, rec.waiting, rec.owner, rec.epoch, rec.created, rec.updated,
                       rec.wake_at)


#: The FlowRecord fields a transition may change (not `id`, and `version` only by the store).
CHANGEABLE = tuple(field.name for field in dataclasses.fields(FlowRecord) if field.name not in ("id", "version"))


#: Flows read at a time by `records_in_batches`.
RECORDS_BATCH = 500


def records_in_batches(read_after: Callable[[int, int], list[tuple[int, FlowRecord, list[LogEntry]]]]
                       ) -> Iterator[tuple[FlowRecord, list[LogEntry]]]:
    """Every flow with its log, in creation order, never all at once: `read_after(seq, n)`
    gives up to `n` (creation number, record, log) after creation number `seq`."""
    last = 0
    while True:
        batch = read_after(last, RECORDS_BATCH)
        yield from ((rec, log) for _, rec, log in batch)
        if len(batch) < RECORDS_BATCH:
            return
        last = batch[-1][0]


def check_changes(changes: dict[str, Any]) -> None:
    """Raise ValueError naming the fields of `changes` that a transition may not change."""
    bad = [name for name in changes if name not in CHANGEABLE]
    if bad:
        raise ValueError(f"transition cannot change {bad}; changeable fields: {list(CHANGEABLE)}")


#: A log entry: text the store keeps as it is, in append order (the engine writes ASCII JSON,
#: see `fedflow.journal`). Every text given to a store is valid Unicode (it encodes as UTF-8).
LogEntry = str


class Store(abc.ABC):
    """Persistence for one engine. Implementations: MemoryStore, SQLiteStore."""

    @abc.abstractmethod
    def create(self, record: FlowRecord, *, acknowledge: bool = True) -> bool:
        """Insert a new flow at version 0 (`record.version` is ignored); False (and nothing
        changed) if the id already exists."""

    @abc.abstractmethod
    def get(self, flow_id: str) -> FlowRecord | None:
        """The record for `flow_id`, or None."""

    @abc.abstractmethod
    def load_log(self, flow_id: str) -> list[LogEntry]:
        """The flow's log entries in append order (empty if none)."""

    @abc.abstractmethod
    def append_log(self, flow_id: str, entry: LogEntry, *, version: int | None = None,
                   acknowledge: bool = True) -> bool:
        """Append one entry to the log of a `running` flow (one transaction), if its version is
        still `version` (any when None); False, changing nothing, when the flow is missing, not
        running or changed (cancelled, moved or claimed by another run meanwhile). An append
        leaves the version as it is: it belongs to the run that holds that version."""

    @abc.abstractmethod
    def transition(self, flow_id: str, expect: Iterable[str] | None, changes: dict[str, Any],
                   append: Sequence[LogEntry] = (), *, version: int | None = None,
                   acknowledge: bool = True) -> bool:
        """Compare-and-set, atomically: if the flow's status is in `expect` (any when None) and
        its version is `version` (any when None), apply `changes` (FlowRecord field -> value;
        not `id` or `version`), raise its version by one and append `append` to its log.
        Returns False, changing nothing, when the flow is missing or either guard fails."""

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

    def list_page(self, status: str | None = None, flow: str | None = None, id_prefix: str | None = None,
                  limit: int = DEFAULT_PAGE, after: str | None = None) -> FlowPage:
        """Up to `limit` flows, newest first, with `status`, flow name `flow` and an id starting
        with `id_prefix` (each when given); `after` is the `next_token` of the previous page.

        This default reads every id (slow on a large store); the stores override it."""
        check_page(status, limit)
        start = page_position(after)
        rows: list[FlowSummary] = []
        listed = self.list()
        for position in range(len(listed) if start is None else min(start, len(listed)), 0, -1):
            rec = self.get(listed[position - 1][0])
            if rec is None or (status and rec.status != status) or (flow and rec.name != flow) \
                    or (id_prefix and not rec.id.startswith(id_prefix)):
                continue
            if len(rows) == limit:
                return FlowPage(rows, str(position))
            rows.append(summary(rec))
        return FlowPage(rows, None)

    def count_by_status(self) -> dict[str, int]:
        """How many flows are in each status (statuses with none are left out)."""
        counts: dict[str, int] = {}
        for _fid, status in self.list():
            counts[status] = counts.get(status, 0) + 1
        return counts

    @abc.abstractmethod
    def pending(self) -> list[tuple[str, str | None, str | None]]:
        """[(id, waiting_tag, request_text_or_None), ...] for suspended flows."""

    @abc.abstractmethod
    def records(self) -> Iterator[tuple[FlowRecord, list[LogEntry]]]:
        """Every flow with its log, in creation order (for export)."""

    @abc.abstractmethod
    def put_flows(self, flows: Sequence[tuple[FlowRecord, list[LogEntry]]]) -> None:
        """Insert or replace these flows and their whole logs, all in one transaction (a repeated
        id: the last one wins). A new flow keeps its record's version; a replaced one gets the
        larger of that and its old version + 1, so a run that read the old row cannot change it."""

    @abc.abstractmethod
    def put_replica(self, source: str, text: str, sender: str | None = None) -> None:
        """Keep `text` (an export, as JSON text) in the replica slot of engine `source`, noting
        who sent it (`sender`: a peer's name, None when not known) and when."""

    @abc.abstractmethod
    def get_replica(self, source: str) -> str | None:
        """The replica held for engine `source`, or None."""

    @abc.abstractmethod
    def replica_sources(self) -> list[str]:
        """Names of the engines whose replicas this store holds."""

    @abc.abstractmethod
    def replica_slots(self) -> list[tuple[str, int, float, str | None]]:
        """[(source, bytes of its text as UTF-8, when it was stored, sender), ...], first stored first."""

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

    def count_timers(self) -> int:
        """How many suspended flows wait on a timer (this default lists them; the stores count)."""
        return len(self.timers())

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

    # -- answers to peer calls, by idempotency key -------------------------------

    @abc.abstractmethod
    def record_answer(self, key: str, text: str, at: float) -> str:
        """Keep `text` (an encoded answer) as the answer to the call `key`, recorded at `at`
        (seconds since the epoch), unless `key` has one already; the answer kept (the first).
        Committed before it returns (the caller sends it on only afterwards), like a journal
        entry: it survives a crash of the process, and power loss once the next acknowledged
        write is durable."""

    @abc.abstractmethod
    def recorded_answer(self, key: str) -> str | None:
        """The answer recorded for the call `key`, or None."""

    @abc.abstractmethod
    def prune_answers(self, before: float, keep: int) -> int:
        """Drop the answers recorded before `before`, and all but the `keep` newest; the count dropped."""

    def close(self) -> None:  # noqa: B027 - optional for stores without resources
        """Release resources; the store is unusable afterwards."""
