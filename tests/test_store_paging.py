"""Store.list_page and count_by_status: newest first, filtered, a page at a time, on every store."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

import pytest

from fedflow.errors import FedflowError
from fedflow.store import MemoryStore, SQLiteStore, Store
from fedflow.store.base import DONE, FAILED, SUSPENDED, FlowRecord
from fedflow.store.postgres import PostgresStore

try:
    from pg_support import fresh_database
except ImportError:  # tests/ imported as a package
    from tests.pg_support import fresh_database


class PlainStore(MemoryStore):
    """A store that keeps the Store base class's own (slow, generic) listing."""

    list_page = Store.list_page
    count_by_status = Store.count_by_status


def opened(kind: str, tmp_path) -> Iterator[Store]:
    """A fresh store of `kind` (a PostgreSQL one in a new database), closed afterwards."""
    with contextlib.ExitStack() as stack:
        if kind == "postgres":
            made: Store = PostgresStore(stack.enter_context(fresh_database()))
        elif kind == "sqlite":
            made = SQLiteStore(tmp_path / "s.db", "process")
        else:
            made = {"memory": MemoryStore, "base": PlainStore}[kind]()
        stack.callback(made.close)
        yield made


@pytest.fixture(params=["memory", "sqlite", "postgres", "base"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    yield from opened(request.param, tmp_path)


def fill(store: Store, count: int = 23) -> list[FlowRecord]:
    """`count` flows: every third done, every fifth failed, the rest suspended; names a and b alternate."""
    made = []
    for i in range(count):
        status = DONE if i % 3 == 0 else FAILED if i % 5 == 0 else SUSPENDED
        record = FlowRecord(id=f"{'ab'[i % 2]}-{i:02d}", name="ab"[i % 2], status=status, input="1",
                            waiting="go" if status == SUSPENDED else None, updated=float(i))
        assert store.create(record)
        made.append(record)
    return made


def every_page(store: Store, limit: int, **filters: str) -> list[list[str]]:
    pages, token = [], None
    while True:
        page = store.list_page(limit=limit, after=token, **filters)
        pages.append([f.id for f in page.flows])
        token = page.next_token
        if token is None:
            return pages
        assert len(pages) < 100, "the listing never ended"


@pytest.mark.parametrize("limit", [1, 4, 23, 100])
def test_pages_cover_every_flow_once_newest_first(store: Store, limit: int) -> None:
    made = fill(store)
    pages = every_page(store, limit)
    assert all(len(p) == limit for p in pages[:-1]) and 0 < len(pages[-1]) <= limit
    assert [i for p in pages for i in p] == [r.id for r in reversed(made)]


@pytest.mark.parametrize("filters", [{"status": SUSPENDED}, {"flow": "a"}, {"id_prefix": "b-1"},
                                     {"status": DONE, "flow": "b"}, {"status": FAILED, "id_prefix": "a-"}])
def test_filters_keep_only_matching_flows(store: Store, filters: dict[str, str]) -> None:
    made = fill(store)
    expected = [r.id for r in reversed(made)
                if r.status == filters.get("status", r.status) and r.name == filters.get("flow", r.name)
                and r.id.startswith(filters.get("id_prefix", ""))]
    assert expected, "the case filters something"
    assert [i for p in every_page(store, 3, **filters) for i in p] == expected


def test_a_page_row_carries_the_listing_fields(store: Store) -> None:
    fill(store, 2)
    row = store.list_page(limit=1).flows[0]
    assert (row.id, row.name, row.status, row.waiting, row.owner, row.updated) == ("b-01", "b", SUSPENDED, "go",
                                                                                    None, 1.0)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def numbered(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    """The stores whose page tokens are creation numbers (the generic default counts positions)."""
    yield from opened(request.param, tmp_path)


def test_flows_deleted_or_added_between_pages_do_not_shift_the_next_page(numbered: Store) -> None:
    store = numbered
    fill(store, 10)
    first = store.list_page(limit=4)
    assert [f.id for f in first.flows] == ["b-09", "a-08", "b-07", "a-06"]
    assert store.delete("b-09", [DONE, SUSPENDED]) and store.delete("a-04", [DONE, SUSPENDED])
    assert store.create(FlowRecord(id="new", name="a", status=DONE, input="1"))
    second = store.list_page(limit=4, after=first.next_token)
    assert [f.id for f in second.flows] == ["b-05", "b-03", "a-02", "b-01"]


def test_an_empty_store_has_one_empty_last_page(store: Store) -> None:
    page = store.list_page()
    assert (page.flows, page.next_token) == ([], None)
    assert store.count_by_status() == {}


@pytest.mark.parametrize(("args", "needle"), [({"status": "sleeping"}, "sleeping"), ({"limit": 0}, "1 to 1000"),
                                              ({"limit": 1001}, "1 to 1000"), ({"after": "x1"}, "page token"),
                                              ({"after": "-5"}, "page token")])
def test_bad_arguments_are_refused_with_the_fix(store: Store, args: dict, needle: str) -> None:
    fill(store, 3)
    with pytest.raises(FedflowError, match=needle):
        store.list_page(**args)


def test_count_by_status(store: Store) -> None:
    fill(store)
    assert store.count_by_status() == {DONE: 8, FAILED: 3, SUSPENDED: 12}


def test_sqlite_file_without_the_name_index_gets_it_on_open(tmp_path) -> None:
    path = tmp_path / "old.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX flows_name")
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'flows_name'").fetchone()


@pytest.mark.parametrize("filters", [(False, False), (True, False), (False, True), (True, True)])
def test_sqlite_pages_walk_an_index_in_order_and_never_sort(tmp_path, filters: tuple[bool, bool]) -> None:
    from fedflow.store import sqlite_sql

    SQLiteStore(tmp_path / "plan.db").close()
    status, flow = filters
    statement = sqlite_sql.page_sql(status, flow, False, True)
    params = [p for p, on in ((SUSPENDED, status), ("a", flow)) if on] + [10, 100]
    with sqlite3.connect(tmp_path / "plan.db") as conn:
        plan = " | ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", params))
    assert "TEMP B-TREE" not in plan, plan
    assert "SCAN flows" not in plan or not (status or flow), plan


def test_a_row_carries_the_wake_time_of_a_flow_waiting_on_a_timer(store: Store) -> None:
    store.create(FlowRecord(id="t-1", name="a", status=SUSPENDED, input="1", waiting="sleep:0",
                            wake_at=1234.5))
    store.create(FlowRecord(id="t-2", name="a", status=SUSPENDED, input="1", waiting="go"))
    rows = {f.id: f for f in store.list_page().flows}
    assert rows["t-1"].wake_at == 1234.5 and rows["t-1"].waiting == "sleep:0"
    assert rows["t-2"].wake_at is None


def test_count_timers_counts_suspended_flows_with_a_wake_time(store: Store) -> None:
    assert store.count_timers() == 0
    for i, (status, wake_at) in enumerate([(SUSPENDED, 5.0), (SUSPENDED, 1.0), (SUSPENDED, None), (DONE, 3.0)]):
        store.create(FlowRecord(id=f"c-{i}", name="a", status=status, input="1", wake_at=wake_at))
    assert store.count_timers() == 2 == len(store.timers())
