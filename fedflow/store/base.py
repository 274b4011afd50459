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

from ..errors import FedflowError

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
    return FlowSummary(rec.id, rec.name, rec.status, rec.waiting, rec.owner, rec.epoch, rec.created, rec.updated)


#: A log entry is a small JSON-able dict, stored as text by the store:
#:   {"t": "s", "tag": str, "v": tree}                      a resolved suspend
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

    def close(self) -> None:  # noqa: B027 - optional for stores without resources
        """Release resources; the store is unusable afterwards."""
