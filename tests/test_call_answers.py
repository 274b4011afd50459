"""Answers to peer calls recorded by idempotency key: the store capability (memory, SQLite
and PostgreSQL), the schema step that adds it, the serve settings that bound it, and an Engine
that keeps answering a retried call after it is closed and reopened on its file."""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import fedflow
from fedflow.cli.config import ConfigError, settings
from fedflow.exposed import AnswerLimits
from fedflow.store import MemoryStore, SQLiteStore, Store, sqlite_sql
from fedflow.store.postgres import PostgresStore

try:
    from pg_support import fresh_database
except ImportError:  # tests/ imported as a package
    from tests.pg_support import fresh_database


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            made: Store = PostgresStore(stack.enter_context(fresh_database()))
        else:
            made = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")
        stack.callback(made.close)
        yield made


def test_the_first_answer_recorded_for_a_key_is_kept(store: Store) -> None:
    assert store.recorded_answer("f\x00k") is None
    assert store.record_answer("f\x00k", '"first"', 1.0) == '"first"'
    assert store.record_answer("f\x00k", '"second"', 2.0) == '"first"', "a later answer never replaces it"
    assert store.recorded_answer("f\x00k") == '"first"'


def test_answers_are_pruned_by_age_and_by_count(store: Store) -> None:
    for n in range(10):
        store.record_answer(f"k{n}", str(n), float(n))
    assert store.prune_answers(before=3.0, keep=100) == 3
    assert [store.recorded_answer(f"k{n}") for n in range(4)] == [None, None, None, "3"]
    assert store.prune_answers(before=0.0, keep=2) == 5
    assert [n for n in range(10) if store.recorded_answer(f"k{n}") is not None] == [8, 9]
    assert store.prune_answers(before=0.0, keep=2) == 0


def test_a_schema_5_file_gains_the_answers_table(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    SQLiteStore(db).close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TABLE call_answers")
    conn.execute("ALTER TABLE replicas DROP COLUMN sender")
    conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    conn.close()
    reopened = SQLiteStore(db)
    try:
        assert reopened.record_answer("k", "1", 1.0) == "1"
        reopened.put_replica("b", "{}", sender="b")
        assert [(s, n, who) for s, n, _at, who in reopened.replica_slots()] == [("b", 2, "b")]
    finally:
        reopened.close()
    conn = sqlite3.connect(db)
    try:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    finally:
        conn.close()
    assert version == str(sqlite_sql.SCHEMA_VERSION) == "6"


def test_a_reopened_engine_does_not_run_a_recorded_call_again(tmp_path: Path) -> None:
    runs: list[int] = []

    def charge(n: int) -> dict:
        runs.append(n)
        return {"charged": n, "run": len(runs)}

    for _generation in range(2):
        with fedflow.Engine(name="callee", store=tmp_path / "callee.db") as callee:
            callee.expose("charge", charge)
            assert callee.invoke("charge", 5, call_id="flow-1/0") == {"charged": 5, "run": 1}
    assert runs == [5]


def test_a_call_that_raised_is_not_recorded(tmp_path: Path) -> None:
    with fedflow.Engine(name="callee", store=tmp_path / "callee.db") as callee:
        callee.expose("boom", lambda x: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            callee.invoke("boom", None, call_id="k")
        assert callee.store.recorded_answer("boom\x00k") is None


def _flags(**given: object) -> argparse.Namespace:
    base = {"config": None, "name": "a", "listen": "127.0.0.1:0", "load": None, "peer": None}
    return argparse.Namespace(**{**base, **given})


def test_serve_settings_bound_the_recorded_answers(tmp_path: Path) -> None:
    assert settings(_flags()).federation.answers == AnswerLimits()
    conf = tmp_path / "a.toml"
    conf.write_text("answers_kept = 50\nanswers_max_age = 60\n")
    assert settings(_flags(config=str(conf))).federation.answers == AnswerLimits(max_age=60, max_count=50)
    flagged = settings(_flags(config=str(conf), answers_kept=7))
    assert flagged.federation.answers == AnswerLimits(max_age=60, max_count=7), "a flag wins over the file"


@pytest.mark.parametrize(("given", "needle"), [
    ({"answers_kept": 0}, "--answers-kept"),
    ({"answers_max_age": -1.0}, "--answers-max-age"),
])
def test_unusable_answer_limits_are_refused_naming_the_flag(given: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        settings(_flags(**given))


def test_a_config_file_answer_limit_must_be_a_number(tmp_path: Path) -> None:
    conf = tmp_path / "a.toml"
    conf.write_text('answers_kept = "many"\n')
    with pytest.raises(ConfigError, match="answers_kept must be a number"):
        settings(_flags(config=str(conf)))
