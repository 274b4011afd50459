"""A Store in PostgreSQL, shared by several fedflow instances (psycopg 3 and a pool).

``Engine(store="postgresql://USER:PASSWORD@HOST:PORT/DBNAME")`` or ``fedflow
serve --db postgresql://...``. PostgreSQL is the replicated, backed-up
database a site already runs; fedflow only keeps its tables in it (see
`postgres_sql`), creates them in an empty database and upgrades them, and
refuses a database that holds anything else or a newer schema.

Every mutating method is one transaction (mostly one statement), committed
before it returns. A transition is a compare-and-set checked by the server in
that statement, so instances on other machines never both apply one. A write
made with ``acknowledge=False`` commits without waiting for the server's WAL
flush (``synchronous_commit = off``, on connections of its own): it is visible
at once, and the next acknowledged commit, which waits for the WAL up to
itself, makes it durable too.

Leases: each store is one *instance* with a unique runner id; a flow it sets
``running`` is its to run. `fedflow.leases` renews the instance's heartbeat
(`heartbeat`), and when an instance stops renewing, another claims its running
flows (`claim_running`) and re-runs them by replay. A journal append, and a
transition that expects only ``running`` (the end of a run), apply only while
this instance still runs the flow, so a run taken over never writes again.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NoReturn

from ..errors import FedflowError
from . import postgres_sql as sql
from .base import (
    DEFAULT_PAGE,
    RUNNING,
    STATUSES,
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

try:
    import psycopg
    import psycopg_pool
    from psycopg.conninfo import conninfo_to_dict
except ImportError:  # the error is raised when a PostgreSQL store is asked for
    psycopg = None  # type: ignore[assignment]

__all__ = ["DEFAULT_LEASE", "PostgresStore", "redact"]

#: Seconds an instance's running flows stay its own after its last heartbeat.
DEFAULT_LEASE = 5.0
_TERMINAL = sorted(TERMINAL)
_URL_FORM = "postgresql://USER:PASSWORD@HOST:PORT/DBNAME"
_OPAQUE_AT = tuple(sql.COLUMNS.index(c) for c in sql.OPAQUE if c in sql.COLUMNS)
_VERSION_AT = sql.COLUMNS.index("version")
_page_sql = functools.lru_cache(maxsize=16)(sql.page_sql)


def _keep(text: str | None) -> bytes | None:
    """Opaque text as the bytes it is kept as (UTF-8, lone surrogates passed through)."""
    return None if text is None else text.encode("utf-8", "surrogatepass")


def _give_back(data: bytes | None) -> str | None:
    """The opaque text kept as `data`, exactly as it was given."""
    return None if data is None else bytes(data).decode("utf-8", "surrogatepass")


def _commit_lazily(conn: psycopg.Connection) -> None:
    """Set up a connection for unacknowledged writes: commits do not wait for the WAL flush."""
    conn.execute("SET synchronous_commit = off")


def _row(record: FlowRecord, version: int) -> list[Any]:
    """`record` as a fedflow_flows row (COLUMNS order), opaque text as bytes, at `version`."""
    row = [getattr(record, column) for column in sql.COLUMNS]
    for at in _OPAQUE_AT:
        row[at] = _keep(row[at])
    row[_VERSION_AT] = version
    return row


def redact(url: str) -> str:
    """`url` with its password (in the authority or the query) replaced by ***."""
    url = re.sub(r"^(\w+://[^/@:]*):[^/@]*@", r"\1:***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)


def _line(exc: BaseException) -> str:
    """An exception's message on one line, without libpq's prefixes and hints."""
    text = " ".join(str(exc).split())
    return re.sub(r"^connection failed: |FATAL: +|\s*Is the server running on that host.*$", "", text).strip()


class PostgresStore(Store):
    """A `Store` in the PostgreSQL database at `url`; see the module docstring.

    `name` is this instance's name (shown as the runner of its flows), `lease`
    how many seconds its running flows stay its own after its last heartbeat,
    `pool_size` the most connections it opens.
    """

    def __init__(self, url: str, *, name: str = "fedflow", lease: float = DEFAULT_LEASE,
                 pool_size: int = 16, connect_timeout: float = 10.0) -> None:
        if psycopg is None:
            raise FedflowError("a postgresql:// store needs psycopg 3 and psycopg-pool; "
                               "install them with: pip install 'fedflow[postgres]'")
        if not 0 < lease < 86400:
            raise ValueError(f"lease must be a number of seconds above 0, not {lease!r}")
        self.url = url
        self.name = name
        self.lease = float(lease)
        self.runner = f"{name}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
        self._shown = redact(url)
        conninfo = self._conninfo(url, connect_timeout)
        with self._connect(conninfo) as conn:
            try:
                self._prepare(conn)
                self._heartbeat(conn)
            except psycopg.Error as exc:
                raise self._error(f"could not be set up ({_line(exc)})",
                                  "let the user create tables in the database, or create the store as its owner") \
                    from None
        # Each checkout is checked (one more round trip): connections a server restart broke are replaced.
        self._pools = {acknowledged: psycopg_pool.ConnectionPool(
            conninfo, min_size=1, max_size=pool_size, kwargs={"autocommit": True}, open=False,
            configure=None if acknowledged else _commit_lazily, check=psycopg_pool.ConnectionPool.check_connection,
            name=f"fedflow-{name}-{'acknowledged' if acknowledged else 'lazy'}", timeout=30.0)
            for acknowledged in (True, False)}
        try:
            for pool in self._pools.values():
                pool.open(wait=True, timeout=connect_timeout)
        except psycopg_pool.PoolTimeout as exc:
            self.close()
            raise self._error(f"cannot be reached any more ({exc})", "check the server and the URL") from exc

    def __repr__(self) -> str:
        return f"PostgresStore({self._shown!r}, name={self.name!r}, lease={self.lease:g})"

    # -- opening -------------------------------------------------------------

    def _error(self, detail: str, hint: str) -> FedflowError:
        """A FedflowError naming this store (password hidden), what is wrong and what to do."""
        return FedflowError(f"PostgreSQL store {self._shown} {detail}; {hint}")

    def _conninfo(self, url: str, connect_timeout: float) -> str:
        """`url` checked (one line naming the fix when it is malformed), with a connect timeout."""
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise FedflowError(f"{redact(url)} is not a valid PostgreSQL URL ({_line(exc)}); write it like "
                               f"{_URL_FORM}") from None
        if not params.get("dbname"):
            raise FedflowError(f"{redact(url)} names no database; write it like {_URL_FORM}")
        if "connect_timeout" in params:
            return url
        return f"{url}{'&' if '?' in url else '?'}connect_timeout={max(1, round(connect_timeout))}"

    def _connect(self, conninfo: str) -> psycopg.Connection:
        """One connection (autocommit), or a FedflowError saying what to fix."""
        try:
            return psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise self._connect_error(exc) from None

    def _connect_error(self, exc: psycopg.Error) -> FedflowError:
        message = _line(exc)
        low = message.lower()
        if "password" in low or ("role" in low and "does not exist" in low) or "pg_hba.conf" in low \
                or "authentication" in low:
            return self._error(f"refused the login ({message})", "fix the user and password in the URL")
        if "database" in low and "does not exist" in low:
            return self._error(f"has no such database ({message})",
                               "create it (CREATE DATABASE ...) or fix the database name in the URL")
        if "invalid" in low and "connection option" in low:
            return self._error(f"has a bad connection option ({message})", f"write it like {_URL_FORM}")
        return self._error(f"cannot be reached ({message})",
                           "start the server or fix the host and port in the URL")

    def _prepare(self, conn: psycopg.Connection) -> None:
        """Check the database is ours (or empty), then create or upgrade the schema."""
        version = self._check(conn)
        if version == sql.SCHEMA_VERSION:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (sql.SCHEMA_LOCK,))
            version = self._check(conn)  # another instance may have done it meanwhile
            if version == 0:
                for statement in sql.SCHEMA:
                    conn.execute(statement)
                conn.cursor().executemany("INSERT INTO fedflow_meta (key, value) VALUES (%s, %s)",
                                          [("format", sql.FORMAT), ("schema_version", str(sql.SCHEMA_VERSION))])
            elif version < sql.SCHEMA_VERSION:
                for statement in sql.UPGRADE.get(version, ()):
                    conn.execute(statement)
                conn.execute("UPDATE fedflow_meta SET value = %s WHERE key = 'schema_version'",
                             (str(sql.SCHEMA_VERSION),))

    def _check(self, conn: psycopg.Connection) -> int:
        """The database's fedflow schema version (0: empty); raise unless it is a store we read."""
        tables = [name for (name,) in conn.execute(sql.LIST_TABLES)]
        if not tables:
            return 0
        if "fedflow_meta" not in tables:
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise self._error(f"holds other tables ({shown}) and no fedflow store",
                              "give fedflow an empty database of its own (CREATE DATABASE fedflow); "
                              "fedflow left it unchanged")
        meta = dict(conn.execute("SELECT key, value FROM fedflow_meta").fetchall())
        version = str(meta.get("schema_version"))
        if meta.get("format") != sql.FORMAT or not version.isdigit():
            raise self._error(f"has a fedflow_meta table that is not fedflow's (format {meta.get('format')!r})",
                              "give fedflow an empty database of its own; fedflow left it unchanged")
        if int(version) > sql.SCHEMA_VERSION:
            raise self._error(f"was written by a newer fedflow (store schema {version}; this fedflow reads "
                              f"{sql.SCHEMA_VERSION})", "upgrade fedflow to open it")
        foreign = sorted(set(tables) - set(sql.TABLES))
        if foreign:
            raise self._error(f"holds tables fedflow does not know ({', '.join(foreign[:5])})",
                              "give fedflow an empty database of its own; fedflow left it unchanged")
        return int(version)

    # -- plumbing ------------------------------------------------------------

    @contextlib.contextmanager
    def _conn(self, operation: str, acknowledge: bool = True) -> Iterator[psycopg.Connection]:
        """A pooled connection (autocommit) for `operation`, one that commits lazily unless
        `acknowledge`; server errors become FedflowErrors."""
        pool = self._pools.get(acknowledge)
        if pool is None or pool.closed:
            raise self._error("is closed", "open a new store")
        try:
            with pool.connection() as conn:
                yield conn
        except psycopg_pool.PoolTimeout as exc:
            raise self._error(f"had no free connection to {operation} ({exc})",
                              "check the server, or give the store a larger pool") from exc
        except psycopg.Error as exc:
            self._raise_translated(exc, operation)

    def _raise_translated(self, exc: psycopg.Error, operation: str) -> NoReturn:
        if isinstance(exc, psycopg.ProgrammingError) and not isinstance(exc, psycopg.errors.UndefinedTable):
            raise exc  # a bug in a statement: keep it visible
        raise self._error(f"could not {operation} ({_line(exc)})", "check the server and the database") from exc

    def _one(self, operation: str, statement: str, params: Any = None, acknowledge: bool = True) -> int:
        """Run one statement; its rowcount."""
        with self._conn(operation, acknowledge) as conn:
            return conn.execute(statement, params).rowcount

    def _rows(self, operation: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self._conn(operation) as conn:
            return conn.execute(statement, params).fetchall()

    def _record(self, row: Sequence[Any]) -> FlowRecord:
        cells = list(row)
        for at in _OPAQUE_AT:
            cells[at] = _give_back(cells[at])
        rec = FlowRecord(*cells)
        if rec.status not in STATUSES:
            raise self._error(f"has a corrupt flow row (id {rec.id!r}, status {rec.status!r})",
                              "restore it from a replica or a backup")
        return rec

    def _runner_for(self, status: str) -> str | None:
        return self.runner if status == RUNNING else None

    # -- flows ---------------------------------------------------------------

    def create(self, record: FlowRecord, *, acknowledge: bool = True) -> bool:
        """Insert a new flow at version 0 (a running one is this instance's); False if the id exists."""
        row = [*_row(record, 0), self._runner_for(record.status)]
        return self._one("create a flow", sql.CREATE, row, acknowledge) == 1

    def get(self, flow_id: str) -> FlowRecord | None:
        """The record for `flow_id`, or None."""
        rows = self._rows("read a flow", f"{sql.SELECT} WHERE id = %s", (flow_id,))
        return self._record(rows[0]) if rows else None

    def load_log(self, flow_id: str) -> list[LogEntry]:
        """The flow's log entries in append order (empty if none)."""
        return [_give_back(data) for (data,) in self._rows("read a log", sql.LOAD_LOG, (flow_id,))]

    def append_log(self, flow_id: str, entry: LogEntry, *, version: int | None = None,
                   acknowledge: bool = True) -> bool:
        """Append one entry to a flow this instance runs, at `version` (any when None); False if it
        is not running here (any more) or changed."""
        params = {"id": flow_id, "me": self.runner, "entry": _keep(entry), "version": version}
        return self._one("append to a log", sql.APPEND_LOG, params, acknowledge) == 1

    def transition(self, flow_id: str, expect: Iterable[str] | None, changes: dict[str, Any],
                   append: Sequence[LogEntry] = (), *, version: int | None = None,
                   acknowledge: bool = True) -> bool:
        """Compare-and-set in one statement: if the flow's status is in `expect` and its version is
        `version`, apply `changes`, raise the version and append `append`; a transition that expects
        only running applies only while this instance runs the flow."""
        check_changes(changes)
        wanted = None if expect is None else sorted(set(expect))
        statement = sql.update_sql(tuple(changes), wanted is not None, version is not None, bool(append),
                                   wanted == [RUNNING])
        params = {f"c_{column}": _keep(value) if column in sql.OPAQUE else value for column, value in changes.items()}
        params.update(id=flow_id, expect=wanted, version=version, me=self.runner, entries=[_keep(e) for e in append])
        return self._one("record a transition", statement, params, acknowledge) > 0

    def delete(self, flow_id: str, only: Iterable[str]) -> bool:
        """Delete the flow and its log if its status is in `only`; True if deleted."""
        return self._rows("delete a flow", sql.DELETE, (flow_id, list(only)))[0][0] == 1

    def delete_terminal(self) -> int:
        """Delete every flow in a TERMINAL status; the count removed."""
        return self._rows("delete finished flows", sql.DELETE_TERMINAL, (_TERMINAL,))[0][0]

    def list(self) -> list[tuple[str, str]]:
        """[(id, status), ...] in creation order."""
        return [(fid, status) for fid, status in self._rows("list flows", sql.LIST)]

    def ids(self, status: str) -> list[str]:
        """Ids of flows in `status`, in creation order."""
        return [fid for (fid,) in self._rows("list flows", sql.IDS, (status,))]

    def list_page(self, status: str | None = None, flow: str | None = None, id_prefix: str | None = None,
                  limit: int = DEFAULT_PAGE, after: str | None = None) -> FlowPage:
        """Up to `limit` flows, newest first, filtered; see `Store.list_page`. The token is the
        creation number (seq) of the page's last flow: the next page starts below it."""
        check_page(status, limit)
        before = page_position(after)
        statement = _page_sql(bool(status), bool(flow), bool(id_prefix), before is not None)
        params = {"status": status, "flow": flow, "prefix": id_prefix, "before": before, "limit": limit + 1}
        rows = self._rows("list flows", statement, params)
        flows = [FlowSummary(*row[1:]) for row in rows[:limit]]
        return FlowPage(flows, str(rows[limit - 1][0]) if len(rows) > limit else None)

    def count_by_status(self) -> dict[str, int]:
        """How many flows are in each status (one query)."""
        return dict(self._rows("count flows", sql.COUNT_BY_STATUS))  # type: ignore[arg-type]

    def pending(self) -> list[tuple[str, str | None, str | None]]:
        """[(id, waiting_tag, request_text_or_None), ...] for suspended flows."""
        return [(fid, tag, _give_back(req)) for fid, tag, req in self._rows("list suspended flows", sql.PENDING)]

    def records(self) -> Iterator[tuple[FlowRecord, list[LogEntry]]]:
        """Every flow with its log, in creation order, read in batches (each one snapshot)."""
        return records_in_batches(self._records_after)

    def _records_after(self, last: int, count: int) -> list[tuple[int, FlowRecord, list[LogEntry]]]:
        with self._conn("read flows") as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            rows = conn.execute(sql.RECORDS_AFTER, (last, count)).fetchall()
            entries = conn.execute(sql.LOGS_BETWEEN, (last, rows[-1][0] if rows else last)).fetchall()
        logs: dict[str, list[LogEntry]] = {}
        for flow_id, data in entries:
            logs.setdefault(flow_id, []).append(_give_back(data))
        return [(row[0], self._record(row[1:]), logs.get(row[1], [])) for row in rows]

    def put_flows(self, flows: Sequence[tuple[FlowRecord, list[LogEntry]]]) -> None:
        """Insert or replace these flows and their whole logs, all in one transaction (a new flow
        keeps its record's version, a replaced one gets the larger of that and its old version + 1)."""
        latest = {rec.id: (rec, log) for rec, log in flows}  # a repeated id: the last one wins
        rows = [(*_row(rec, rec.version), self._runner_for(rec.status), len(log)) for rec, log in latest.values()]
        entries = [(fid, n, _keep(entry)) for fid, (_rec, log) in latest.items() for n, entry in enumerate(log)]
        with self._conn("store flows") as conn, conn.transaction():
            cur = conn.cursor()
            cur.executemany(sql.UPSERT, rows)
            cur.execute("DELETE FROM fedflow_log WHERE flow_id = ANY(%s)", (list(latest),))
            cur.executemany("INSERT INTO fedflow_log (flow_id, n, entry) VALUES (%s, %s, %s)", entries)

    # -- replicas ------------------------------------------------------------

    def put_replica(self, source: str, text: str, sender: str | None = None) -> None:
        """Keep `text` (an export, as JSON text) in the replica slot of engine `source`, noting its `sender`."""
        self._one("store a replica", sql.PUT_REPLICA, (source, text, time.time(), sender))

    def get_replica(self, source: str) -> str | None:
        """The replica held for engine `source`, or None."""
        rows = self._rows("read a replica", sql.GET_REPLICA, (source,))
        return rows[0][0] if rows else None

    def replica_sources(self) -> list[str]:
        """Names of the engines whose replicas this store holds, first stored first."""
        return [source for (source,) in self._rows("list replicas", sql.REPLICA_SOURCES)]

    def replica_slots(self) -> list[tuple[str, int, float, str | None]]:
        """[(source, bytes of its text as UTF-8, stored at, sender), ...], first stored first."""
        return [tuple(row) for row in self._rows("list replica slots", sql.REPLICA_SLOTS)]  # type: ignore[misc]

    # -- answers to peer calls -------------------------------------------------

    def record_answer(self, key: str, text: str, at: float) -> str:
        """Keep the first answer to call `key` (committed before it returns, unacknowledged like a
        journal entry); the answer kept, also when another instance recorded one at the same moment."""
        with self._conn("record a call's answer", acknowledge=False) as conn:
            kept = conn.execute(sql.RECORD_ANSWER, (_keep(key), _keep(text), at)).fetchone()[0]
        return _give_back(kept)  # type: ignore[return-value]

    def recorded_answer(self, key: str) -> str | None:
        """The answer recorded for call `key`, or None."""
        rows = self._rows("read a call's answer", sql.RECORDED_ANSWER, (_keep(key),))
        return _give_back(rows[0][0]) if rows else None

    def prune_answers(self, before: float, keep: int) -> int:
        """Drop answers recorded before `before`, and all but the `keep` newest; the count dropped."""
        return self._one("prune recorded answers", sql.PRUNE_ANSWERS, {"before": before, "keep": keep})

    # -- leases --------------------------------------------------------------

    def _heartbeat(self, conn: psycopg.Connection) -> None:
        conn.execute(sql.HEARTBEAT, {"me": self.runner, "name": self.name, "lease": self.lease})

    def heartbeat(self) -> None:
        """Say this instance is alive for another `lease` seconds (its running flows stay its own)."""
        with self._conn("renew the lease") as conn:
            self._heartbeat(conn)
            conn.execute(sql.FORGET_DEAD)

    def orphans_waiting(self) -> bool:
        """Whether a running flow's instance is gone, so the flow waits to be taken over."""
        return bool(self._rows("look for flows to take over", sql.ANY_ORPHANED, {"me": self.runner})[0][0])

    def claim_running(self) -> list[str]:
        """Claim, for this instance, every running flow whose instance is gone (its lease ran out),
        and those this instance already runs; their ids in creation order. Rows another instance is
        claiming at the same moment are skipped (it takes them)."""
        rows = self._rows("claim flows to take over", sql.CLAIM_RUNNING, {"me": self.runner})
        return [fid for _seq, fid in sorted(rows)]

    def runner_of(self, flow_id: str) -> tuple[str | None, bool]:
        """(name of the instance running `flow_id`, whether it is alive); (None, False) if none."""
        rows = self._rows("read a flow's runner", sql.RUNNER_OF, (flow_id,))
        if not rows or rows[0][0] is None:
            return None, False
        _runner, name, alive = rows[0]
        return name, bool(alive)

    def retire(self) -> None:
        """End this instance's lease now: its running flows may be taken over at once."""
        self._one("end the lease", sql.RETIRE, (self.runner,))

    # -- time: timers and schedules --------------------------------------------

    def timers(self) -> list[tuple[str, str, float]]:
        """[(id, waiting_tag, wake_at), ...] for suspended flows with a timer, earliest first."""
        return [tuple(row) for row in self._rows("list timers", sql.TIMERS)]  # type: ignore[misc]

    def count_timers(self) -> int:
        """How many suspended flows wait on a timer (a count over the wake index)."""
        return self._rows("count timers", sql.COUNT_TIMERS)[0][0]

    def next_wake(self) -> float | None:
        """The earliest wake_at of a suspended flow, or None when no timer is set."""
        return self._rows("read the next timer", sql.NEXT_WAKE)[0][0]

    def due(self, now: float, limit: int) -> list[tuple[str, str, float]]:
        """Up to `limit` timers with wake_at <= `now`, earliest first, skipping those another
        instance is firing right now (FOR UPDATE SKIP LOCKED); firing one is the flow's own
        compare-and-set transition, so a timer fires once across all instances."""
        return [tuple(row) for row in self._rows("list due timers", sql.DUE, (now, limit))]  # type: ignore[misc]

    def put_schedule(self, name: str, spec: str, next_at: float) -> None:
        """Create or replace schedule `name` (`spec`: its JSON text), next tick at `next_at`."""
        self._one("store a schedule", sql.PUT_SCHEDULE, (name, spec, next_at))

    def schedules(self) -> list[tuple[str, str, float, str | None]]:
        """[(name, spec, next_at, last_id), ...] in name order."""
        return [tuple(row) for row in self._rows("list schedules", sql.SCHEDULES)]  # type: ignore[misc]

    def delete_schedule(self, name: str) -> bool:
        """Drop schedule `name`; True if it existed."""
        return self._one("delete a schedule", sql.DELETE_SCHEDULE, (name,)) == 1

    def advance_schedule(self, name: str, spec: str, expect_next_at: float, next_at: float,
                         last_id: str | None) -> bool:
        """Compare-and-set a schedule's next tick: one instance moves it on, the others get False."""
        return self._one("advance a schedule", sql.ADVANCE_SCHEDULE,
                         (next_at, last_id, name, spec, expect_next_at)) == 1

    def claim_once(self, key: str) -> bool:
        """Claim `key` (e.g. ``"schedule:NAME:TICK"``) for this instance: True for exactly one
        caller across all instances, ever; False for every other."""
        return self._one("claim a tick", sql.CLAIM_ONCE, (key, self.runner)) == 1

    def close(self) -> None:
        """Close the pools (idempotent); later calls raise FedflowError."""
        pools, self._pools = getattr(self, "_pools", {}), {}
        for pool in pools.values():
            pool.close()
