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

A large result whose text, followed by a closing brace, ends the body of a
log entry (as the last journal entry of a flow that returns what that step
or call answered does) is not written a second time: its body is a
reference, the blob ``b"n:size"`` (`result_ref`; every other body is text),
and reads take the text from entry ``n``'s body (`RESULT`). The reference is
written only where SQL finds those bytes there (`PUT_RESULT_REF`), and an
entry's body never changes while the reference exists (`put_flows` and the
deletes replace or drop a flow's bodies together), so it always reads back
the result.
"""

from __future__ import annotations

import dataclasses

from .base import FlowRecord

#: The store format this module reads and writes.
FORMAT = "fedflow-store"
#: The schema version written, and what each older one lacks (it is upgraded on open):
#: 1 had no ``bodies``; 2 had no result references (a schema-2 reader would not resolve one).
SCHEMA_VERSION = 3
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
          3: frozenset({"meta", "flows", "log", "bodies", "replicas"})}
_BODIES = ("CREATE TABLE IF NOT EXISTS bodies (flow_id TEXT NOT NULL, slot NOT NULL, "
           "text TEXT NOT NULL, UNIQUE (flow_id, slot))")
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS flows (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
    "name TEXT, status TEXT NOT NULL, input TEXT, result TEXT, error TEXT, waiting TEXT, "
    "request TEXT, owner TEXT, epoch INTEGER NOT NULL DEFAULT 0, "
    "created REAL NOT NULL DEFAULT 0, updated REAL NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS flows_status ON flows (status)",
    "CREATE INDEX IF NOT EXISTS flows_name ON flows (name)",
    "CREATE TABLE IF NOT EXISTS log (flow_id TEXT NOT NULL, n INTEGER NOT NULL, "
    "entry TEXT NOT NULL, PRIMARY KEY (flow_id, n)) WITHOUT ROWID",
    _BODIES,
    "CREATE TABLE IF NOT EXISTS replicas (source TEXT PRIMARY KEY, text TEXT NOT NULL, "
    "updated REAL NOT NULL)",
)
_SET_VERSION = f"UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version'"
#: Schema version -> the statements that bring it to SCHEMA_VERSION, run in one transaction.
#: Nothing moves: large values and result references are only written from then on.
UPGRADE = {1: (_BODIES, _SET_VERSION), 2: (_SET_VERSION,)}


#: Indexes a listing by flow name needs; made on open when a file lacks them (older files do).
#: They do not change the format: older fedflow versions read such a file as before.
LISTING_INDEXES = {"flows_name": "CREATE INDEX IF NOT EXISTS flows_name ON flows (name)"}


def page_sql(status: bool, flow: bool, id_prefix: bool, after: bool) -> str:
    """The SELECT of one listing page, newest first, for the filters given (parameters in the order
    status, flow, the id range's two ends, the seq to stay below, the limit). Rows come from the
    status or name index, both ordered by seq within one value, so a page reads ~limit rows."""
    where = [cond for on, cond in ((status, "status = ?"), (flow, "name = ?"),
                                   (id_prefix, "id >= ? AND id < ?"), (after, "seq < ?")) if on]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return (f"SELECT seq, id, name, status, waiting, owner, epoch, created, updated FROM flows{clause} "
            f"ORDER BY seq DESC LIMIT ?")


COUNT_BY_STATUS = "SELECT status, COUNT(*) FROM flows GROUP BY status"


def value_expr(column: str, flow_id: str, slot: str, text: str = "bodies.text") -> str:
    """SQL for `column`'s text, fetched from ``bodies`` when the column holds `SPILLED` (`text`:
    what to take from the body row). A missing body leaves the marker, reported as corrupt."""
    return (f"CASE WHEN typeof({column}) = 'blob' THEN COALESCE((SELECT {text} FROM bodies "
            f"WHERE bodies.flow_id = {flow_id} AND bodies.slot = {slot}), {column}) ELSE {column} END")


def result_ref(n: int, size: int) -> bytes:
    """The body of a result that is the `size` bytes (UTF-8) before the closing brace that ends
    log entry `n`'s body: a blob, which no stored text is."""
    return f"{n}:{size}".encode("ascii")


def _referred(ref: str) -> str:
    """SQL for the text a result reference `ref` (an SQL expression, see `result_ref`) names."""
    n = f"+CAST(substr({ref}, 1, instr({ref}, ':') - 1) AS INTEGER)"  # +: see ENTRY
    size = f"CAST(substr({ref}, instr({ref}, ':') + 1) AS INTEGER)"
    return (f"(SELECT CAST(substr(CAST(entry.text AS BLOB), -1 - {size}, {size}) AS TEXT) FROM bodies "
            f"AS entry WHERE entry.flow_id = flows.id AND entry.slot = {n})")


#: flows.result's text: inline, in its body, or in the log entry its body refers to.
RESULT = value_expr("flows.result", "flows.id", "'result'",
                    f"CASE WHEN typeof(bodies.text) = 'blob' THEN {_referred('CAST(bodies.text AS TEXT)')} "
                    f"ELSE bodies.text END")


def column(name: str) -> str:
    """SQL for flows column `name`, its spilled value put back."""
    if name == "result":
        return RESULT
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
#: ?1 flow, ?2 entry n, ?3 the result and a closing brace as UTF-8, ?4 its `result_ref`: the
#: result's body becomes that reference where entry n's body ends with ?3 (compared as bytes:
#: no character counting); otherwise nothing is written.
PUT_RESULT_REF = ("INSERT INTO bodies (flow_id, slot, text) SELECT ?1, 'result', ?4 FROM bodies "
                  "WHERE flow_id = ?1 AND slot = ?2 AND substr(CAST(text AS BLOB), -length(?3)) = ?3 "
                  "ON CONFLICT(flow_id, slot) DO UPDATE SET text = excluded.text")


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
