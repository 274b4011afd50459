"""The SQL that `PostgresStore` runs: its schema, its upgrades, its statements.

Tables (all named ``fedflow_*``): ``meta`` (``format``, ``schema_version``),
``flows`` (one row per flow; ``seq`` gives creation order; ``runner`` is the
instance running a ``running`` flow; ``log_size`` is the flow's next journal
position, so an append is one statement that bumps it and inserts the entry),
``log`` (one row per entry, keyed by ``(flow_id, n)``), ``instances`` (each
open store's heartbeat: ``alive_until``, renewed by its lease keeper),
``replicas`` (with who sent each), ``schedules``, ``claims`` (one-shot claims,
e.g. a schedule tick, taken by exactly one instance) and ``call_answers`` (the
answer recorded for a peer call's idempotency key; ``seq`` gives recording
order).

A running flow belongs to its ``runner`` while that instance is alive (its
``alive_until`` is in the future, by the database's clock, so the machines'
clocks never matter); once it is not, another instance may claim the flow.

The store keeps opaque text exactly as given, lone surrogates and NULs
included, which PostgreSQL's ``text`` cannot hold: values (`OPAQUE`) and log
entries, and recorded answers with their keys, are stored as ``bytea``, the
text's UTF-8 with surrogates passed through.
"""

from __future__ import annotations

import dataclasses
import functools

from .base import FlowRecord

#: The store format this module reads and writes.
FORMAT = "fedflow-store"
#: The schema version written; an older one is upgraded on open, a newer one refused.
#: 1 had no ``call_answers``, no ``replicas.sender`` and no index for listing by flow name.
SCHEMA_VERSION = 2

#: Every FlowRecord field's column type (fields a record may lack are still created).
_TYPES = {
    "id": "TEXT PRIMARY KEY", "name": "TEXT", "status": "TEXT NOT NULL", "input": "BYTEA NOT NULL",
    "result": "BYTEA", "error": "BYTEA", "waiting": "TEXT", "request": "BYTEA", "owner": "TEXT",
    "epoch": "BIGINT NOT NULL DEFAULT 0", "created": "DOUBLE PRECISION NOT NULL DEFAULT 0",
    "updated": "DOUBLE PRECISION NOT NULL DEFAULT 0", "wake_at": "DOUBLE PRECISION",
    "version": "BIGINT NOT NULL DEFAULT 0",
}
#: The FlowRecord fields holding opaque text (kept as bytea).
OPAQUE = ("input", "result", "error", "request")
COLUMNS = tuple(field.name for field in dataclasses.fields(FlowRecord))
_unknown = sorted(set(COLUMNS) - set(_TYPES))
if _unknown:  # a new FlowRecord field needs a column (and a schema upgrade) here
    raise ImportError(f"fedflow.store.postgres_sql has no column for FlowRecord field(s) {_unknown}")
_COLS = ", ".join(COLUMNS)

#: Tables this schema has: a database holding any other table is not fedflow's.
TABLES = ("fedflow_meta", "fedflow_flows", "fedflow_log", "fedflow_instances", "fedflow_replicas",
          "fedflow_schedules", "fedflow_claims", "fedflow_call_answers")
_SCHEMA_1 = (
    "CREATE TABLE fedflow_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE fedflow_flows (seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, "
    + ", ".join(f"{column} {kind}" for column, kind in _TYPES.items())
    + ", runner TEXT, log_size INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX fedflow_flows_status ON fedflow_flows (status, seq)",
    "CREATE INDEX fedflow_flows_wake ON fedflow_flows (wake_at) WHERE status = 'suspended' AND wake_at IS NOT NULL",
    "CREATE TABLE fedflow_log (flow_id TEXT NOT NULL, n INTEGER NOT NULL, entry BYTEA NOT NULL, "
    "PRIMARY KEY (flow_id, n))",
    "CREATE TABLE fedflow_instances (runner TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "alive_until TIMESTAMPTZ NOT NULL)",
    "CREATE TABLE fedflow_replicas (seq BIGINT GENERATED ALWAYS AS IDENTITY, source TEXT PRIMARY KEY, "
    "text TEXT NOT NULL, updated DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE fedflow_schedules (name TEXT PRIMARY KEY, spec TEXT NOT NULL, "
    "next_at DOUBLE PRECISION NOT NULL, last_id TEXT)",
    "CREATE TABLE fedflow_claims (key TEXT PRIMARY KEY, runner TEXT NOT NULL, "
    "at TIMESTAMPTZ NOT NULL DEFAULT now())",
)
#: Step 1 -> 2: answers to peer calls (keys may hold NULs, so bytea), replica senders, and the
#: index a listing by flow name walks (newest first within one name).
_STEP_2 = (
    "CREATE TABLE fedflow_call_answers (seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, key BYTEA PRIMARY KEY, "
    "text BYTEA NOT NULL, at DOUBLE PRECISION NOT NULL)",
    "ALTER TABLE fedflow_replicas ADD COLUMN sender TEXT",
    "CREATE INDEX fedflow_flows_name ON fedflow_flows (name, seq)",
)
SCHEMA = (*_SCHEMA_1, *_STEP_2)
#: Schema version -> the statements that bring it to SCHEMA_VERSION (one transaction).
UPGRADE: dict[int, tuple[str, ...]] = {1: _STEP_2}
#: Taken (transaction-scoped) while the schema is created or upgraded: one instance does it.
SCHEMA_LOCK = 0x6665_6466_6C6F_77  # "fedflow"

#: The tables of the `public` schema (what a database holds).
LIST_TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
SELECT = f"SELECT {_COLS} FROM fedflow_flows"
CREATE = (f"INSERT INTO fedflow_flows ({_COLS}, runner) VALUES ({', '.join('%s' for _ in COLUMNS)}, %s) "
          f"ON CONFLICT (id) DO NOTHING")
UPSERT = (f"INSERT INTO fedflow_flows ({_COLS}, runner, log_size) "
          f"VALUES ({', '.join('%s' for _ in COLUMNS)}, %s, %s) ON CONFLICT (id) DO UPDATE SET "
          + ", ".join(f"{c} = excluded.{c}" for c in (*COLUMNS, "runner", "log_size") if c not in ("id", "version"))
          + ", version = GREATEST(excluded.version, fedflow_flows.version + 1)")
#: %(id)s, %(me)s, %(entry)s: append to a running flow this instance runs (one statement), at
#: %(version)s unless that is NULL.
APPEND_LOG = ("WITH f AS (UPDATE fedflow_flows SET log_size = log_size + 1 WHERE id = %(id)s AND status = "
              "'running' AND runner = %(me)s AND (%(version)s::bigint IS NULL OR version = %(version)s::bigint) "
              "RETURNING id, log_size - 1 AS n) "
              "INSERT INTO fedflow_log (flow_id, n, entry) SELECT id, n, %(entry)s FROM f")
LOAD_LOG = "SELECT entry FROM fedflow_log WHERE flow_id = %s ORDER BY n"
DELETE = ("WITH d AS (DELETE FROM fedflow_flows WHERE id = %s AND status = ANY(%s) RETURNING id), "
          "l AS (DELETE FROM fedflow_log WHERE flow_id IN (SELECT id FROM d)) SELECT count(*) FROM d")
DELETE_TERMINAL = ("WITH d AS (DELETE FROM fedflow_flows WHERE status = ANY(%s) RETURNING id), "
                   "l AS (DELETE FROM fedflow_log WHERE flow_id IN (SELECT id FROM d)) SELECT count(*) FROM d")
LIST = "SELECT id, status FROM fedflow_flows ORDER BY seq"
IDS = "SELECT id FROM fedflow_flows WHERE status = %s ORDER BY seq"
PENDING = "SELECT id, waiting, request FROM fedflow_flows WHERE status = 'suspended' ORDER BY seq"
RECORDS_AFTER = f"SELECT seq, {_COLS} FROM fedflow_flows WHERE seq > %s ORDER BY seq LIMIT %s"
LOGS_BETWEEN = ("SELECT flow_id, entry FROM fedflow_log WHERE flow_id IN "
                "(SELECT id FROM fedflow_flows WHERE seq > %s AND seq <= %s) ORDER BY flow_id, n")
PUT_REPLICA = ("INSERT INTO fedflow_replicas (source, text, updated, sender) VALUES (%s, %s, %s, %s) "
               "ON CONFLICT (source) DO UPDATE SET text = excluded.text, updated = excluded.updated, "
               "sender = excluded.sender")
GET_REPLICA = "SELECT text FROM fedflow_replicas WHERE source = %s"
REPLICA_SOURCES = "SELECT source FROM fedflow_replicas ORDER BY seq"
REPLICA_SLOTS = "SELECT source, octet_length(text), updated, sender FROM fedflow_replicas ORDER BY seq"

# -- listings -------------------------------------------------------------------
COUNT_BY_STATUS = "SELECT status, count(*) FROM fedflow_flows GROUP BY status"


def page_sql(status: bool, flow: bool, id_prefix: bool, after: bool) -> str:
    """The SELECT of one listing page, newest first, for the filters given (%(status)s, %(flow)s,
    %(prefix)s, %(before)s: the seq to stay below, %(limit)s). Rows come from the (status, seq),
    (name, seq) or seq index walked backwards, so a page reads about `limit` rows (an id prefix
    is checked on the rows walked)."""
    where = [cond for on, cond in ((status, "status = %(status)s"), (flow, "name = %(flow)s"),
                                   (id_prefix, "starts_with(id, %(prefix)s)"), (after, "seq < %(before)s")) if on]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return (f"SELECT seq, id, name, status, waiting, owner, epoch, created, updated, wake_at FROM fedflow_flows"
            f"{clause} ORDER BY seq DESC LIMIT %(limit)s")


# -- answers to peer calls, by idempotency key ------------------------------------
#: The answer kept for a key, in one statement: the new one, or (on a conflict, even with a
#: concurrent insert) the first one, which the no-op update hands back.
RECORD_ANSWER = ("INSERT INTO fedflow_call_answers (key, text, at) VALUES (%s, %s, %s) ON CONFLICT (key) "
                 "DO UPDATE SET text = fedflow_call_answers.text RETURNING text")
RECORDED_ANSWER = "SELECT text FROM fedflow_call_answers WHERE key = %s"
#: %(before)s drop what was recorded before it, %(keep)s keep at most this many (the newest). The
#: seq has gaps (a key recorded twice uses one up), so the cut is found by walking its index.
PRUNE_ANSWERS = ("DELETE FROM fedflow_call_answers WHERE at < %(before)s OR seq <= (SELECT seq FROM "
                 "fedflow_call_answers ORDER BY seq DESC OFFSET GREATEST(%(keep)s::bigint, 0) LIMIT 1)")

# -- leases: instances' heartbeats and running flows' runners ------------------
#: %(me)s, %(name)s, %(lease)s seconds: (re)announce this instance alive for the lease.
HEARTBEAT = ("INSERT INTO fedflow_instances (runner, name, alive_until) "
             "VALUES (%(me)s, %(name)s, now() + %(lease)s * interval '1 second') "
             "ON CONFLICT (runner) DO UPDATE SET alive_until = excluded.alive_until")
#: Gone for good: instances whose heartbeat stopped an hour ago (their rows are only history).
FORGET_DEAD = "DELETE FROM fedflow_instances WHERE alive_until < now() - interval '1 hour'"
#: This instance stops: its running flows may be taken over at once.
RETIRE = "UPDATE fedflow_instances SET alive_until = now() - interval '1 second' WHERE runner = %s"
_ORPHANED = ("status = 'running' AND (runner IS NULL OR runner = %(me)s OR NOT EXISTS (SELECT 1 FROM "
             "fedflow_instances i WHERE i.runner = fedflow_flows.runner AND i.alive_until > now()))")
#: Whether a running flow waits for an instance to take it over (a cheap poll).
ANY_ORPHANED = f"SELECT EXISTS (SELECT 1 FROM fedflow_flows WHERE {_ORPHANED} AND runner IS DISTINCT FROM %(me)s)"
#: Claim every running flow whose runner is gone (or is this instance): they are ours to re-run. A
#: claim from another runner raises the version, so the old run (if it still lives) writes nothing more.
CLAIM_RUNNING = (f"UPDATE fedflow_flows SET version = version + (runner IS DISTINCT FROM %(me)s)::int, "
                 f"runner = %(me)s WHERE seq IN (SELECT seq FROM fedflow_flows WHERE {_ORPHANED} "
                 f"ORDER BY seq FOR UPDATE SKIP LOCKED) RETURNING seq, id")
RUNNER_OF = ("SELECT f.runner, i.name, i.alive_until > now() FROM fedflow_flows f "
             "LEFT JOIN fedflow_instances i ON i.runner = f.runner WHERE f.id = %s")

# -- time: timers and schedules, fired once across instances -------------------
TIMERS = ("SELECT id, COALESCE(waiting, ''), wake_at FROM fedflow_flows "
          "WHERE status = 'suspended' AND wake_at IS NOT NULL ORDER BY wake_at, seq")
COUNT_TIMERS = "SELECT count(*) FROM fedflow_flows WHERE status = 'suspended' AND wake_at IS NOT NULL"
NEXT_WAKE = "SELECT min(wake_at) FROM fedflow_flows WHERE status = 'suspended' AND wake_at IS NOT NULL"
#: Due timers, skipping rows another instance is changing right now (it is firing them).
DUE = ("SELECT id, COALESCE(waiting, ''), wake_at FROM fedflow_flows WHERE status = 'suspended' "
       "AND wake_at IS NOT NULL AND wake_at <= %s ORDER BY wake_at, seq LIMIT %s FOR UPDATE SKIP LOCKED")
PUT_SCHEDULE = ("INSERT INTO fedflow_schedules (name, spec, next_at, last_id) VALUES (%s, %s, %s, NULL) "
                "ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, next_at = excluded.next_at, "
                "last_id = NULL")
SCHEDULES = "SELECT name, spec, next_at, last_id FROM fedflow_schedules ORDER BY name"
DELETE_SCHEDULE = "DELETE FROM fedflow_schedules WHERE name = %s"
ADVANCE_SCHEDULE = ("UPDATE fedflow_schedules SET next_at = %s, last_id = %s "
                    "WHERE name = %s AND spec = %s AND next_at = %s")
#: A one-shot claim: the first instance to insert `key` has it, every later one is refused.
CLAIM_ONCE = "INSERT INTO fedflow_claims (key, runner) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING"


@functools.lru_cache(maxsize=256)
def update_sql(columns: tuple[str, ...], guarded: bool, versioned: bool, appending: bool, by_runner: bool) -> str:
    """The compare-and-set UPDATE of a transition: set `columns` (%(c_NAME)s each) on flow %(id)s
    and raise its version, if its status is in %(expect)s (`guarded`), its version is %(version)s
    (`versioned`) and, `by_runner`, this instance %(me)s runs it; `appending` also inserts
    %(entries)s (a bytea[]) at the end of its log, in the same statement. A new status of running
    makes this instance its runner; any other status clears the runner."""
    sets = [f"{c} = %(c_{c})s" for c in columns]
    sets.append("version = version + 1")
    if "status" in columns:
        sets.append("runner = CASE WHEN %(c_status)s = 'running' THEN %(me)s END")
    if appending:
        sets.append("log_size = log_size + cardinality(%(entries)s::bytea[])")
    where = "id = %(id)s" + (" AND status = ANY(%(expect)s)" if guarded else "") + (
        " AND version = %(version)s" if versioned else "") + (" AND runner = %(me)s" if by_runner else "")
    update = f"UPDATE fedflow_flows SET {', '.join(sets)} WHERE {where}"
    if not appending:
        return update
    return (f"WITH f AS ({update} RETURNING id, log_size - cardinality(%(entries)s::bytea[]) AS base) "
            f"INSERT INTO fedflow_log (flow_id, n, entry) SELECT f.id, f.base + e.i - 1, e.entry "
            f"FROM f, unnest(%(entries)s::bytea[]) WITH ORDINALITY AS e(entry, i)")
