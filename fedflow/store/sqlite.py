"""A durable Store in one SQLite file (stdlib `sqlite3`, WAL).

One connection per store, guarded by a lock, so the engine may call from
many threads. Every mutating method is exactly one transaction (``BEGIN
IMMEDIATE`` ... ``COMMIT``, or a single statement in SQLite's autocommit
mode, which is just as atomic), committed before it returns: once a call returns,
its change survives ``kill -9`` (``durability="process"``, WAL with
``synchronous=NORMAL``) or power loss (``durability="power"``, the default,
``synchronous=FULL``).

Tables: ``meta`` (``format``, ``schema_version``), ``flows`` (one row per
flow, ``seq`` gives creation order), ``log`` (one row per log entry, keyed
by ``(flow_id, n)``, so an append is one INSERT) and ``replicas``.

A file that is not a fedflow store, was written by a newer fedflow, is
locked, or holds a corrupt row raises `FedflowError` naming the file; such
a file is never reset or rewritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NoReturn

from ..errors import FedflowError
from ..values import dump_tree
from .base import STATUSES, SUSPENDED, TERMINAL, FlowRecord, LogEntry, Store

__all__ = ["DURABILITY", "FORMAT", "SCHEMA_VERSION", "SQLiteStore"]

#: The store format this module reads and writes.
FORMAT = "fedflow-store"
#: The schema version this module writes; files with a higher one are refused.
SCHEMA_VERSION = 1
#: durability setting -> ``PRAGMA synchronous`` value.
DURABILITY = {"process": "NORMAL", "power": "FULL"}

_BATCH = 500  # flows per read in records()
_COLUMNS = tuple(field.name for field in dataclasses.fields(FlowRecord))
_COLS = ", ".join(_COLUMNS)
_row = operator.attrgetter(*_COLUMNS)  # a FlowRecord as a flows row
_SELECT = f"SELECT {_COLS} FROM flows"
_UPSERT = (f"INSERT INTO flows ({_COLS}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
           f"ON CONFLICT(id) DO UPDATE SET "
           + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "id"))
_CREATE = (f"INSERT INTO flows ({_COLS}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
           f"ON CONFLICT(id) DO NOTHING")
_INSERT_LOG = "INSERT INTO log (flow_id, n, entry) VALUES (?, ?, ?)"
_APPEND_LOG = ("INSERT INTO log (flow_id, n, entry) SELECT id, "
               "(SELECT COALESCE(MAX(n), -1) + 1 FROM log WHERE flow_id = ?1), ?2 "
               "FROM flows WHERE id = ?1 AND status = 'running'")
_INSERT_NEXT = ("INSERT INTO log (flow_id, n, entry) VALUES "
                "(?1, (SELECT COALESCE(MAX(n), -1) + 1 FROM log WHERE flow_id = ?1), ?2)")
_TERMINAL = tuple(sorted(TERMINAL))
_TABLES = frozenset({"meta", "flows", "log", "replicas"})
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS flows (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
    "name TEXT, status TEXT NOT NULL, input TEXT, result TEXT, error TEXT, waiting TEXT, "
    "request TEXT, owner TEXT, epoch INTEGER NOT NULL DEFAULT 0, "
    "created REAL NOT NULL DEFAULT 0, updated REAL NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS flows_status ON flows (status)",
    "CREATE TABLE IF NOT EXISTS log (flow_id TEXT NOT NULL, n INTEGER NOT NULL, "
    "entry TEXT NOT NULL, PRIMARY KEY (flow_id, n)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS replicas (source TEXT PRIMARY KEY, text TEXT NOT NULL, "
    "updated REAL NOT NULL)",
)


def _marks(count: int) -> str:
    """``?, ?, ?`` with `count` placeholders."""
    return ", ".join("?" * count)


@functools.lru_cache(maxsize=256)
def _update_sql(columns: tuple[str, ...], expect: int | None) -> str:
    """The compare-and-set UPDATE for `columns`, guarded by `expect` statuses (None: any)."""
    bad = [c for c in columns if c not in _COLUMNS or c == "id"]
    if bad:
        raise ValueError(f"transition cannot change {bad}; changeable fields: "
                         f"{[c for c in _COLUMNS if c != 'id']}")
    sets = ", ".join(f"{c} = ?" for c in columns) or "status = status"
    guard = "" if expect is None else f" AND status IN ({_marks(expect)})"
    return f"UPDATE flows SET {sets} WHERE id = ?{guard}"


def _dump(entry: LogEntry) -> str:
    """A log entry as compact JSON text."""
    return dump_tree(entry)


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
        tables = self._tables()
        if tables:
            self._check_meta(tables)
            conn.execute("PRAGMA journal_mode = WAL")
        else:
            conn.execute("PRAGMA journal_mode = WAL")
            with self._tx("create the schema"):
                tables = self._tables()
                if tables:  # another process created it meanwhile
                    self._check_meta(tables)
                else:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                     [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION))])
        conn.execute(f"PRAGMA synchronous = {DURABILITY[self.durability]}")

    def _tables(self) -> set[str]:
        """Names of the tables in the file (reading them checks the file header)."""
        rows = self._live().execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}

    def _check_meta(self, tables: set[str]) -> None:
        """Raise unless the file (with `tables`) is a fedflow store of a schema version we read."""
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
        missing = _TABLES - tables
        if int(version) < 1 or missing:
            raise self._error(f"is a damaged fedflow store (schema {version}, missing tables "
                              f"{sorted(missing)})", "restore it from a replica")

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

    def _write_one(self, operation: str, sql: str, params: Sequence[Any], acknowledge: bool = True) -> int:
        """One statement as its own transaction (SQLite's autocommit: atomic, no BEGIN/COMMIT
        round trips); its rowcount. `acknowledge` as in `_tx`."""
        relaxed = not acknowledge and self.durability == "power"
        with self._lock:
            conn = self._live()
            try:
                if relaxed:
                    conn.execute("PRAGMA synchronous = NORMAL")
                try:
                    return conn.execute(sql, params).rowcount
                finally:
                    if relaxed:
                        conn.execute("PRAGMA synchronous = FULL")
            except sqlite3.Error as exc:
                self._raise_translated(exc, operation)

    @contextlib.contextmanager
    def _tx(self, operation: str, acknowledge: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on any error.

        An unacknowledged write under "power" commits without its own fsync (WAL with
        synchronous=NORMAL survives a process crash); the next acknowledged commit syncs
        the WAL file, and with it every frame written before."""
        relaxed = not acknowledge and self.durability == "power"
        with self._lock, self._guard(operation):
            conn = self._live()
            if relaxed:
                conn.execute("PRAGMA synchronous = NORMAL")
            try:  # BEGIN inside: a lock timeout must not leave the connection relaxed
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                if relaxed:
                    conn.execute("PRAGMA synchronous = FULL")

    @contextlib.contextmanager
    def _reading(self, operation: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, for one read statement."""
        with self._lock, self._guard(operation):
            yield self._live()

    def _record(self, row: Sequence[Any]) -> FlowRecord:
        """A FlowRecord from a flows row (columns in FlowRecord field order), checked."""
        rec = FlowRecord(*row)
        if type(rec.id) is not str or rec.status not in STATUSES or type(rec.epoch) is not int:
            raise self._error(f"has a corrupt flow row (id {rec.id!r}, status {rec.status!r}, "
                              f"epoch {rec.epoch!r})", "restore it from a replica")
        return rec

    def _entry(self, flow_id: str, n: int, text: Any) -> LogEntry:
        """A log entry decoded from its JSON text, checked."""
        try:
            entry = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise self._error(f"has a corrupt log entry {n} of flow {flow_id!r} ({exc})",
                              "restore it from a replica") from exc
        if type(entry) is not dict:
            raise self._error(f"has a corrupt log entry {n} of flow {flow_id!r} (not an object)",
                              "restore it from a replica")
        return entry

    # -- flows ---------------------------------------------------------------

    def create(self, record: FlowRecord, *, acknowledge: bool = True) -> bool:
        """Insert a new flow; False (and nothing changed) if the id already exists."""
        return self._write_one("create a flow", _CREATE, _row(record), acknowledge) == 1

    def get(self, flow_id: str) -> FlowRecord | None:
        """The record for `flow_id`, or None."""
        with self._reading("read a flow") as conn:
            row = conn.execute(f"{_SELECT} WHERE id = ?", (flow_id,)).fetchone()
        return None if row is None else self._record(row)

    def load_log(self, flow_id: str) -> list[LogEntry]:
        """The flow's log entries in append order (empty if none)."""
        with self._reading("read a log") as conn:
            rows = conn.execute("SELECT n, entry FROM log WHERE flow_id = ? ORDER BY n",
                                (flow_id,)).fetchall()
        return [self._entry(flow_id, n, text) for n, text in rows]

    def append_log(self, flow_id: str, entry: LogEntry, *, acknowledge: bool = True) -> bool:
        """Append one entry to a running flow's log (one INSERT); False if it is not running."""
        return self._write_one("append to a log", _APPEND_LOG, (flow_id, _dump(entry)), acknowledge) == 1

    def transition(self, flow_id: str, expect: Iterable[str] | None, changes: dict[str, Any],
                   append: Sequence[LogEntry] = (), *, acknowledge: bool = True) -> bool:
        """Compare-and-set the status, apply `changes` and append `append`, all or nothing."""
        wanted = None if expect is None else tuple(expect)
        sql = _update_sql(tuple(changes), None if wanted is None else len(wanted))
        params = (*changes.values(), flow_id, *(wanted or ()))
        if not append:
            return self._write_one("record a transition", sql, params, acknowledge) == 1
        texts = [_dump(entry) for entry in append]
        with self._tx("record a transition", acknowledge) as conn:
            if conn.execute(sql, params).rowcount != 1:
                return False
            if texts:
                conn.executemany(_INSERT_NEXT, [(flow_id, text) for text in texts])
            return True

    def delete(self, flow_id: str, only: Iterable[str]) -> bool:
        """Delete the flow and its log if its status is in `only`; True if deleted."""
        statuses = tuple(only)
        with self._tx("delete a flow") as conn:
            cur = conn.execute(f"DELETE FROM flows WHERE id = ? AND status IN ({_marks(len(statuses))})",
                               (flow_id, *statuses))
            if cur.rowcount != 1:
                return False
            conn.execute("DELETE FROM log WHERE flow_id = ?", (flow_id,))
            return True

    def delete_terminal(self) -> int:
        """Delete every flow in a TERMINAL status; the count removed."""
        marks = _marks(len(_TERMINAL))
        with self._tx("delete finished flows") as conn:
            conn.execute(f"DELETE FROM log WHERE flow_id IN (SELECT id FROM flows WHERE status IN ({marks}))",
                         _TERMINAL)
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

    def pending(self) -> list[tuple[str, str | None, str | None]]:
        """[(id, waiting_tag, request_text_or_None), ...] for suspended flows."""
        with self._reading("list suspended flows") as conn:
            return conn.execute("SELECT id, waiting, request FROM flows WHERE status = ? ORDER BY seq",
                                (SUSPENDED,)).fetchall()

    def records(self) -> Iterator[tuple[FlowRecord, list[LogEntry]]]:
        """Every flow with its log, in creation order, read in batches (never all at once).

        Each batch is one consistent snapshot; flows created while iterating are included.
        """
        last = 0
        while True:
            batch = self._records_after(last)
            yield from ((rec, log) for _, rec, log in batch)
            if len(batch) < _BATCH:
                return
            last = batch[-1][0]

    def _records_after(self, last: int) -> list[tuple[int, FlowRecord, list[LogEntry]]]:
        """Up to _BATCH (seq, record, log) with seq > `last`, read in one transaction."""
        with self._lock, self._guard("read flows"):
            conn = self._live()
            conn.execute("BEGIN")
            try:
                rows = conn.execute(f"SELECT seq, {_COLS} FROM flows WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (last, _BATCH)).fetchall()
                entries = conn.execute(
                    "SELECT f.seq, l.flow_id, l.n, l.entry FROM flows f JOIN log l ON l.flow_id = f.id "
                    "WHERE f.seq > ? AND f.seq <= ? ORDER BY f.seq, l.n",
                    (last, rows[-1][0] if rows else last)).fetchall()
            finally:
                conn.execute("COMMIT")
        logs: dict[int, list[LogEntry]] = {}
        for seq, flow_id, n, text in entries:
            logs.setdefault(seq, []).append(self._entry(flow_id, n, text))
        return [(row[0], self._record(row[1:]), logs.get(row[0], [])) for row in rows]

    def put_flows(self, flows: Sequence[tuple[FlowRecord, list[LogEntry]]]) -> None:
        """Insert or replace these flows and their whole logs, all in one transaction."""
        latest = {rec.id: (rec, log) for rec, log in flows}  # a repeated id: the last one wins
        rows = [_row(rec) for rec, _ in latest.values()]
        entries = [(fid, n, _dump(e)) for fid, (_, log) in latest.items() for n, e in enumerate(log)]
        with self._tx("store flows") as conn:
            conn.executemany(_UPSERT, rows)
            conn.executemany("DELETE FROM log WHERE flow_id = ?", [(fid,) for fid in latest])
            conn.executemany(_INSERT_LOG, entries)

    # -- replicas ------------------------------------------------------------

    def put_replica(self, source: str, text: str) -> None:
        """Keep `text` (an export, as JSON text) in the replica slot of engine `source`."""
        with self._tx("store a replica") as conn:
            conn.execute("INSERT INTO replicas (source, text, updated) VALUES (?, ?, ?) "
                         "ON CONFLICT(source) DO UPDATE SET text = excluded.text, "
                         "updated = excluded.updated", (source, text, time.time()))

    def get_replica(self, source: str) -> str | None:
        """The replica held for engine `source`, or None."""
        with self._reading("read a replica") as conn:
            row = conn.execute("SELECT text FROM replicas WHERE source = ?", (source,)).fetchone()
        return None if row is None else row[0]

    def replica_sources(self) -> list[str]:
        """Names of the engines whose replicas this store holds, first stored first."""
        with self._reading("list replicas") as conn:
            return [source for (source,) in conn.execute("SELECT source FROM replicas ORDER BY rowid")]

    def close(self) -> None:
        """Close the connection (idempotent); later calls raise FedflowError."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
