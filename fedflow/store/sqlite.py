"""A durable Store in one SQLite file (stdlib `sqlite3`, WAL).

One connection per store, guarded by a lock, so the engine may call from
many threads. Every mutating method is exactly one transaction (``BEGIN
IMMEDIATE`` ... ``COMMIT``, or a single statement in SQLite's autocommit
mode, which is just as atomic), committed before it returns: once a call returns,
its change survives ``kill -9`` (``durability="process"``, WAL with
``synchronous=NORMAL``) or power loss (``durability="power"``, the default:
the same commits, then an fsync of the WAL file before the method returns,
shared by writers that commit at the same time; see `group_sync`).

Tables and statements are in `sqlite_sql`: large values (a 64 KiB input, a
journaled answer) live out of line in ``bodies``, so a status change
rewrites a small row; an older file is upgraded in place when opened. The
store keeps the texts it is given and never parses them.

Two stores on one file (two Engines, two processes) are safe: every change
of state is a compare-and-set on the row's ``version`` in one statement or
transaction, so when both race, one applies and the other gets False.

A file that is not a fedflow store, was written by a newer fedflow, is
locked, or holds a corrupt row raises `FedflowError` naming the file; such
a file is never reset or rewritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NoReturn

from ..errors import FedflowError
from . import sqlite_sql as sql
from .base import (
    DEFAULT_PAGE,
    STATUSES,
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
    records_in_batches,
)
from .group_sync import GroupSync, SyncFailed, WalFile
from .sqlite_sql import FORMAT, SCHEMA_VERSION

__all__ = ["DURABILITY", "FORMAT", "SCHEMA_VERSION", "SQLiteStore"]

#: durability setting -> what a commit survives.
DURABILITY = {"process": "kill -9 of the process", "power": "power loss and OS crash"}

_row = operator.attrgetter(*sql.COLUMNS)  # a FlowRecord as a flows row
_SPILL_AT = tuple((sql.COLUMNS.index(c), c) for c in sql.SPILLABLE)
_TERMINAL = tuple(sorted(TERMINAL))
_update_sql = functools.lru_cache(maxsize=256)(sql.update_sql)
_page_sql = functools.lru_cache(maxsize=16)(sql.page_sql)
_PREFIX_END = "\U0010ffff"  # above every character: prefix <= id < prefix + this is "id starts with prefix"

Body = tuple[str, Any, str]  # (flow_id, slot, text): one value kept in the bodies table


def _large(text: Any) -> bool:
    """Whether `text` (a column value or entry text) is kept out of line."""
    return type(text) is str and len(text) >= sql.SPILL_CHARS


def _flow_row(rec: FlowRecord) -> tuple[tuple[Any, ...], list[Body]]:
    """`rec` as a flows row with its large values spilled, and the bodies they need."""
    row = _row(rec)
    spilled = [(at, column) for at, column in _SPILL_AT if _large(row[at])]
    if not spilled:
        return row, []
    cells = list(row)
    for at, _column in spilled:
        cells[at] = sql.SPILLED
    return tuple(cells), [(rec.id, column, row[at]) for at, column in spilled]


class SQLiteStore(Store):
    """A `Store` kept in the SQLite file at `path`; see the module docstring.

    `durability` is ``"power"`` (default, survives power loss) or ``"process"``
    (survives the process being killed; faster). `timeout` is how long, in
    seconds, to wait for another connection's lock before raising.
    """

    def __init__(self, path: str | os.PathLike[str], durability: str = "power",
                 timeout: float = 5.0) -> None:
        if durability not in DURABILITY:
            raise ValueError(f"durability must be one of {sorted(DURABILITY)}, not {durability!r}")
        self.path: str = os.fspath(path)
        self.durability = durability
        self._timeout = timeout
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._wal: WalFile | None = None  # under "power" on a WAL file: what is synced
        self._group: GroupSync | None = None  # ... and the syncs writers share
        with self._guard("open"):
            self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                         check_same_thread=False)
        try:
            with self._guard("open"):
                self._prepare()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, durability={self.durability!r})"

    # -- opening -------------------------------------------------------------

    def _prepare(self) -> None:
        """Check the file is ours (or empty), then set WAL, durability and the schema."""
        conn = self._live()
        tables, version = self._inspect()
        self._set_durability(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        if tables:
            if version < SCHEMA_VERSION:
                self._upgrade()
            self._add_listing_indexes()
        else:
            with self._tx("create the schema"):
                tables = self._tables()
                if tables:  # another process created it meanwhile
                    self._check_meta(tables)
                else:
                    for statement in sql.SCHEMA:
                        conn.execute(statement)
                    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                     [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION))])

    def _set_durability(self, journal_mode: str) -> None:
        """Commit at synchronous=NORMAL (safe against kill -9 in WAL mode); under "power", sync
        the WAL file before acknowledging. Where WAL is unavailable (an in-memory database, some
        network file systems) or off POSIX, "power" falls back to synchronous=FULL on every commit."""
        conn = self._live()
        conn.text_factory = bytes  # the file name as SQLite has it, even if it is not UTF-8
        try:
            main_file = next((os.fsdecode(file) for _seq, name, file in conn.execute("PRAGMA database_list")
                              if name == b"main"), "")
        finally:
            conn.text_factory = str
        group = (self.durability == "power" and journal_mode.lower() == "wal" and bool(main_file)
                 and os.name == "posix")
        if group:  # SQLite names the WAL after the database's resolved path (symlinks followed)
            self._wal = WalFile(f"{main_file}-wal")
            self._group = GroupSync(self._wal.sync)
        level = "FULL" if self.durability == "power" and not group else "NORMAL"
        conn.execute(f"PRAGMA synchronous = {level}")

    def _add_listing_indexes(self) -> None:
        """Create the indexes a paged listing needs when this file lacks them (made by an older fedflow)."""
        conn = self._live()
        have = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        missing = [statement for name, statement in sql.LISTING_INDEXES.items() if name not in have]
        if missing:
            with self._tx("index the flows for listing") as tx:
                for statement in missing:
                    tx.execute(statement)

    def _inspect(self) -> tuple[set[str], int]:
        """The file's tables and schema version (0 if empty), read in one snapshot: another
        process may be upgrading the file meanwhile."""
        conn = self._live()
        conn.execute("BEGIN")
        try:
            tables = self._tables()
            return tables, (self._check_meta(tables) if tables else 0)
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def _tables(self) -> set[str]:
        """Names of the tables in the file (reading them checks the file header)."""
        rows = self._live().execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}

    def _upgrade(self) -> None:
        """Upgrade an older file to this schema, in one transaction (all or nothing)."""
        with self._tx(f"upgrade the store to schema {SCHEMA_VERSION}") as conn:
            version = self._check_meta(self._tables())
            if version == 3:
                self._write_out_referred_results(conn)
            for statement in sql.UPGRADE.get(version, ()):  # none if done meanwhile elsewhere
                conn.execute(statement)

    def _write_out_referred_results(self, conn: sqlite3.Connection) -> None:
        """Replace each schema-3 result reference ``b"n:size"`` by the text it names: the `size`
        bytes (UTF-8) before the closing brace that ends log entry n's body."""
        for flow_id, ref in conn.execute(sql.REFERRED_RESULTS).fetchall():
            n, _colon, size = bytes(ref).decode("ascii", "replace").partition(":")
            row = conn.execute(sql.ENTRY_BYTES, (flow_id, int(n) if n.isdigit() else n)).fetchone()
            if row is None or not size.isdigit() or len(row[0]) <= int(size):
                raise self._error(f"has a corrupt result reference (flow {flow_id!r}: {bytes(ref)!r})",
                                  "restore it from a replica; fedflow left it unchanged")
            text = bytes(row[0])[-1 - int(size):-1].decode("utf-8", "surrogatepass")
            conn.execute(sql.PUT_BODY, (flow_id, "result", text))

    def _check_meta(self, tables: set[str]) -> int:
        """The file's schema version; raise unless it (with `tables`) is a fedflow store we read."""
        if "meta" not in tables:
            raise self._error(f"is a SQLite database but not a fedflow store (tables: "
                              f"{', '.join(sorted(tables))})", "use another path; fedflow left it unchanged")
        try:
            meta = dict(self._live().execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            raise self._error("is a SQLite database but not a fedflow store (foreign meta table)",
                              "use another path; fedflow left it unchanged") from exc
        if meta.get("format") != FORMAT:
            raise self._error(f"is a SQLite database but not a fedflow store (format "
                              f"{meta.get('format')!r})", "use another path; fedflow left it unchanged")
        version = str(meta.get("schema_version"))
        if not version.isdigit():
            raise self._error(f"has an unreadable schema_version {version!r}", "restore it from a replica")
        if int(version) > SCHEMA_VERSION:
            raise self._error(f"was written by a newer fedflow (store schema {version}; this "
                              f"fedflow reads {SCHEMA_VERSION})", "upgrade fedflow to open it")
        missing = sorted(sql.TABLES.get(int(version), sql.TABLES[SCHEMA_VERSION]) - tables)
        if int(version) < 1 or missing:
            raise self._error(f"is a damaged fedflow store (schema {version}, missing tables "
                              f"{missing})", "restore it from a replica")
        return int(version)

    # -- plumbing ------------------------------------------------------------

    def _error(self, detail: str, hint: str) -> FedflowError:
        """A FedflowError naming this store's file, what is wrong and what to do."""
        return FedflowError(f"fedflow store {self.path!r} {detail}; {hint}")

    def _live(self) -> sqlite3.Connection:
        """The open connection, or a FedflowError if the store was closed."""
        if self._conn is None:
            raise self._error("is closed", "open a new SQLiteStore")
        return self._conn

    @contextlib.contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        """Translate sqlite3 errors into FedflowErrors naming the file (see `_translated`)."""
        try:
            yield
        except sqlite3.Error as exc:
            self._raise_translated(exc, operation)

    def _raise_translated(self, exc: sqlite3.Error, operation: str) -> NoReturn:
        """Raise the FedflowError for `exc`, or `exc` itself when it is API misuse."""
        translated = self._translated(exc, operation)
        if translated is exc:
            raise exc
        raise translated from exc

    def _translated(self, exc: sqlite3.Error, operation: str) -> BaseException:
        """The FedflowError for a failed `operation` (in ONE place); API misuse stays as it is."""
        if isinstance(exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError)):
            return exc  # misuse of the API by the caller: a bug, keep it visible
        code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return self._error(f"is locked by another connection (waited {self._timeout:g}s "
                               f"to {operation})", "stop the other process using the file, "
                               "or pass a longer timeout")
        if code == sqlite3.SQLITE_NOTADB:
            return self._error(f"is not a SQLite database ({exc})", "point fedflow at a "
                               "fedflow store or a new path; fedflow left it unchanged")
        if code == sqlite3.SQLITE_CORRUPT:
            return self._error(f"is damaged ({exc})", "restore it from a replica or a backup")
        return self._error(f"could not {operation} ({exc})", "check the file, its directory and the disk")

    def _ticket(self, acknowledge: bool) -> int:
        """Under the lock, right after a commit: its group-sync ticket, or 0 when it needs none."""
        return self._group.committed() if acknowledge and self._group is not None else 0

    def _durable(self, ticket: int, operation: str) -> None:
        """Outside the lock: return once commit `ticket` (0: none) survives power loss."""
        if ticket and self._group is not None:
            try:
                self._group.wait(ticket)
            except SyncFailed as exc:
                raise self._unsynced(exc, f"committed but could not sync the write to disk to {operation}",
                                     "the change may not survive a power loss") from exc

    def _unsynced(self, exc: SyncFailed, what: str, risk: str) -> FedflowError:
        """The error for a write or read after a failed sync of the WAL."""
        return self._error(f"{what} ({exc})", f"{risk}; check the disk, then close and reopen the store")

    def _write_one(self, operation: str, sql: str, params: Sequence[Any], acknowledge: bool = True) -> int:
        """One statement as its own transaction (SQLite's autocommit: atomic, no BEGIN/COMMIT
        round trips); its rowcount. `acknowledge`: durable under "power" before returning (an
        unacknowledged write is made durable by the next acknowledged one's sync)."""
        with self._lock:
            try:
                changed = self._live().execute(sql, params).rowcount
            except sqlite3.Error as exc:
                self._raise_translated(exc, operation)
            ticket = self._ticket(acknowledge)
        self._durable(ticket, operation)
        return changed

    @contextlib.contextmanager
    def _tx(self, operation: str, acknowledge: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on any error;
        `acknowledge` as in `_write_one`."""
        with self._lock, self._guard(operation):
            conn = self._live()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            ticket = self._ticket(acknowledge)
        self._durable(ticket, operation)

    @contextlib.contextmanager
    def _reading(self, operation: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, for one read statement (see `_settled`)."""
        self._settled()  # most of the waiting, without holding up writers
        with self._lock, self._guard(operation):
            self._settled()  # and for what committed meanwhile
            yield self._live()

    def _settled(self) -> None:
        """Before a read (once before taking the lock, once holding it): wait until every
        acknowledged commit it could see is durable, so a reader never reports an acknowledged
        change that a power loss could still undo (SQLite's FULL gives the same). Unacknowledged
        writes (a running state, journal entries) are visible before their sync, as they were
        at synchronous=NORMAL before."""
        if self._group is not None:
            try:
                self._group.wait_for_all()
            except SyncFailed as exc:
                raise self._unsynced(exc, "cannot be read: a change it holds could not be synced to disk",
                                     "it may not survive a power loss") from exc

    def _record(self, row: Sequence[Any]) -> FlowRecord:
        """A FlowRecord from a flows row (columns in FlowRecord field order), checked."""
        rec = FlowRecord(*row)
        if type(rec.id) is not str or rec.status not in STATUSES or type(rec.epoch) is not int \
                or type(rec.version) is not int:
            raise self._error(f"has a corrupt flow row (id {rec.id!r}, status {rec.status!r}, "
                              f"epoch {rec.epoch!r})", "restore it from a replica")
        lost = [column for column in sql.SPILLABLE if type(getattr(rec, column)) is bytes]
        if lost or type(rec.input) is not str:
            raise self._error(f"has a corrupt flow row (id {rec.id!r}: {', '.join(lost) or 'input'} "
                              f"missing)", "restore it from a replica")
        return rec

    def _entry(self, flow_id: str, n: int, text: Any) -> LogEntry:
        """A log entry's text, checked to be there."""
        if type(text) is not str:
            raise self._error(f"has a corrupt log entry {n} of flow {flow_id!r} (its text is missing)",
                              "restore it from a replica")
        return text

    # -- flows ---------------------------------------------------------------

    def create(self, record: FlowRecord, *, acknowledge: bool = True) -> bool:
        """Insert a new flow at version 0; False (and nothing changed) if the id already exists."""
        row, bodies = _flow_row(dataclasses.replace(record, version=0))
        if not bodies:
            return self._write_one("create a flow", sql.CREATE, row, acknowledge) == 1
        with self._tx("create a flow", acknowledge) as conn:
            if conn.execute(sql.CREATE, row).rowcount != 1:
                return False
            conn.executemany(sql.PUT_BODY, bodies)
            return True

    def get(self, flow_id: str) -> FlowRecord | None:
        """The record for `flow_id`, or None."""
        with self._reading("read a flow") as conn:
            row = conn.execute(f"{sql.SELECT} WHERE id = ?", (flow_id,)).fetchone()
        return None if row is None else self._record(row)

    def load_log(self, flow_id: str) -> list[LogEntry]:
        """The flow's log entries in append order (empty if none)."""
        with self._reading("read a log") as conn:
            rows = conn.execute(f"SELECT n, {sql.ENTRY} FROM log WHERE flow_id = ? ORDER BY n",
                                (flow_id,)).fetchall()
        return [self._entry(flow_id, n, text) for n, text in rows]

    def append_log(self, flow_id: str, entry: LogEntry, *, version: int | None = None,
                   acknowledge: bool = True) -> bool:
        """Append one entry to a running flow's log (one INSERT) if its version is still `version`
        (any when None); False if it is not running or changed."""
        if not _large(entry):
            return self._write_one("append to a log", sql.APPEND_LOG, (flow_id, entry, version), acknowledge) == 1
        with self._tx("append to a log", acknowledge) as conn:
            if conn.execute(sql.APPEND_LOG, (flow_id, sql.SPILLED, version)).rowcount != 1:
                return False
            self._spill_last_entry(conn, flow_id, entry)
            return True

    def _spill_last_entry(self, conn: sqlite3.Connection, flow_id: str, text: str) -> None:
        """Keep `text` as the body of the flow's last log entry (just written as SPILLED)."""
        (n,) = conn.execute(sql.LAST_N, (flow_id,)).fetchone()
        conn.execute(sql.PUT_BODY, (flow_id, n, text))

    def transition(self, flow_id: str, expect: Iterable[str] | None, changes: dict[str, Any],
                   append: Sequence[LogEntry] = (), *, version: int | None = None,
                   acknowledge: bool = True) -> bool:
        """Compare-and-set the status and version, apply `changes`, raise the version and append
        `append`, all or nothing."""
        check_changes(changes)
        wanted = None if expect is None else tuple(expect)
        statement = _update_sql(tuple(changes), None if wanted is None else len(wanted), version is not None)
        spill = [column for column, text in changes.items() if column in sql.SPILLABLE and _large(text)]
        cells = [sql.SPILLED if column in spill else text for column, text in changes.items()]
        params = (*cells, flow_id, *(wanted or ()), *(() if version is None else (version,)))
        if not append and not spill:
            return self._write_one("record a transition", statement, params, acknowledge) == 1
        with self._tx("record a transition", acknowledge) as conn:
            if conn.execute(statement, params).rowcount != 1:
                return False
            conn.executemany(sql.PUT_BODY, [(flow_id, column, changes[column]) for column in spill])
            for text in append:
                large = _large(text)
                conn.execute(sql.INSERT_NEXT, (flow_id, sql.SPILLED if large else text))
                if large:
                    self._spill_last_entry(conn, flow_id, text)
            return True

    def delete(self, flow_id: str, only: Iterable[str]) -> bool:
        """Delete the flow, its log and its bodies if its status is in `only`; True if deleted."""
        statuses = tuple(only)
        with self._tx("delete a flow") as conn:
            cur = conn.execute(f"DELETE FROM flows WHERE id = ? AND status IN ({sql.marks(len(statuses))})",
                               (flow_id, *statuses))
            if cur.rowcount != 1:
                return False
            conn.execute("DELETE FROM log WHERE flow_id = ?", (flow_id,))
            conn.execute(sql.DELETE_BODIES, (flow_id,))
            return True

    def delete_terminal(self) -> int:
        """Delete every flow in a TERMINAL status; the count removed."""
        marks = sql.marks(len(_TERMINAL))
        with self._tx("delete finished flows") as conn:
            for table in ("log", "bodies"):
                conn.execute(f"DELETE FROM {table} WHERE flow_id IN "
                             f"(SELECT id FROM flows WHERE status IN ({marks}))", _TERMINAL)
            return conn.execute(f"DELETE FROM flows WHERE status IN ({marks})", _TERMINAL).rowcount

    def list(self) -> list[tuple[str, str]]:
        """[(id, status), ...] in creation order."""
        with self._reading("list flows") as conn:
            return conn.execute("SELECT id, status FROM flows ORDER BY seq").fetchall()

    def ids(self, status: str) -> list[str]:
        """Ids of flows in `status`, in creation order."""
        with self._reading("list flows") as conn:
            rows = conn.execute("SELECT id FROM flows WHERE status = ? ORDER BY seq", (status,))
            return [flow_id for (flow_id,) in rows]

    def list_page(self, status: str | None = None, flow: str | None = None, id_prefix: str | None = None,
                  limit: int = DEFAULT_PAGE, after: str | None = None) -> FlowPage:
        """Up to `limit` flows, newest first, filtered; see `Store.list_page`. The token is the
        creation number (seq) of the page's last flow: the next page starts below it."""
        check_page(status, limit)
        before = page_position(after)
        params: list[Any] = [value for value in (status or None, flow or None) if value is not None]
        if id_prefix:
            params += [id_prefix, id_prefix + _PREFIX_END]
        if before is not None:
            params.append(before)
        statement = _page_sql(bool(status), bool(flow), bool(id_prefix), before is not None)
        with self._reading("list flows") as conn:
            rows = conn.execute(statement, (*params, limit + 1)).fetchall()
        flows = [FlowSummary(*row[1:]) for row in rows[:limit]]
        return FlowPage(flows, str(rows[limit - 1][0]) if len(rows) > limit else None)

    def count_by_status(self) -> dict[str, int]:
        """How many flows are in each status (one pass over the status index)."""
        with self._reading("count flows") as conn:
            return dict(conn.execute(sql.COUNT_BY_STATUS).fetchall())

    def pending(self) -> list[tuple[str, str | None, str | None]]:
        """[(id, waiting_tag, request_text_or_None), ...] for suspended flows."""
        with self._reading("list suspended flows") as conn:
            rows = conn.execute(f"SELECT id, waiting, {sql.column('request')} FROM flows WHERE status = ? "
                                f"ORDER BY seq", (SUSPENDED,)).fetchall()
        for flow_id, _tag, request in rows:
            if type(request) is bytes:
                raise self._error(f"has a corrupt flow row (id {flow_id!r}: request missing)",
                                  "restore it from a replica")
        return rows

    def records(self) -> Iterator[tuple[FlowRecord, list[LogEntry]]]:
        """Every flow with its log, in creation order, read in batches (never all at once).

        Each batch is one consistent snapshot; flows created while iterating are included.
        """
        return records_in_batches(self._records_after)

    def _records_after(self, last: int, count: int) -> list[tuple[int, FlowRecord, list[LogEntry]]]:
        """Up to `count` (seq, record, log) with seq > `last`, read in one transaction."""
        with self._reading("read flows") as conn:
            conn.execute("BEGIN")
            try:
                rows = conn.execute(f"SELECT seq, {sql.RECORD_COLS} FROM flows WHERE seq > ? "
                                    f"ORDER BY seq LIMIT ?", (last, count)).fetchall()
                entries = conn.execute(
                    f"SELECT flows.seq, log.flow_id, log.n, {sql.ENTRY} FROM flows JOIN log "
                    f"ON log.flow_id = flows.id WHERE flows.seq > ? AND flows.seq <= ? "
                    f"ORDER BY flows.seq, log.n", (last, rows[-1][0] if rows else last)).fetchall()
            finally:
                conn.execute("COMMIT")
        logs: dict[int, list[LogEntry]] = {}
        for seq, flow_id, n, text in entries:
            logs.setdefault(seq, []).append(self._entry(flow_id, n, text))
        return [(row[0], self._record(row[1:]), logs.get(row[0], [])) for row in rows]

    def put_flows(self, flows: Sequence[tuple[FlowRecord, list[LogEntry]]]) -> None:
        """Insert or replace these flows and their whole logs, all in one transaction."""
        latest = {rec.id: (rec, log) for rec, log in flows}  # a repeated id: the last one wins
        rows, bodies = [], []
        for rec, _log in latest.values():
            row, spilled = _flow_row(rec)
            rows.append(row)
            bodies += spilled
        entries = []
        for fid, (_rec, log) in latest.items():
            for n, text in enumerate(log):
                large = _large(text)
                if large:
                    bodies.append((fid, n, text))
                entries.append((fid, n, sql.SPILLED if large else text))
        with self._tx("store flows") as conn:
            conn.executemany(sql.UPSERT, rows)
            conn.executemany("DELETE FROM log WHERE flow_id = ?", [(fid,) for fid in latest])
            conn.executemany(sql.DELETE_BODIES, [(fid,) for fid in latest])
            conn.executemany(sql.INSERT_LOG, entries)
            conn.executemany(sql.PUT_BODY, bodies)

    # -- timers and schedules --------------------------------------------------

    def timers(self) -> list[tuple[str, str, float]]:
        """[(id, waiting_tag, wake_at), ...] for suspended flows with a timer, earliest first."""
        with self._reading("list timers") as conn:
            return conn.execute(sql.TIMERS).fetchall()

    def count_timers(self) -> int:
        """How many suspended flows wait on a timer (a count over the wake index)."""
        with self._reading("count timers") as conn:
            return conn.execute(sql.COUNT_TIMERS).fetchone()[0]

    def next_wake(self) -> float | None:
        """The earliest wake_at of a suspended flow (one step of the wake index), or None."""
        with self._reading("find the next timer") as conn:
            return conn.execute(sql.NEXT_WAKE).fetchone()[0]

    def due(self, now: float, limit: int) -> list[tuple[str, str, float]]:
        """Up to `limit` timers with wake_at <= `now`, earliest first."""
        with self._reading("find due timers") as conn:
            return conn.execute(sql.DUE, (now, limit)).fetchall()

    def put_schedule(self, name: str, spec: str, next_at: float) -> None:
        """Create or replace schedule `name`."""
        self._write_one("store a schedule", sql.PUT_SCHEDULE, (name, spec, next_at))

    def schedules(self) -> list[tuple[str, str, float, str | None]]:
        """[(name, spec, next_at, last_id), ...] in name order."""
        with self._reading("list schedules") as conn:
            return conn.execute(sql.SCHEDULES).fetchall()

    def delete_schedule(self, name: str) -> bool:
        """Drop schedule `name`; True if it existed."""
        return self._write_one("drop a schedule", "DELETE FROM schedules WHERE name = ?", (name,)) == 1

    def advance_schedule(self, name: str, spec: str, expect_next_at: float, next_at: float,
                         last_id: str | None) -> bool:
        """Compare-and-set the schedule's next tick and last tick's flow."""
        return self._write_one("advance a schedule", sql.ADVANCE_SCHEDULE,
                               (next_at, last_id, name, spec, expect_next_at)) == 1

    # -- answers to peer calls -------------------------------------------------

    def record_answer(self, key: str, text: str, at: float) -> str:
        """Keep the first answer to call `key` (committed before it returns, unacknowledged like a
        journal entry); the answer kept."""
        with self._tx("record a call's answer", acknowledge=False) as conn:
            conn.execute(sql.RECORD_ANSWER, (key, text, at))
            return conn.execute(sql.RECORDED_ANSWER, (key,)).fetchone()[0]

    def recorded_answer(self, key: str) -> str | None:
        """The answer recorded for call `key`, or None."""
        with self._reading("read a call's answer") as conn:
            row = conn.execute(sql.RECORDED_ANSWER, (key,)).fetchone()
        return None if row is None else row[0]

    def prune_answers(self, before: float, keep: int) -> int:
        """Drop answers recorded before `before`, and all but the `keep` newest."""
        return self._write_one("prune recorded answers", sql.PRUNE_ANSWERS, (before, keep))

    # -- replicas ------------------------------------------------------------

    def put_replica(self, source: str, text: str, sender: str | None = None) -> None:
        """Keep `text` (an export, as JSON text) in the replica slot of engine `source`."""
        with self._tx("store a replica") as conn:
            conn.execute(sql.PUT_REPLICA, (source, text, time.time(), sender))

    def get_replica(self, source: str) -> str | None:
        """The replica held for engine `source`, or None."""
        with self._reading("read a replica") as conn:
            row = conn.execute("SELECT text FROM replicas WHERE source = ?", (source,)).fetchone()
        return None if row is None else row[0]

    def replica_sources(self) -> list[str]:
        """Names of the engines whose replicas this store holds, first stored first."""
        with self._reading("list replicas") as conn:
            return [source for (source,) in conn.execute("SELECT source FROM replicas ORDER BY rowid")]

    def replica_slots(self) -> list[tuple[str, int, float, str | None]]:
        """[(source, bytes, stored at, sender), ...], first stored first."""
        with self._reading("list replica slots") as conn:
            return conn.execute(sql.REPLICA_SLOTS).fetchall()

    def close(self) -> None:
        """Close the connection (idempotent); later calls raise FedflowError."""
        with self._lock:
            if self._group is not None and self._wal is not None:
                self._group.close()  # no sync runs after this, so the WAL's descriptor can go
                self._wal.close()
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
