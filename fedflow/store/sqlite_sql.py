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
"""

from __future__ import annotations

import dataclasses

from .base import FlowRecord

#: The store format this module reads and writes.
FORMAT = "fedflow-store"
#: The schema version written; 1 lacked ``bodies`` and is upgraded on open.
SCHEMA_VERSION = 2
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
          2: frozenset({"meta", "flows", "log", "bodies", "replicas"})}
_BODIES = ("CREATE TABLE IF NOT EXISTS bodies (flow_id TEXT NOT NULL, slot NOT NULL, "
           "text TEXT NOT NULL, UNIQUE (flow_id, slot))")
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS flows (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
    "name TEXT, status TEXT NOT NULL, input TEXT, result TEXT, error TEXT, waiting TEXT, "
    "request TEXT, owner TEXT, epoch INTEGER NOT NULL DEFAULT 0, "
    "created REAL NOT NULL DEFAULT 0, updated REAL NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS flows_status ON flows (status)",
    "CREATE TABLE IF NOT EXISTS log (flow_id TEXT NOT NULL, n INTEGER NOT NULL, "
    "entry TEXT NOT NULL, PRIMARY KEY (flow_id, n)) WITHOUT ROWID",
    _BODIES,
    "CREATE TABLE IF NOT EXISTS replicas (source TEXT PRIMARY KEY, text TEXT NOT NULL, "
    "updated REAL NOT NULL)",
)
#: Schema 1 -> 2, in one transaction: nothing moves; large values written from now on spill.
UPGRADE_FROM_1 = (_BODIES, "UPDATE meta SET value = '2' WHERE key = 'schema_version'")


def value_expr(column: str, flow_id: str, slot: str) -> str:
    """SQL for `column`'s text, fetched from ``bodies`` when the column holds `SPILLED`.
    A missing body leaves the marker, which the store reports as corrupt."""
    return (f"CASE WHEN typeof({column}) = 'blob' THEN COALESCE((SELECT text FROM bodies "
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
          + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "id"))
CREATE = f"INSERT INTO flows ({_COLS}) VALUES ({_MARKS}) ON CONFLICT(id) DO NOTHING"
INSERT_LOG = "INSERT INTO log (flow_id, n, entry) VALUES (?, ?, ?)"
APPEND_LOG = ("INSERT INTO log (flow_id, n, entry) SELECT id, "
              "(SELECT COALESCE(MAX(n), -1) + 1 FROM log WHERE flow_id = ?1), ?2 "
              "FROM flows WHERE id = ?1 AND status = 'running'")
INSERT_NEXT = ("INSERT INTO log (flow_id, n, entry) VALUES "
               "(?1, (SELECT COALESCE(MAX(n), -1) + 1 FROM log WHERE flow_id = ?1), ?2)")
LAST_N = "SELECT MAX(n) FROM log WHERE flow_id = ?"
PUT_BODY = ("INSERT INTO bodies (flow_id, slot, text) VALUES (?, ?, ?) "
            "ON CONFLICT(flow_id, slot) DO UPDATE SET text = excluded.text")
DELETE_BODIES = "DELETE FROM bodies WHERE flow_id = ?"


def marks(count: int) -> str:
    """``?, ?, ?`` with `count` placeholders."""
    return ", ".join("?" * count)


def update_sql(columns: tuple[str, ...], expect: int | None) -> str:
    """The compare-and-set UPDATE for `columns`, guarded by `expect` statuses (None: any)."""
    bad = [c for c in columns if c not in COLUMNS or c == "id"]
    if bad:
        raise ValueError(f"transition cannot change {bad}; changeable fields: "
                         f"{[c for c in COLUMNS if c != 'id']}")
    sets = ", ".join(f"{c} = ?" for c in columns) or "status = status"
    guard = "" if expect is None else f" AND status IN ({marks(expect)})"
    return f"UPDATE flows SET {sets} WHERE id = ?{guard}"
