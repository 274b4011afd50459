"""SQLiteStore beyond the shared contract: reopening, durability, bad files, locks, scale."""

from __future__ import annotations

import inspect
import json
import os
import re
import sqlite3
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fedflow import journal
from fedflow.errors import FedflowError
from fedflow.store import MemoryStore, SQLiteStore, open_store, sqlite_sql
from fedflow.store.base import DONE, RUNNING, SUSPENDED, FlowRecord


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where a test's store file lives."""
    return tmp_path / "s.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    """An open SQLiteStore on `db`."""
    made = SQLiteStore(db)
    yield made
    made.close()


def rec(flow_id: str, status: str = RUNNING, **fields) -> FlowRecord:
    """A record with plausible defaults."""
    return FlowRecord(id=flow_id, name="f", status=status, input="1", **fields)


def e(entry: dict) -> str:
    """A log entry as the text a store keeps."""
    return json.dumps(entry, separators=(",", ":"))


def named(path: Path | str) -> str:
    """A regex matching `path` quoted as the store's errors quote it."""
    return re.escape(repr(str(path)))


def raw(path: Path, *statements: str) -> None:
    """Run SQL on `path` through a plain sqlite3 connection, committed and closed."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


# -- reopening and durability -------------------------------------------------

def test_reopen_restores_records_logs_requests_and_replicas(db: Path) -> None:
    first = SQLiteStore(db, durability="process")
    first.create(rec("a"))
    first.transition("a", {RUNNING}, {"status": SUSPENDED, "waiting": "t", "request": '["review",1]'},
                     [e({"t": "j", "k": "0", "n": "render", "v": "doc"})])
    first.create(rec("b"))
    first.transition("b", None, {"status": DONE, "result": '"ok"', "epoch": 2}, [e({"t": "s", "tag": "x", "v": 1})])
    first.put_replica("peer", '{"flows":[]}')
    before = (list(first.records()), first.pending(), first.list())
    first.close()

    again = SQLiteStore(db)
    try:
        assert (list(again.records()), again.pending(), again.list()) == before
        assert again.get_replica("peer") == '{"flows":[]}'
        assert again.replica_sources() == ["peer"]
        assert again.transition("a", {SUSPENDED}, {"status": RUNNING}, [e({"t": "s", "tag": "t", "v": 2})])
        assert [json.loads(text).get("tag") for text in again.load_log("a")] == [None, "t"]
    finally:
        again.close()


@pytest.mark.parametrize("make", [lambda p: SQLiteStore(p, durability="disk"),
                                  lambda p: open_store(p, durability="fsync")])
def test_unknown_durability_names_the_allowed_values(db: Path, make: Callable) -> None:
    with pytest.raises(ValueError, match=r"\['power', 'process'\]"):
        make(db)
    assert not db.exists()


def test_api_misuse_is_raised_as_it_is_not_as_a_store_error(store: SQLiteStore) -> None:
    with pytest.raises(sqlite3.ProgrammingError) as caught:
        store.create(FlowRecord(id="f", name=None, status=RUNNING, input=object()))  # type: ignore[arg-type]
    assert caught.value.__cause__ is not caught.value


def test_append_is_one_insert_whatever_the_log_length(store: SQLiteStore) -> None:
    store.create(rec("a"))
    store.put_flows([(rec("a"), [e({"i": i}) for i in range(2000)])])
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    store.append_log("a", e({"i": 2000}))
    store._conn.set_trace_callback(None)
    assert [s.split()[0] for s in seen] == ["INSERT"]  # one statement, its own transaction
    assert store.load_log("a")[-1] == e({"i": 2000})


def test_two_stores_on_one_file_see_each_others_commits(db: Path, store: SQLiteStore) -> None:
    second = SQLiteStore(db)
    try:
        store.create(rec("a"))
        assert second.get("a") == rec("a")
        assert second.transition("a", {RUNNING}, {"status": DONE}) is True
        assert store.transition("a", {RUNNING}, {"status": SUSPENDED}) is False
        assert store.get("a").status == DONE
    finally:
        second.close()


def test_unknown_change_field_is_refused_and_changes_nothing(store: SQLiteStore) -> None:
    store.create(rec("a"))
    with pytest.raises(ValueError, match="bogus"):
        store.transition("a", None, {"status": DONE, "bogus": 1})
    with pytest.raises(ValueError, match="'id'"):
        store.transition("a", None, {"id": "b"})
    assert store.get("a") == rec("a")


# -- large values, kept out of line --------------------------------------------

BIG = "x" * sqlite_sql.SPILL_CHARS  # the shortest text kept in the bodies table


def cells(db: Path, sql: str, *params: object) -> list[tuple]:
    """Rows of a read through a plain sqlite3 connection."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_large_values_round_trip_and_live_out_of_line(db: Path, store: SQLiteStore) -> None:
    big = FlowRecord(id="a", name="f", status=RUNNING, input=BIG, request=BIG + "r", created=1.0)
    assert store.create(big)
    assert store.append_log("a", e({"t": "j", "v": BIG}))
    assert store.append_log("a", e({"t": "j", "v": 1}))
    assert store.transition("a", {RUNNING}, {"status": DONE, "result": BIG + "!", "request": None},
                            [e({"t": "j", "v": 2}), e({"t": "s", "v": BIG})])
    assert store.get("a") == FlowRecord(id="a", name="f", status=DONE, input=BIG, result=BIG + "!", created=1.0,
                                        version=1)
    assert store.load_log("a") == [e({"t": "j", "v": BIG}), e({"t": "j", "v": 1}), e({"t": "j", "v": 2}),
                                   e({"t": "s", "v": BIG})]
    assert [(r.id, log) for r, log in store.records()] == [("a", store.load_log("a"))]
    assert cells(db, "SELECT typeof(input), typeof(result), typeof(request) FROM flows") == [("blob", "blob", "null")]
    assert cells(db, "SELECT n, typeof(entry) FROM log ORDER BY n") == [
        (0, "blob"), (1, "text"), (2, "text"), (3, "blob")]
    assert sorted([slot for (slot,) in cells(db, "SELECT slot FROM bodies")], key=str) == [
        0, 3, "input", "request", "result"]  # the cleared request's body stays until the flow goes


def test_value_just_under_the_limit_stays_in_its_row(db: Path, store: SQLiteStore) -> None:
    store.create(FlowRecord("a", "f", RUNNING, BIG[1:]))
    assert store.get("a").input == BIG[1:]
    assert cells(db, "SELECT typeof(input) FROM flows") == [("text",)]
    assert cells(db, "SELECT count(*) FROM bodies") == [(0,)]


def test_deleting_or_replacing_flows_drops_their_bodies(db: Path, store: SQLiteStore) -> None:
    for flow_id in ("a", "b", "c"):
        store.create(FlowRecord(flow_id, "f", RUNNING, BIG))
        store.append_log(flow_id, e({"v": BIG}))
    store.transition("a", None, {"status": DONE})
    store.transition("b", None, {"status": DONE})
    assert store.delete("a", {DONE})
    assert store.delete_terminal() == 1
    assert cells(db, "SELECT DISTINCT flow_id FROM bodies") == [("c",)]
    store.put_flows([(FlowRecord("c", "f", SUSPENDED, "1"), [e({"v": 1})])])
    assert cells(db, "SELECT count(*) FROM bodies") == [(0,)]
    assert store.get("c") == FlowRecord("c", "f", SUSPENDED, "1", version=1)
    assert store.load_log("c") == [e({"v": 1})]


def test_append_of_large_entry_to_a_flow_not_running_changes_nothing(db: Path, store: SQLiteStore) -> None:
    store.create(FlowRecord("a", "f", SUSPENDED, "1"))
    assert store.append_log("a", e({"v": BIG})) is False
    assert store.append_log("missing", e({"v": BIG})) is False
    assert store.transition("a", {RUNNING}, {"result": BIG}, [e({"v": BIG})]) is False
    assert cells(db, "SELECT count(*) FROM bodies") == [(0,)]
    assert store.load_log("a") == []


@pytest.mark.parametrize(("slot", "says"), [
    ("input", r"corrupt flow row .id 'a': input missing"),
    ("result", r"corrupt flow row .id 'a': result missing"),
    (0, r"corrupt log entry 0 of flow 'a'"),
])
def test_missing_body_is_reported_corrupt(db: Path, store: SQLiteStore, slot: object, says: str) -> None:
    store.create(FlowRecord("a", "f", RUNNING, BIG))
    store.append_log("a", e({"v": BIG}))
    store.transition("a", None, {"result": BIG})
    raw(db, f"DELETE FROM bodies WHERE slot = {slot!r}")
    read = store.load_log if slot == 0 else store.get
    with pytest.raises(FedflowError, match=f"{named(db)}.*{says}"):
        read("a")


def test_spilled_entries_are_found_by_the_bodies_index(db: Path, store: SQLiteStore) -> None:
    # log.n's INTEGER affinity, applied to the untyped slot, would make each lookup scan the
    # flow's bodies (quadratic in a log of large entries); the plan must use both key columns.
    conn = sqlite3.connect(db)
    try:
        plan = " ".join(row[-1] for row in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT n, {sqlite_sql.ENTRY} FROM log WHERE flow_id = ? ORDER BY n", ("a",)))
    finally:
        conn.close()
    assert "bodies USING INDEX" in plan and "slot=?" in plan, plan


def test_pending_reports_a_missing_request_body(db: Path, store: SQLiteStore) -> None:
    store.create(FlowRecord("a", "f", SUSPENDED, "1", waiting="t", request=BIG))
    assert store.pending() == [("a", "t", BIG)]
    raw(db, "DELETE FROM bodies WHERE slot = 'request'")
    with pytest.raises(FedflowError, match=f"{named(db)}.*corrupt flow row .id 'a': request missing"):
        store.pending()


# -- upgrading an older file ---------------------------------------------------

_SCHEMA_1 = (  # what fedflow wrote before the bodies table (schema 1), verbatim
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE flows (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
    "name TEXT, status TEXT NOT NULL, input TEXT, result TEXT, error TEXT, waiting TEXT, "
    "request TEXT, owner TEXT, epoch INTEGER NOT NULL DEFAULT 0, "
    "created REAL NOT NULL DEFAULT 0, updated REAL NOT NULL DEFAULT 0)",
    "CREATE INDEX flows_status ON flows (status)",
    "CREATE TABLE log (flow_id TEXT NOT NULL, n INTEGER NOT NULL, "
    "entry TEXT NOT NULL, PRIMARY KEY (flow_id, n)) WITHOUT ROWID",
    "CREATE TABLE replicas (source TEXT PRIMARY KEY, text TEXT NOT NULL, updated REAL NOT NULL)",
    "INSERT INTO meta VALUES ('format', 'fedflow-store'), ('schema_version', '1')",
)


def test_schema_1_file_is_upgraded_in_place_keeping_every_flow(db: Path) -> None:
    raw(db, *_SCHEMA_1,
        f"INSERT INTO flows (seq, id, name, status, input, waiting) VALUES (7, 'late', 'f', 'suspended', "
        f"'\"{BIG}\"', 'go')",
        "INSERT INTO flows (seq, id, name, status, input, result) VALUES (3, 'early', 'g', 'done', '1', '9')",
        f"INSERT INTO log VALUES ('late', 0, '{{\"v\": \"{BIG}\"}}')",
        "INSERT INTO replicas VALUES ('peer', '{}', 1.0)")
    store = SQLiteStore(db)
    try:
        assert store.list() == [("early", DONE), ("late", SUSPENDED)]
        assert store.get("late") == FlowRecord("late", "f", SUSPENDED, f'"{BIG}"', waiting="go")
        assert store.get("early") == FlowRecord("early", "g", DONE, "1", result="9")
        assert store.get_replica("peer") == "{}"
        assert store.transition("late", {SUSPENDED}, {"status": RUNNING, "result": BIG}, [e({"v": BIG})])
        assert store.load_log("late") == [f'{{"v": "{BIG}"}}', e({"v": BIG})]  # each text as written
        assert store.get("late").result == BIG
    finally:
        store.close()
    assert cells(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(sqlite_sql.SCHEMA_VERSION),)]
    assert cells(db, "SELECT n, typeof(entry) FROM log ORDER BY n") == [(0, "text"), (1, "blob")]


_BODIES = "CREATE TABLE bodies (flow_id TEXT NOT NULL, slot NOT NULL, text TEXT NOT NULL, UNIQUE (flow_id, slot))"
_SCHEMA_2 = (*_SCHEMA_1[:-1], _BODIES,  # schema 2 added the bodies table; schema 3 wrote the same tables
             "INSERT INTO meta VALUES ('format', 'fedflow-store'), ('schema_version', '2')")
DOC = "d" * sqlite_sql.SPILL_CHARS  # a journaled answer long enough to be spilled
DOC_JSON = f'"{DOC}"'  # ... and the same value as a result's JSON text
ANSWER = f'{{"t":"j","k":"0","n":"step write","v":{DOC_JSON}}}'  # the entry journaling it


def _old_file(db: Path, schema: tuple[str, ...], version: int, result_body: str) -> None:
    """A file as fedflow wrote it at `version`: a done flow "old" whose result (spilled, its body
    `result_body`) is what its one (spilled) journal entry answered, and a suspended flow "waits"."""
    raw(db, *schema, f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'",
        "INSERT INTO flows (seq, id, name, status, input, result) VALUES (1, 'old', 'f', 'done', '1', x'00')",
        "INSERT INTO flows (seq, id, name, status, input, waiting) VALUES (2, 'waits', 'f', 'suspended', '2', 'go')",
        "INSERT INTO log VALUES ('old', 0, x'00')",
        f"INSERT INTO bodies VALUES ('old', 0, '{ANSWER}')",
        f"INSERT INTO bodies VALUES ('old', 'result', {result_body})")


@pytest.mark.parametrize(("version", "result_body"), [
    (2, f"'{DOC_JSON}'"),  # schema 2 wrote the result whole
    (3, f"CAST('0:{len(DOC_JSON)}' AS BLOB)"),  # schema 3 referred to the end of entry 0's body
])
def test_schema_2_and_3_files_are_upgraded_with_every_result_written_out(
        db: Path, version: int, result_body: str) -> None:
    _old_file(db, _SCHEMA_2, version, result_body)
    store = SQLiteStore(db)
    try:
        assert store.get("old") == FlowRecord("old", "f", DONE, "1", result=DOC_JSON)
        assert store.load_log("old") == [ANSWER]
        assert [r.result for r, _log in store.records()] == [DOC_JSON, None]
        waits = store.get("waits")
        assert (waits.status, waits.version) == (SUSPENDED, 0)
        assert store.transition("waits", {SUSPENDED}, {"status": DONE, "waiting": None}, version=0)
        assert store.transition("waits", {DONE}, {"updated": 1.0}, version=0) is False, "the version guards it"
    finally:
        store.close()
    assert cells(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(sqlite_sql.SCHEMA_VERSION),)]
    assert cells(db, "SELECT typeof(text), text FROM bodies WHERE slot = 'result'") == [("text", DOC_JSON)]


def test_a_schema_3_result_reference_that_names_no_entry_is_refused_unchanged(db: Path) -> None:
    _old_file(db, _SCHEMA_2, 3, "CAST('5:10' AS BLOB)")
    tables = "SELECT * FROM meta UNION ALL SELECT flow_id, slot FROM bodies"
    before = cells(db, tables)
    with pytest.raises(FedflowError, match=f"{named(db)}.*corrupt result reference .flow 'old'"):
        SQLiteStore(db)
    assert cells(db, tables) == before
    assert cells(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [("3",)]


def test_a_non_ascii_schema_3_result_reference_is_written_out_by_its_bytes(db: Path) -> None:
    text = f'"é{DOC}"'
    entry = f'{{"t":"j","v":{text}}}'
    _old_file(db, _SCHEMA_2, 3, f"CAST('0:{len(text.encode())}' AS BLOB)")
    raw(db, f"UPDATE bodies SET text = '{entry}' WHERE slot = 0")
    store = SQLiteStore(db)
    try:
        assert store.get("old").result == text
    finally:
        store.close()


class _UpgradedMeanwhile(SQLiteStore):
    """A store whose first look at the tables is followed by another process upgrading the file."""

    others = 0

    def _tables(self) -> set[str]:
        tables = super()._tables()
        if _UpgradedMeanwhile.others == 0:
            _UpgradedMeanwhile.others += 1
            SQLiteStore(self.path).close()  # a plain store: it upgrades the file right now
        return tables


def test_schema_1_file_upgraded_by_another_opener_meanwhile_opens(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # as fedflow leaves it: readers see a snapshot
        for statement in _SCHEMA_1:
            conn.execute(statement)
    finally:
        conn.close()
    store = _UpgradedMeanwhile(db)
    try:
        assert _UpgradedMeanwhile.others == 1
        assert store.list() == []
    finally:
        store.close()
    assert cells(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(sqlite_sql.SCHEMA_VERSION),)]


def test_schema_1_file_missing_a_table_is_refused_unchanged(db: Path) -> None:
    raw(db, *_SCHEMA_1, "DROP TABLE replicas")
    before = db.read_bytes()
    with pytest.raises(FedflowError, match=r"damaged fedflow store \(schema 1, missing tables \['replicas'\]"):
        SQLiteStore(db)
    assert db.read_bytes() == before


# -- files that are not (our) stores -----------------------------------------

def _random_bytes(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 40)


def _text(path: Path) -> None:
    path.write_text("hello, not a database\n")


def _foreign_db(path: Path) -> None:
    raw(path, "CREATE TABLE users (name TEXT)", "INSERT INTO users VALUES ('ada')")


def _foreign_meta(path: Path) -> None:
    raw(path, "CREATE TABLE meta (k TEXT, v TEXT)")


def _other_format(path: Path) -> None:
    raw(path, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
        "INSERT INTO meta VALUES ('format', 'other-app'), ('schema_version', '1')")


def _newer(path: Path) -> None:
    SQLiteStore(path).close()
    raw(path, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")


def _missing_table(path: Path) -> None:
    SQLiteStore(path).close()
    raw(path, "DROP TABLE replicas")


@pytest.mark.parametrize(("make", "says"), [
    (_random_bytes, "is not a SQLite database"),
    (_text, "is not a SQLite database"),
    (_foreign_db, r"not a fedflow store \(tables: users\)"),
    (_foreign_meta, "not a fedflow store"),
    (_other_format, "not a fedflow store .format 'other-app'"),
    (_newer, rf"newer fedflow \(store schema 99; this fedflow reads {sqlite_sql.SCHEMA_VERSION}\); upgrade fedflow"),
    (_missing_table, r"damaged fedflow store .*'replicas'"),
])
def test_bad_file_is_refused_by_name_and_left_unchanged(db: Path, make: Callable, says: str) -> None:
    make(db)
    before = db.read_bytes()
    with pytest.raises(FedflowError, match=says) as caught:
        SQLiteStore(db)
    assert str(caught.value).startswith(f"fedflow store {str(db)!r} ")
    assert db.read_bytes() == before
    assert not Path(f"{db}-wal").exists()


@pytest.mark.parametrize("where", ["dir", "missing/parent.db"])
def test_unopenable_path_is_refused_by_name(tmp_path: Path, where: str) -> None:
    path = tmp_path / where
    if where == "dir":
        path.mkdir()
    with pytest.raises(FedflowError, match=f"{named(path)}.*could not open"):
        SQLiteStore(path)


def test_corrupt_rows_raise_naming_file_and_flow(db: Path, store: SQLiteStore) -> None:
    for flow_id in ("bad-status", "bad-json", "bad-kind"):
        store.create(rec(flow_id))
    raw(db, "UPDATE flows SET status = 'zombie' WHERE id = 'bad-status'",
        "INSERT INTO log VALUES ('bad-json', 0, '{not json')",
        "INSERT INTO log VALUES ('bad-kind', 0, '[1, 2]')")
    with pytest.raises(FedflowError, match=f"{named(db)}.*corrupt flow row .id 'bad-status', status 'zombie'"):
        store.get("bad-status")
    # the store keeps texts as they are; reading them as journal entries is the engine's job
    assert store.load_log("bad-json") == ["{not json"]
    with pytest.raises(FedflowError, match=r"log entry 0 of flow 'bad-json' is corrupt"):
        journal.load_all(store.load_log("bad-json"), "bad-json")
    with pytest.raises(FedflowError, match=r"log entry 0 of flow 'bad-kind' is corrupt \(not a suspend or step"):
        journal.load_all(store.load_log("bad-kind"), "bad-kind")
    with pytest.raises(FedflowError, match="corrupt"):
        list(store.records())


def test_damaged_file_raises_naming_it(db: Path) -> None:
    made = SQLiteStore(db)
    made.put_flows([(rec(f"f{i}", SUSPENDED, waiting="x" * 200), [e({"i": i})] * 3) for i in range(3000)])
    made.close()
    with db.open("r+b") as handle:
        handle.truncate(db.stat().st_size // 2)
    with pytest.raises(FedflowError, match=f"{named(db)}.* is damaged .*malformed.*restore it"):
        reopened = SQLiteStore(db)
        try:
            list(reopened.records())
        finally:
            reopened.close()


# -- locks --------------------------------------------------------------------

def test_write_lock_held_elsewhere_raises_then_recovers(db: Path) -> None:
    made = SQLiteStore(db, timeout=0.1)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(FedflowError, match=f"{named(db)}.*is locked by another connection .waited 0.1s"):
            made.create(rec("a"))
        other.execute("ROLLBACK")
        assert made.create(rec("a")) is True
    finally:
        other.close()
        made.close()


def test_file_locked_exclusively_cannot_be_opened(db: Path) -> None:
    SQLiteStore(db).close()
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("PRAGMA locking_mode = EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("COMMIT")
        with pytest.raises(FedflowError, match=f"{named(db)}.*is locked .*to open.*longer timeout"):
            SQLiteStore(db, timeout=0.05)
    finally:
        other.close()
    SQLiteStore(db).close()


# -- closing ------------------------------------------------------------------

CALLS: list[Callable[[SQLiteStore], object]] = [
    lambda s: s.create(rec("b")), lambda s: s.get("a"), lambda s: s.load_log("a"),
    lambda s: s.append_log("a", {}), lambda s: s.transition("a", None, {}), lambda s: s.delete("a", [DONE]),
    lambda s: s.delete_terminal(), lambda s: s.list(), lambda s: s.ids(RUNNING), lambda s: s.pending(),
    lambda s: list(s.records()), lambda s: s.put_flows([]), lambda s: s.put_replica("p", "t"),
    lambda s: s.get_replica("p"), lambda s: s.replica_sources(),
]


@pytest.mark.parametrize("call", CALLS)
def test_every_method_refuses_after_close(store: SQLiteStore, call: Callable) -> None:
    store.create(rec("a"))
    store.close()
    store.close()
    with pytest.raises(FedflowError, match=f"{named(store.path)} is closed"):
        call(store)


# -- open_store -----------------------------------------------------------------

def test_open_store_factory(db: Path) -> None:
    assert isinstance(open_store(None), MemoryStore)
    mem = MemoryStore()
    assert open_store(mem) is mem
    for given in (db, str(db)):
        made = open_store(given, durability="process")
        assert isinstance(made, SQLiteStore)
        assert (made.path, made.durability) == (str(db), "process")
        made.close()
    with pytest.raises(TypeError, match="not int"):
        open_store(3)


# -- scale ----------------------------------------------------------------------

def test_100k_suspended_flows_stream_without_materialising(db: Path, store: SQLiteStore) -> None:
    count = 100_000
    store.put_flows([(rec(f"f{i:06}", SUSPENDED, waiting="review"), [e({"t": "s", "tag": "a", "v": i})])
                     for i in range(count)])
    it = store.records()
    assert inspect.isgenerator(it)
    tracemalloc.start()
    try:
        first = next(it)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert first == (rec("f000000", SUSPENDED, waiting="review"), [e({"t": "s", "tag": "a", "v": 0})])
    assert peak < 5_000_000, f"first record cost {peak} bytes: records() is not streaming"
    rest = sum(1 for _ in it)
    assert rest == count - 1
    assert len(store.pending()) == count
    assert os.path.getsize(db) > 0
