"""The SQL that `SQLiteStore` runs: its schema, the upgrade from older files, its statements.

Tables: ``meta`` (``format``, ``schema_version``), ``flows`` (one row per
flow, ``seq`` gives creation order), ``log`` (one row per log entry, keyed
by ``(flow_id, n)``, so an append is one INSERT), ``bodies`` and ``replicas``.

``bodies`` keeps large values out of line. A flow's input, result, error or
request, or a log entry, whose JSON text is at least `SPILL_CHARS` long is
stored there, keyed by ``(flow_id, slot)`` (slot: the column's name, or the
entry's ``n``), and its own column holds the blob `SPILLED` instead. A status
change then rewrites a small ``flows`` row, not a 64 KiB input with it, and
the ``log`` index (WITHOUT ROWID, so small entries cost one page) never holds
large rows. Reads put the text back in SQL (`value_expr`). A spilled column
later set to a small value leaves its body until the slot is spilled again
or the flow is deleted: at most one stale body per column per flow.

Every flow row carries a ``version``, raised by one in the same UPDATE as
every change of state, so a change applies only to the row as it was read
(`update_sql`): two connections, or two processes, never both apply one.
"""

from __future__ import annotations

import dataclasses

from .base import FlowRecord

#: The store format this module reads and writes.
FORMAT = "fedflow-store"
#: The schema version written, and what each older one lacks (it is upgraded on open):
#: 1 had no ``bodies``; 1-3 had no ``version`` column; 3 kept a result that repeated the end of
#: a journal entry as a reference to it (the blob ``b"n:size"``), written out in full by the upgrade.
#: 4 had no timers (``flows.wake_at``) and no ``schedules``.
SCHEMA_VERSION = 5
#: A value text at least this long (in characters) is kept in ``bodies``.
SPILL_CHARS = 1024
#: What a spilled column holds: a blob, which no JSON text ever is.
SPILLED = b"spilled"
#: The FlowRecord fields that may be spilled.
SPILLABLE = ("input", "result", "error", "request")

COLUMNS = tuple(field.name for field in dataclasses.fields(FlowRecord))
_COLS = ", ".join(COLUMNS)
_MARKS = ", ".join("?" * len(COLUMNS))

#: The tables each schema version has.
TABLES = {1: frozenset({"meta", "flows", "log", "replicas"}),
          2: frozenset({"meta", "flows", "log", "bodies", "replicas"}),
          3: frozenset({"meta", "flows", "log", "bodies", "replicas"}),
          4: frozenset({"meta", "flows", "log", "bodies", "replicas"}),
          5: frozenset({"meta", "flows", "log", "bodies", "replicas", "schedules"})}
_BODIES = ("CREATE TABLE IF NOT EXISTS bodies (flow_id TEXT NOT NULL, slot NOT NULL, "
           "text TEXT NOT NULL, UNIQUE (flow_id, slot))")
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS flows (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
    "name TEXT, status TEXT NOT NULL, input TEXT, result TEXT, error TEXT, waiting TEXT, "
    "request TEXT, owner TEXT, epoch INTEGER NOT NULL DEFAULT 0, "
    "created REAL NOT NULL DEFAULT 0, updated REAL NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 0, "
    "wake_at REAL)",
    "CREATE INDEX IF NOT EXISTS flows_status ON flows (status)",
    "CREATE TABLE IF NOT EXISTS log (flow_id TEXT NOT NULL, n INTEGER NOT NULL, "
    "entry TEXT NOT NULL, PRIMARY KEY (flow_id, n)) WITHOUT ROWID",
    _BODIES,
    "CREATE TABLE IF NOT EXISTS replicas (source TEXT PRIMARY KEY, text TEXT NOT NULL, "
    "updated REAL NOT NULL)",
)

# -- timers and schedules ----------------------------------------------------------
# A suspended flow's timer is its row's wake_at; the partial index holds only the rows
# with a timer, so finding the next one due costs one index step however many flows wait.
_WAKE_INDEX = ("CREATE INDEX IF NOT EXISTS flows_wake ON flows (wake_at) "
               "WHERE wake_at IS NOT NULL AND status = 'suspended'")
_SCHEDULES = ("CREATE TABLE IF NOT EXISTS schedules (name TEXT PRIMARY KEY, spec TEXT NOT NULL, "
              "next_at REAL NOT NULL, last_id TEXT)")
SCHEMA = (*SCHEMA, _WAKE_INDEX, _SCHEDULES)
#: Upgrade step 3 -> 4: timers and schedules.
_TIME_STEP = ("ALTER TABLE flows ADD COLUMN wake_at REAL", _WAKE_INDEX, _SCHEDULES)
_TIMERS_WHERE = "status = 'suspended' AND wake_at IS NOT NULL"
_TIMED = "flows INDEXED BY flows_wake"  # else the planner takes flows_status and scans every waiting flow
TIMERS = f"SELECT id, waiting, wake_at FROM {_TIMED} WHERE {_TIMERS_WHERE} ORDER BY wake_at"
NEXT_WAKE = f"SELECT MIN(wake_at) FROM {_TIMED} WHERE {_TIMERS_WHERE}"
DUE = f"SELECT id, waiting, wake_at FROM {_TIMED} WHERE {_TIMERS_WHERE} AND wake_at <= ? ORDER BY wake_at LIMIT ?"
PUT_SCHEDULE = ("INSERT INTO schedules (name, spec, next_at, last_id) VALUES (?, ?, ?, NULL) "
                "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, next_at = excluded.next_at, "
                "last_id = NULL")
SCHEDULES = "SELECT name, spec, next_at, last_id FROM schedules ORDER BY name"
ADVANCE_SCHEDULE = ("UPDATE schedules SET next_at = ?, last_id = ? WHERE name = ? AND spec = ? "
                    "AND next_at = ?")

_SET_VERSION = f"UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version'"
_ADD_VERSION = "ALTER TABLE flows ADD COLUMN version INTEGER NOT NULL DEFAULT 0"
#: Schema version -> the statements that bring it to SCHEMA_VERSION, run in one transaction
#: (after `REFERRED_RESULTS` are written out in full, for schema 3).
UPGRADE = {1: (_BODIES, _ADD_VERSION, *_TIME_STEP, _SET_VERSION), 2: (_ADD_VERSION, *_TIME_STEP, _SET_VERSION),
           3: (_ADD_VERSION, *_TIME_STEP, _SET_VERSION), 4: (*_TIME_STEP, _SET_VERSION)}
#: Schema 3's result references: (flow id, the reference ``b"n:size"``) of each.
REFERRED_RESULTS = "SELECT flow_id, text FROM bodies WHERE slot = 'result' AND typeof(text) = 'blob'"
#: The UTF-8 bytes of a flow's log entry body ?2 (a reference names its result's bytes in them).
ENTRY_BYTES = "SELECT CAST(text AS BLOB) FROM bodies WHERE flow_id = ?1 AND slot = ?2"


def value_expr(column: str, flow_id: str, slot: str, text: str = "bodies.text") -> str:
    """SQL for `column`'s text, fetched from ``bodies`` when the column holds `SPILLED` (`text`:
    what to take from the body row). A missing body leaves the marker, reported as corrupt."""
    return (f"CASE WHEN typeof({column}) = 'blob' THEN COALESCE((SELECT {text} FROM bodies "
            f"WHERE bodies.flow_id = {flow_id} AND bodies.slot = {slot}), {column}) ELSE {column} END")


def column(name: str) -> str:
    """SQL for flows column `name`, its spilled value put back."""
    return value_expr(f"flows.{name}", "flows.id", f"'{name}'") if name in SPILLABLE else f"flows.{name}"


#: Every flows column, spilled values put back, in FlowRecord order.
RECORD_COLS = ", ".join(column(c) for c in COLUMNS)
SELECT = f"SELECT {RECORD_COLS} FROM flows"
#: A log row's entry text, spilled or not. The unary + drops log.n's INTEGER affinity, which
#: would otherwise be applied to the untyped slot and keep the lookup off the (flow_id, slot) index.
ENTRY = value_expr("log.entry", "log.flow_id", "+log.n")

UPSERT = (f"INSERT INTO flows ({_COLS}) VALUES ({_MARKS}) ON CONFLICT(id) DO UPDATE SET "
          + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c not in ("id", "version"))
          + ", version = MAX(excluded.version, flows.version + 1)")
CREATE = f"INSERT INTO flows ({_COLS}) VALUES ({_MARKS}) ON CONFLICT(id) DO NOTHING"
INSERT_LOG = "INSERT INTO log (flow_id, n, entry) VALUES (?, ?, ?)"
#: ?1 flow, ?2 entry, ?3 the version the appending run holds (NULL: any).
APPEND_LOG = ("INSERT INTO log (flow_id, n, entry) SELECT id, "
              "(SELECT COALESCE(MAX(n), -1) + 1 FROM log WHERE flow_id = ?1), ?2 "
              "FROM flows WHERE id = ?1 AND status = 'running' AND (?3 IS NULL OR version = ?3)")
INSERT_NEXT = ("INSERT INTO log (flow_id, n, entry) VALUES "
               "(?1, (SELECT COALESCE(MAX(n), -1) + 1 FROM log WHERE flow_id = ?1), ?2)")
LAST_N = "SELECT MAX(n) FROM log WHERE flow_id = ?"
PUT_BODY = ("INSERT INTO bodies (flow_id, slot, text) VALUES (?, ?, ?) "
            "ON CONFLICT(flow_id, slot) DO UPDATE SET text = excluded.text")
DELETE_BODIES = "DELETE FROM bodies WHERE flow_id = ?"
def marks(count: int) -> str:
    """``?, ?, ?`` with `count` placeholders."""
    return ", ".join("?" * count)


def update_sql(columns: tuple[str, ...], expect: int | None, versioned: bool) -> str:
    """The compare-and-set UPDATE for `columns` (checked by the caller, see `check_changes`),
    guarded by `expect` statuses (None: any) and, when `versioned`, the version read; it raises
    the version. Parameters: the new values, the id, the statuses, the version."""
    sets = "".join(f"{c} = ?, " for c in columns)
    guard = "" if expect is None else f" AND status IN ({marks(expect)})"
    version = " AND version = ?" if versioned else ""
    return f"UPDATE flows SET {sets}version = version + 1 WHERE id = ?{guard}{version}"
