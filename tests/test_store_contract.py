"""The Store contract, run against every store implementation (memory, SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Iterator

import pytest

from fedflow.store import MemoryStore, SQLiteStore, Store, sqlite_sql
from fedflow.store.base import CANCELLED, DONE, FAILED, MOVED, RUNNING, SUSPENDED, TERMINAL, FlowRecord
from fedflow.store.postgres import PostgresStore

try:
    from pg_support import fresh_database
except ImportError:  # tests/ imported as a package
    from tests.pg_support import fresh_database


@contextlib.contextmanager
def made_like(kind: str, path) -> Iterator[Store]:
    """A fresh, empty store of `kind` (a PostgreSQL one in a new database); closed afterwards."""
    with contextlib.ExitStack() as stack:
        if kind == "memory":
            made: Store = MemoryStore()
        elif kind == "postgres":
            made = PostgresStore(stack.enter_context(fresh_database()))
        else:
            made = SQLiteStore(path)
        stack.callback(made.close)
        yield made


@pytest.fixture(params=["memory", "sqlite", "sqlite-spilling", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A fresh, empty store of each kind; "sqlite-spilling" keeps every value out of line
    (in its bodies table), so the whole contract covers that path too."""
    if request.param == "sqlite-spilling":
        monkeypatch.setattr(sqlite_sql, "SPILL_CHARS", 1)
    with made_like(request.param.split("-")[0], tmp_path / "s.db") as made:
        yield made


@pytest.fixture
def other(store: Store, tmp_path) -> Iterator[Store]:
    """A second, empty store of the same kind as `store`."""
    kind = {MemoryStore: "memory", PostgresStore: "postgres"}.get(type(store), "sqlite")
    with made_like(kind, tmp_path / "other.db") as made:
        yield made


def rec(flow_id: str, status: str = RUNNING, **fields) -> FlowRecord:
    """A record with plausible defaults."""
    return FlowRecord(id=flow_id, name=fields.pop("name", "f"), status=status, input='{"x":1}', **fields)


FULL = FlowRecord(id="full", name="publish", status=SUSPENDED, input='[1,"\u00e9"]', result='"r"',
                  error='{"type":"E","message":"m"}', waiting="review", request='["kind",{"a":1}]',
                  owner="b", epoch=3, created=1700000000.25, updated=1700000001.5)
#: A log entry: opaque text, kept exactly as given (a store never parses it).
ENTRY = '{"t":"j","k":"step:0","n":"render","v":"\u2603\U0001f600 é \\ud800"}'


def e(entry: dict) -> str:
    """A log entry as the text a store keeps."""
    return json.dumps(entry, sort_keys=True)


def seed(store: Store, record: FlowRecord, entries: list) -> None:
    """Store `record` with `entries` journaled the way an engine does: appended while running
    (so it ends at version 1)."""
    assert store.create(dataclasses.replace(record, status=RUNNING))
    for entry in entries:
        assert store.append_log(record.id, entry, version=0)
    assert store.transition(record.id, None, {"status": record.status}, version=0)


# -- create / get -------------------------------------------------------------

def test_create_then_get_returns_every_field(store: Store) -> None:
    assert store.create(FULL) is True
    assert store.get("full") == FULL


def test_create_duplicate_returns_false_and_keeps_the_original(store: Store) -> None:
    store.create(rec("a", name="first"))
    assert store.create(rec("a", DONE, name="second")) is False
    assert store.get("a") == rec("a", name="first")
    assert store.list() == [("a", RUNNING)]


def test_get_missing_is_none(store: Store) -> None:
    assert store.get("nope") is None


def test_get_returns_a_copy(store: Store) -> None:
    store.create(rec("a"))
    got = store.get("a")
    got.status = DONE
    assert store.get("a").status == RUNNING


# -- the log ------------------------------------------------------------------

def test_log_keeps_append_order_and_values(store: Store) -> None:
    store.create(rec("a"))
    entries = [ENTRY, e({"t": "s", "tag": "t1", "v": 1}), e({"t": "s", "tag": "t2", "v": None})]
    for entry in entries:
        store.append_log("a", entry)
    assert store.load_log("a") == entries


def test_load_log_of_missing_flow_is_empty(store: Store) -> None:
    assert store.load_log("nope") == []


def test_append_to_missing_flow_changes_nothing(store: Store) -> None:
    store.append_log("ghost", ENTRY)
    assert store.get("ghost") is None
    store.create(rec("ghost"))
    assert store.load_log("ghost") == []


def test_logs_of_flows_are_separate(store: Store) -> None:
    store.create(rec("a"))
    store.create(rec("b"))
    store.append_log("a", e({"t": "s", "tag": "a", "v": 1}))
    store.append_log("b", e({"t": "s", "tag": "b", "v": 2}))
    assert store.load_log("a") == [e({"t": "s", "tag": "a", "v": 1})]
    assert store.load_log("b") == [e({"t": "s", "tag": "b", "v": 2})]


# -- transition (compare-and-set) ---------------------------------------------

def test_transition_applies_changes_and_appends_after_existing_entries(store: Store) -> None:
    store.create(rec("a"))
    store.append_log("a", e({"t": "s", "tag": "first", "v": 0}))
    ok = store.transition("a", {RUNNING}, {"status": SUSPENDED, "waiting": "t"},
                          [ENTRY, e({"t": "s", "tag": "x", "v": 2})])
    assert ok is True
    got = store.get("a")
    assert (got.status, got.waiting) == (SUSPENDED, "t")
    assert store.load_log("a") == [e({"t": "s", "tag": "first", "v": 0}), ENTRY, e({"t": "s", "tag": "x", "v": 2})]


def test_transition_with_wrong_status_changes_and_appends_nothing(store: Store) -> None:
    store.create(rec("a", SUSPENDED, waiting="t"))
    ok = store.transition("a", [RUNNING], {"status": DONE, "result": "1"}, [ENTRY])
    assert ok is False
    assert store.get("a") == rec("a", SUSPENDED, waiting="t")
    assert store.load_log("a") == []


def test_transition_of_missing_flow_is_false(store: Store) -> None:
    assert store.transition("nope", None, {"status": DONE}, [ENTRY]) is False
    assert store.get("nope") is None
    assert store.load_log("nope") == []


def test_transition_expect_none_matches_any_status(store: Store) -> None:
    store.create(rec("a", CANCELLED))
    assert store.transition("a", None, {"owner": "b", "epoch": 7}) is True
    assert (store.get("a").owner, store.get("a").epoch) == ("b", 7)


def test_transition_with_only_entries_or_empty_expect(store: Store) -> None:
    store.create(rec("a"))
    assert store.transition("a", iter([SUSPENDED, RUNNING]), {}, [ENTRY]) is True
    assert store.transition("a", (), {"status": DONE}) is False
    assert store.get("a").status == RUNNING
    assert store.load_log("a") == [ENTRY]


def test_concurrent_transitions_are_all_kept(store: Store) -> None:
    store.create(rec("shared"))

    def worker(k: int) -> None:
        store.create(rec(f"w{k}"))
        for i in range(25):
            assert store.transition(f"w{k}", {RUNNING}, {"updated": float(i)}, [e({"i": i})])
            store.append_log("shared", e({"k": k, "i": i}))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for k in range(8):
        assert store.load_log(f"w{k}") == [e({"i": i}) for i in range(25)]
    shared = store.load_log("shared")
    read = [json.loads(text) for text in shared]
    assert sorted((x["k"], x["i"]) for x in read) == [(k, i) for k in range(8) for i in range(25)]
    for k in range(8):
        assert [x["i"] for x in read if x["k"] == k] == list(range(25))


# -- versions: every transition is a compare-and-set ---------------------------

def test_create_starts_at_version_0_whatever_the_record_says(store: Store) -> None:
    assert store.create(rec("a", version=7))
    assert store.get("a").version == 0


def test_log_texts_are_kept_exactly_even_when_not_json(store: Store) -> None:
    store.create(rec("a"))
    odd = ["not JSON { at all", "", " padded ", "x" * 5000, "naïve ☃ \U0001f600"]
    for text in odd:
        assert store.append_log("a", text)
    assert store.load_log("a") == odd


def test_each_transition_raises_the_version_by_one(store: Store) -> None:
    store.create(rec("a"))
    assert store.transition("a", None, {"updated": 1.0}, version=0)
    assert store.transition("a", [RUNNING], {"status": SUSPENDED, "waiting": "w"}, version=1)
    assert store.transition("a", None, {"owner": "b"})  # no version given: any, still raised
    assert store.get("a").version == 3


def test_a_transition_from_a_version_no_longer_there_changes_and_appends_nothing(store: Store) -> None:
    store.create(rec("a", SUSPENDED, waiting="first"))
    assert store.transition("a", [SUSPENDED], {"waiting": "second"}, [e({"t": "s", "tag": "first", "v": 1})],
                            version=0)
    before = store.get("a")
    # the same resume again, from the version it read: the flow has moved on
    assert store.transition("a", [SUSPENDED], {"status": DONE, "result": "9"},
                            [e({"t": "s", "tag": "first", "v": 2})], version=0) is False
    assert store.get("a") == before and before.version == 1
    assert store.load_log("a") == [e({"t": "s", "tag": "first", "v": 1})]


def test_an_append_from_a_version_no_longer_there_is_refused(store: Store) -> None:
    store.create(rec("a"))
    assert store.append_log("a", e({"i": 0}), version=0)
    assert store.transition("a", [RUNNING], {"updated": 2.0}, version=0)  # claimed by another run
    assert store.append_log("a", e({"i": 1}), version=0) is False
    assert store.append_log("a", e({"i": 2}), version=1)
    assert store.load_log("a") == [e({"i": 0}), e({"i": 2})]
    assert store.get("a").version == 1, "an append leaves the version as it is"


def test_put_flows_over_an_existing_flow_raises_its_version(store: Store) -> None:
    store.create(rec("a"))
    store.transition("a", None, {"updated": 1.0})
    store.put_flows([(rec("a", SUSPENDED), []), (rec("new", version=4), [])])
    assert store.get("a").version == 2
    assert store.get("new").version == 4
    assert store.transition("a", None, {"status": DONE}, version=1) is False


@pytest.fixture
def twin(store: Store, tmp_path) -> Iterator[Store]:
    """Another store object on the same storage as `store` (SQLite: its own connection to the
    same file, as another Engine or process has; PostgreSQL: another instance on the same
    database); the memory store is its own twin."""
    if isinstance(store, MemoryStore):
        yield store
        return
    made = PostgresStore(store.url, name="twin") if isinstance(store, PostgresStore) else SQLiteStore(tmp_path / "s.db")
    yield made
    made.close()


def test_racing_transitions_from_one_version_apply_exactly_once(store: Store, twin: Store) -> None:
    # Resumes, a cancel and a finish, from threads on two store objects, all read version 0.
    rounds, racers = 25, 6
    for n in range(rounds):
        store.create(rec(f"r{n}", SUSPENDED, waiting="first"))
    won: list[tuple[int, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(racers)

    def racer(k: int) -> None:
        mine = store if k % 2 else twin
        for n in range(rounds):
            read = mine.get(f"r{n}")
            barrier.wait(timeout=30)  # every racer has read version 0 before any writes
            changes = ({"status": CANCELLED, "waiting": None} if k == 0 else
                       {"waiting": "second"} if k % 3 else {"status": DONE, "result": str(k)})
            if mine.transition(f"r{n}", [SUSPENDED], changes, [e({"t": "s", "tag": "first", "v": k})],
                               version=read.version):
                with lock:
                    won.append((n, k))

    threads = [threading.Thread(target=racer, args=(k,)) for k in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(n for n, _k in won) == list(range(rounds)), "exactly one winner per flow"
    for n, k in won:
        assert store.load_log(f"r{n}") == [e({"t": "s", "tag": "first", "v": k})], "only the winner's entry"
        assert twin.get(f"r{n}").version == 1


# -- delete -------------------------------------------------------------------

def test_delete_only_in_allowed_statuses(store: Store) -> None:
    store.create(rec("live", SUSPENDED))
    store.create(rec("done", DONE))
    store.append_log("done", ENTRY)
    assert store.delete("live", TERMINAL) is False
    assert store.delete("missing", TERMINAL) is False
    assert store.delete("done", TERMINAL) is True
    assert store.get("done") is None
    assert store.list() == [("live", SUSPENDED)]
    store.create(rec("done"))
    assert store.load_log("done") == []


def test_delete_terminal_counts_and_keeps_live_flows_in_order(store: Store) -> None:
    statuses = [RUNNING, DONE, SUSPENDED, FAILED, CANCELLED, MOVED, SUSPENDED]
    for i, status in enumerate(statuses):
        seed(store, rec(f"f{i}", status), [e({"i": i})])
    assert store.delete_terminal() == 4
    assert store.list() == [("f0", RUNNING), ("f2", SUSPENDED), ("f6", SUSPENDED)]
    assert store.load_log("f2") == [e({"i": 2})]
    assert store.delete_terminal() == 0


# -- listing ------------------------------------------------------------------

def test_list_ids_pending_in_creation_order(store: Store) -> None:
    for flow_id, status in [("z", SUSPENDED), ("a", RUNNING), ("m", SUSPENDED), ("b", DONE)]:
        store.create(rec(flow_id, status, waiting=f"w-{flow_id}" if status == SUSPENDED else None,
                         request='["review",1]' if flow_id == "m" else None))
    assert store.list() == [("z", SUSPENDED), ("a", RUNNING), ("m", SUSPENDED), ("b", DONE)]
    assert store.ids(SUSPENDED) == ["z", "m"]
    assert store.ids(FAILED) == []
    assert store.pending() == [("z", "w-z", None), ("m", "w-m", '["review",1]')]
    store.transition("z", None, {"status": RUNNING, "waiting": None})
    assert store.ids(SUSPENDED) == ["m"]
    assert store.list()[0] == ("z", RUNNING)


def test_empty_store_lists_nothing(store: Store) -> None:
    assert (store.list(), store.ids(RUNNING), store.pending(), list(store.records())) == ([], [], [], [])


# -- records / put_flows ------------------------------------------------------

def test_records_put_flows_round_trip(store: Store, other: Store) -> None:
    seed(store, FULL, [ENTRY])
    for i in range(1203):  # more than one SQLite batch
        seed(store, rec(f"f{i:04}", DONE if i % 3 else SUSPENDED), [e({"i": i})] if i % 2 else [])
    exported = list(store.records())
    assert [r.id for r, _ in exported] == [flow_id for flow_id, _ in store.list()]
    assert exported[0] == (dataclasses.replace(FULL, version=1), [ENTRY])
    assert exported[2] == (rec("f0001", DONE, version=1), [e({"i": 1})])
    other.put_flows(exported)
    assert list(other.records()) == exported
    assert other.list() == store.list()


def test_put_flows_replaces_row_and_whole_log_in_place(store: Store) -> None:
    for flow_id in "abc":
        store.create(rec(flow_id))
        store.append_log(flow_id, e({"old": flow_id}))
        store.append_log(flow_id, e({"old2": flow_id}))
    store.put_flows([(rec("b", DONE, result="1"), [e({"new": 1})]), (rec("d", SUSPENDED), [])])
    assert store.list() == [("a", RUNNING), ("b", DONE), ("c", RUNNING), ("d", SUSPENDED)]
    assert store.get("b").result == "1"
    assert store.load_log("b") == [e({"new": 1})]
    assert store.load_log("a") == [e({"old": "a"}), e({"old2": "a"})]
    assert store.append_log("b", e({"after": 1})) is False, "a done flow's log is closed"
    assert store.load_log("b") == [e({"new": 1})]
    assert store.append_log("a", e({"after": 1})) is True
    assert store.load_log("a") == [e({"old": "a"}), e({"old2": "a"}), e({"after": 1})]


@pytest.mark.parametrize("status", [SUSPENDED, DONE, FAILED, CANCELLED, MOVED])
def test_append_log_only_while_running(store: Store, status: str) -> None:
    store.create(rec("f", status))
    assert store.append_log("f", e({"late": 1})) is False
    assert store.append_log("missing", e({"late": 1})) is False
    assert store.load_log("f") == []


def test_put_flows_repeated_id_last_wins(store: Store) -> None:
    store.put_flows([(rec("a"), [e({"n": 1}), e({"n": 2})]), (rec("a", DONE), [e({"n": 3})])])
    assert store.list() == [("a", DONE)]
    assert store.load_log("a") == [e({"n": 3})]


def test_records_is_lazy_iterator(store: Store) -> None:
    store.create(rec("a"))
    it = store.records()
    assert iter(it) is it
    assert next(it) == (rec("a"), [])
    assert next(it, None) is None


# -- timers -------------------------------------------------------------------

def test_timers_are_suspended_flows_with_a_wake_at_earliest_first(store: Store) -> None:
    for flow_id, status, wake_at in [("late", SUSPENDED, 30.5), ("early", SUSPENDED, 10.25), ("mid", SUSPENDED, 20.0),
                                     ("untimed", SUSPENDED, None), ("busy", RUNNING, 5.0), ("over", DONE, 1.0)]:
        store.create(rec(flow_id, status, waiting=f"w-{flow_id}", wake_at=wake_at))
    assert store.timers() == [("early", "w-early", 10.25), ("mid", "w-mid", 20.0), ("late", "w-late", 30.5)]
    assert store.next_wake() == 10.25
    assert store.due(20.0, 10) == [("early", "w-early", 10.25), ("mid", "w-mid", 20.0)]
    assert store.due(1e12, 1) == [("early", "w-early", 10.25)]
    assert store.due(10.0, 10) == []


def test_an_empty_store_has_no_timer(store: Store) -> None:
    assert (store.timers(), store.next_wake(), store.due(1e12, 10)) == ([], None, [])


def test_a_transition_sets_moves_and_clears_a_timer(store: Store) -> None:
    store.create(rec("a", SUSPENDED, waiting="nap", wake_at=50.0))
    assert store.transition("a", [SUSPENDED], {"status": RUNNING, "waiting": None, "wake_at": None}, version=0)
    assert (store.timers(), store.next_wake()) == ([], None)
    assert store.transition("a", [RUNNING], {"status": SUSPENDED, "waiting": "nap2", "wake_at": 80.0}, version=1)
    assert store.timers() == [("a", "nap2", 80.0)] and store.get("a").wake_at == 80.0
    assert store.transition("a", [SUSPENDED], {"status": CANCELLED, "waiting": None}, version=2)
    assert store.timers() == [], "a cancelled flow's timer never fires"


def test_put_flows_carries_timers(store: Store, other: Store) -> None:
    store.create(rec("a", SUSPENDED, waiting="nap", wake_at=42.5))
    other.put_flows(list(store.records()))
    assert other.timers() == [("a", "nap", 42.5)] and other.next_wake() == 42.5


def test_a_due_timer_fires_once_across_store_objects(store: Store, twin: Store) -> None:
    # Two instances see the same due timer; firing it is the flow's compare-and-set.
    store.create(rec("a", SUSPENDED, waiting="nap", wake_at=1.0))
    seen = [(mine, mine.due(2.0, 10), mine.get("a").version) for mine in (store, twin)]
    assert [due for _mine, due, _version in seen] == [[("a", "nap", 1.0)]] * 2
    fired = [mine.transition("a", [SUSPENDED], {"status": RUNNING, "waiting": None, "wake_at": None},
                             [e({"t": "s", "tag": "nap", "w": 1})], version=version) for mine, _due, version in seen]
    assert fired == [True, False]
    assert twin.load_log("a") == [e({"t": "s", "tag": "nap", "w": 1})] and store.due(2.0, 10) == []


# -- schedules ----------------------------------------------------------------

SPEC = '{"flow":"nightly","cron":"0 3 * * *"}'


def test_schedules_are_kept_in_name_order_and_replaced_whole(store: Store) -> None:
    store.put_schedule("zeta", SPEC, 300.0)
    store.put_schedule("alpha", '{"every":60}', 100.5)
    assert store.schedules() == [("alpha", '{"every":60}', 100.5, None), ("zeta", SPEC, 300.0, None)]
    assert store.advance_schedule("alpha", '{"every":60}', 100.5, 160.5, "alpha@1")
    assert store.schedules()[0] == ("alpha", '{"every":60}', 160.5, "alpha@1")
    store.put_schedule("alpha", '{"every":30}', 500.0)
    assert store.schedules()[0] == ("alpha", '{"every":30}', 500.0, None), "a replaced schedule starts afresh"
    assert store.delete_schedule("alpha") is True
    assert store.delete_schedule("alpha") is False
    assert store.schedules() == [("zeta", SPEC, 300.0, None)]
    assert store.list() == [], "schedules are not flows"


@pytest.mark.parametrize(("spec", "expect_next_at"), [('{"every":60}', 300.0), (SPEC, 299.0)])
def test_advancing_a_changed_schedule_changes_nothing(store: Store, spec: str, expect_next_at: float) -> None:
    store.put_schedule("s", SPEC, 300.0)
    assert store.advance_schedule("s", spec, expect_next_at, 400.0, "s@1") is False
    assert store.advance_schedule("missing", SPEC, 300.0, 400.0, "s@1") is False
    assert store.schedules() == [("s", SPEC, 300.0, None)]


def test_racing_schedule_advances_apply_exactly_once(store: Store, twin: Store) -> None:
    # Instances that all read one tick move the schedule on once: one of them starts that tick.
    rounds, racers = 20, 4
    store.put_schedule("s", SPEC, 0.0)
    won: list[tuple[int, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(racers)

    def racer(k: int) -> None:
        mine = store if k % 2 else twin
        for n in range(rounds):
            [(_name, spec, next_at, _last)] = mine.schedules()
            barrier.wait(timeout=30)  # every racer has read this tick before any moves it on
            if mine.advance_schedule("s", spec, next_at, next_at + 1, f"s@{n}/{k}"):
                with lock:
                    won.append((n, k))
            barrier.wait(timeout=30)

    threads = [threading.Thread(target=racer, args=(k,)) for k in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(n for n, _k in won) == list(range(rounds)), "exactly one winner per tick"
    assert twin.schedules() == [("s", SPEC, float(rounds), f"s@{rounds - 1}/{won[-1][1]}")]


# -- replicas -----------------------------------------------------------------

def test_replica_slots(store: Store) -> None:
    assert store.get_replica("b") is None
    assert store.replica_sources() == []
    store.put_replica("b", '{"flows":[]}')
    store.put_replica("a", "x" * 100_000)
    store.put_replica("b", '{"flows":[1]}')
    assert store.get_replica("b") == '{"flows":[1]}'
    assert store.get_replica("a") == "x" * 100_000
    assert store.replica_sources() == ["b", "a"]
    assert store.list() == []


def test_replica_slots_say_size_and_sender_first_stored_first(store: Store) -> None:
    assert store.replica_slots() == []
    store.put_replica("b", '{"x":"\u00e9"}', sender="peer-b")
    store.put_replica("a", "{}")
    store.put_replica("b", '{"x":"\u00e9\u00e9"}', sender="relay")
    slots = store.replica_slots()
    assert [(s, n, who) for s, n, _at, who in slots] == [("b", 12, "relay"), ("a", 2, None)], "bytes of UTF-8"
    assert all(isinstance(at, float) and at > 0 for _s, _n, at, _who in slots)


# -- close --------------------------------------------------------------------

def test_close_is_idempotent(store: Store) -> None:
    store.create(rec("a"))
    store.close()
    store.close()
