"""The PostgreSQL store beyond the Store contract: opening, bad input, leases and takeover in-process.

(The contract itself runs on PostgreSQL in test_store_contract.py; kill -9 of a serve is in
test_postgres_serve.py.) Every test gets a new empty database on the test server.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from fedflow import Engine, FedflowError, defflow, node, sequence, step, suspend
from fedflow.store import open_store, postgres_sql
from fedflow.store.base import RUNNING, FlowRecord
from fedflow.store.postgres import PostgresStore, redact

try:
    from pg_server import PostgresServer
    from pg_support import server_url, with_database
    from support import WAIT, Calls, unique
except ImportError:  # tests/ imported as a package
    from tests.pg_server import PostgresServer
    from tests.pg_support import server_url, with_database
    from tests.support import WAIT, Calls, unique


def tables(url: str) -> list[tuple[str, ...]]:
    """Every table of the database at `url` with its rows, to show nothing was written."""
    with psycopg.connect(url) as conn:
        names = [n for (n,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                            "ORDER BY tablename")]
        return [(name, *map(repr, conn.execute(f'SELECT * FROM "{name}" ORDER BY 1').fetchall()))
                for name in names]


def eventually(condition: Callable[[], bool], what: str, timeout: float = WAIT * 4) -> None:
    """Poll `condition` until it holds (bounded: fails after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.02)


def one_line_error(url: str, *needles: str) -> str:
    with pytest.raises(FedflowError) as caught:
        PostgresStore(url, connect_timeout=3).close()
    message = str(caught.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    return message


# -- opening and bad input ------------------------------------------------------

def test_a_new_database_gets_the_schema_once_even_when_opened_at_once(pg_url: str) -> None:
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PostgresStore(pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 4)
    try:
        assert not errors and len(opened) == 4
        assert opened[0].create(FlowRecord(id="a", name="f", status=RUNNING, input="1"))
        assert [s.get("a").input for s in opened] == ["1"] * 4
    finally:
        for store in opened:
            store.close()
    with psycopg.connect(pg_url) as conn:
        version = conn.execute("SELECT value FROM fedflow_meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(postgres_sql.SCHEMA_VERSION),)


def test_malformed_urls_are_one_line_naming_the_form() -> None:
    for url in ("postgresql://[bad/x", "postgresql://u@127.0.0.1/x?nosuchoption=1", "postgresql://u@127.0.0.1"):
        one_line_error(url, "postgresql://USER:PASSWORD@HOST:PORT/DBNAME")


def test_an_unreachable_server_says_to_start_it() -> None:
    one_line_error("postgresql://u:secret@127.0.0.1:1/db", "cannot be reached", "start the server")
    message = one_line_error("postgresql://u:secret@127.0.0.1:1/db?password=hush")
    assert "secret" not in message and "hush" not in message, "a password is never shown"


def test_wrong_credentials_and_a_missing_database_name_the_fix(pg_url: str) -> None:
    url = server_url()
    one_line_error(url.replace("postgresql://postgres@", "postgresql://nosuchuser@"), "refused the login",
                   "user and password")
    one_line_error(with_database(url, "no_such_db_here"), "no such database", "CREATE DATABASE")


def test_a_database_holding_something_else_is_refused_and_left_alone(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id INT PRIMARY KEY, total NUMERIC)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    before = tables(pg_url)
    one_line_error(pg_url, "invoices", "empty database")
    assert tables(pg_url) == before


def test_a_newer_schema_is_refused_and_left_alone(pg_url: str) -> None:
    PostgresStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE fedflow_meta SET value = '99' WHERE key = 'schema_version'")
    before = tables(pg_url)
    one_line_error(pg_url, "newer fedflow", "schema 99", "upgrade fedflow")
    assert tables(pg_url) == before


def test_a_schema_1_database_is_upgraded_keeping_its_flows(pg_url: str) -> None:
    with contextlib.closing(PostgresStore(pg_url)) as store:
        assert store.create(FlowRecord(id="a", name="f", status=RUNNING, input="1"))
        store.put_replica("b", "{}")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE fedflow_call_answers")
        conn.execute("ALTER TABLE fedflow_replicas DROP COLUMN sender")
        conn.execute("DROP INDEX fedflow_flows_name")
        conn.execute("UPDATE fedflow_meta SET value = '1' WHERE key = 'schema_version'")
    with contextlib.closing(PostgresStore(pg_url)) as store:
        assert store.get("a").input == "1"
        assert store.record_answer("k", "1", 1.0) == "1"
        store.put_replica("c", "{}", sender="c")
        assert [(s, n, who) for s, n, _at, who in store.replica_slots()] == [("b", 2, None), ("c", 2, "c")]
        assert [f.id for f in store.list_page(flow="f").flows] == ["a"]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT value FROM fedflow_meta WHERE key = 'schema_version'").fetchone() == ("2",)


@pytest.mark.parametrize("filters", [(False, False), (True, False), (False, True), (True, True)])
def test_pages_walk_an_index_backwards_and_never_sort(pg_url: str, filters: tuple[bool, bool]) -> None:
    PostgresStore(pg_url).close()
    status, flow = filters
    params = {"status": "done", "flow": "a", "prefix": None, "before": 10, "limit": 5}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")  # an empty table: show which index serves the order
        plan = " | ".join(row[0] for row in conn.execute(f"EXPLAIN {postgres_sql.page_sql(status, flow, False, True)}",
                                                         params))
    assert "Index Scan Backward" in plan and "Sort" not in plan, plan


def test_a_password_is_hidden_wherever_the_url_is_shown() -> None:
    assert redact("postgresql://me:s3cret@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert redact("postgresql://db/x?user=me&password=s3cret&x=1") == "postgresql://db/x?user=me&password=***&x=1"


def test_open_store_takes_a_url_with_the_instance_name_and_lease(pg_url: str) -> None:
    store = open_store(pg_url, name="alpha", lease=2.5)
    try:
        assert isinstance(store, PostgresStore) and (store.name, store.lease) == ("alpha", 2.5)
    finally:
        store.close()


# -- engines sharing a database ---------------------------------------------------

@pytest.fixture
def blocking_flow() -> Iterator[tuple[str, Calls, Calls, threading.Event, threading.Event]]:
    """A flow: a quick step, then a step that blocks until `release` is set."""
    name, quick, slow = unique("pg-block"), Calls(), Calls()
    entered, release = threading.Event(), threading.Event()

    def blocking(x: dict) -> dict:
        slow(x)
        entered.set()
        assert release.wait(WAIT * 6), "never released"
        return {**x, "slow": True}

    defflow(name, sequence(step(lambda x: quick(x) or {"input": x}), step(blocking)))
    yield name, quick, slow, entered, release
    release.set()


def test_a_dead_instances_running_flow_is_taken_over_by_replay(pg_url: str, blocking_flow) -> None:
    name, quick, slow, entered, release = blocking_flow
    first = Engine(name="first", store=PostgresStore(pg_url, name="first", lease=2.0))
    outcome: list[object] = []

    def run_on_first() -> None:
        try:
            outcome.append(first.start(name, 7, id="f1"))
        except FedflowError as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run_on_first, daemon=True)
    runner.start()
    assert entered.wait(WAIT)
    first._leases.stop(retire=False)  # the instance stops renewing its lease, as if it died in the step
    entered.clear()
    with Engine(name="second", store=PostgresStore(pg_url, name="second", lease=1.0), recover=False) as second:
        # its first recovery finds the lease still held (then its lease keeper takes the flow once it
        # runs out) or already run out (then it takes the flow itself): a takeover either way
        threading.Thread(target=second.recover, daemon=True).start()
        assert entered.wait(WAIT * 4), "the second instance re-runs the flow after the lease ran out"
        release.set()
        runner.join(WAIT)
        eventually(lambda: second.status("f1") == "done", "the taken-over flow to finish")
        assert second.result("f1") == {"input": 7, "slow": True}
    first.close()
    assert len(outcome) == 1 and isinstance(outcome[0], FedflowError), "the old run's outcome is not kept"
    assert quick.n == 1, "the journaled step did not run again"
    assert slow.n == 2, "the unfinished step ran again, once"


def test_a_taken_over_run_writes_nothing_more(pg_url: str) -> None:
    old = PostgresStore(pg_url, name="old", lease=1.0)
    new = PostgresStore(pg_url, name="new", lease=1.0)
    try:
        assert old.create(FlowRecord(id="f", name="x", status=RUNNING, input="1"))
        assert old.append_log("f", "e0", version=0)
        old.retire()
        assert new.claim_running() == ["f"]
        claimed = new.get("f")
        assert claimed.version == 1
        assert new.runner_of("f") == ("new", True)
        assert not old.append_log("f", "late")
        assert not old.transition("f", [RUNNING], {"status": "done", "result": "old"})
        assert new.append_log("f", "e1", version=1)
        assert new.transition("f", [RUNNING], {"status": "done", "result": "new"}, version=1)
        assert (new.get("f").result, new.load_log("f")) == ("new", ["e0", "e1"])
        assert new.runner_of("f") == (None, False), "a finished flow has no runner"
    finally:
        old.close()
        new.close()


def test_an_engine_takes_over_only_after_it_recovered(pg_url: str) -> None:
    """A script's Engine opened with recover=False never runs another instance's flows."""
    name = unique("pg-wait")
    defflow(name, node(lambda x: suspend("go")))
    dead = PostgresStore(pg_url, name="dead", lease=1.0)
    assert dead.create(FlowRecord(id="orphan", name=name, status=RUNNING, input="1"))
    dead.retire()
    dead.close()
    with Engine(name="script", store=pg_url, recover=False) as script:
        assert script.status("orphan") == RUNNING
        assert script.recover() == ["orphan"]
        assert script.status("orphan") == "suspended"


def test_a_config_file_takes_a_url_as_is_and_a_lease(tmp_path) -> None:
    from fedflow.cli import config

    conf = tmp_path / "node.toml"
    conf.write_text('name = "a"\nlisten = "127.0.0.1:50061"\ndb = "postgresql://u@db:5432/flows"\nlease = 2.5\n')
    loaded = config.load_file(str(conf))
    assert (loaded["db"], loaded["lease"]) == ("postgresql://u@db:5432/flows", 2.5)
    conf.write_text('lease = 0\n')
    with pytest.raises(config.ConfigError, match="lease"):
        config.load_file(str(conf))


def test_unacknowledged_writes_are_seen_at_once_by_other_instances(pg_url: str) -> None:
    writer, reader = PostgresStore(pg_url, name="writer"), PostgresStore(pg_url, name="reader")
    try:
        assert writer.create(FlowRecord(id="u", name="f", status=RUNNING, input="1"), acknowledge=False)
        assert writer.append_log("u", "e0", version=0, acknowledge=False)
        assert writer.transition("u", [RUNNING], {"status": "suspended", "waiting": "t"}, ["e1"], version=0,
                                 acknowledge=False)
        assert (reader.get("u").status, reader.load_log("u")) == ("suspended", ["e0", "e1"])
    finally:
        writer.close()
        reader.close()


def test_a_schedule_tick_and_a_one_shot_claim_go_to_one_instance(pg_url: str) -> None:
    a, b = PostgresStore(pg_url, name="a"), PostgresStore(pg_url, name="b")
    try:
        a.put_schedule("nightly", '{"cron":"0 3 * * *"}', 100.0)
        assert b.schedules() == [("nightly", '{"cron":"0 3 * * *"}', 100.0, None)]
        assert a.advance_schedule("nightly", '{"cron":"0 3 * * *"}', 100.0, 200.0, "tick-1")
        assert not b.advance_schedule("nightly", '{"cron":"0 3 * * *"}', 100.0, 200.0, "tick-1b")
        assert a.schedules()[0][2:] == (200.0, "tick-1")
        assert [a.claim_once("nightly:200"), b.claim_once("nightly:200"), a.claim_once("nightly:200")] == [
            True, False, False]
        assert b.delete_schedule("nightly") and not a.delete_schedule("nightly")
        assert (a.timers(), a.next_wake(), a.due(1e12, 10)) == ([], None, [])
    finally:
        a.close()
        b.close()


def test_a_user_who_may_not_create_tables_is_told_so_and_nothing_is_written(pg_url: str) -> None:
    role = unique("reader").replace("-", "_")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        url = pg_url.replace("postgresql://postgres@", f"postgresql://{role}@")
        one_line_error(url, "could not be set up", "permission denied", "create tables")
        assert tables(pg_url) == []
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{role}"')


@pytest.mark.slow
def test_a_server_restart_breaks_no_later_call() -> None:
    server_url()  # the same requirement as every PostgreSQL test: a set-up that runs servers
    with PostgresServer() as own:  # a server of its own, to restart
        store = PostgresStore(own.url)
        try:
            assert store.create(FlowRecord(id="a", name="f", status=RUNNING, input="1"))
            own.restart()
            assert [store.get("a").input for _ in range(20)] == ["1"] * 20
            store.heartbeat()
        finally:
            store.close()
