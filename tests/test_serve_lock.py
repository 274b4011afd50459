"""One `fedflow serve` per SQLite file: the lock beside it, a refused second serve, kill -9."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fedflow import Engine
from fedflow.client import ControlClient
from fedflow.store.lockfile import StoreHeld, hold_for_serve, lock_path

try:
    from test_cli_support import ServerPool, assert_one_line_error, cli_json, run_cli
except ImportError:  # tests/ imported as a package
    from tests.test_cli_support import ServerPool, assert_one_line_error, cli_json, run_cli

HOLD_MODULE = ("from fedflow import defflow, node, suspend\n\n"
               "def register(engine):\n"
               "    defflow('lock_hold', node(lambda x: {'input': x, 'answer': suspend('go')}))\n")


def test_a_held_store_refuses_a_second_holder_naming_the_first(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    first = hold_for_serve(db, "one", "127.0.0.1:7001")
    try:
        assert json.loads(Path(lock_path(db)).read_text()) == {"name": "one", "pid": os.getpid(),
                                                               "listen": "127.0.0.1:7001"}
        with pytest.raises(StoreHeld) as caught:
            hold_for_serve(db, "two", "127.0.0.1:7002")
        message = str(caught.value)
        assert "'one'" in message and str(os.getpid()) in message and "127.0.0.1:7001" in message
        assert "\n" not in message
        assert json.loads(Path(lock_path(db)).read_text())["name"] == "one", "the refused one wrote nothing"
    finally:
        first.release()
    second = hold_for_serve(db, "two", "127.0.0.1:7002")  # released: free again
    second.release()
    second.release()  # idempotent


def test_a_symlinked_path_shares_the_lock(tmp_path: Path) -> None:
    db = tmp_path / "real.db"
    (tmp_path / "alias.db").symlink_to(db)
    held = hold_for_serve(str(db), "one", "127.0.0.1:7001")
    try:
        with pytest.raises(StoreHeld):
            hold_for_serve(str(tmp_path / "alias.db"), "two", "127.0.0.1:7002")
    finally:
        held.release()


def test_a_postgres_url_takes_no_lock(tmp_path: Path) -> None:
    url = "postgresql://u@127.0.0.1:1/db"
    first, second = hold_for_serve(url, "a", "x:1"), hold_for_serve(url, "b", "x:2")
    assert first.path is None and second.path is None
    first.release()
    second.release()


@pytest.mark.slow
def test_second_serve_is_refused_and_a_script_engine_is_still_allowed(pool: ServerPool, tmp_path: Path) -> None:
    module = tmp_path / "lock_peer.py"
    module.write_text(HOLD_MODULE)
    db = tmp_path / "held.db"
    holder = pool.start("holder", db=db, load=(module,))
    assert cli_json(["start", "--at", holder.addr, "lock_hold", "1", "--id", "h1"])["status"] == "suspended"
    cp = run_cli(["serve", "--name", "intruder", "--listen", "127.0.0.1:0", "--db", db, "--load", module],
                 cwd=tmp_path)
    assert_one_line_error(cp, 1, str(db), "'holder'", f"pid {holder.proc.pid}", holder.addr, logs=True)
    with Engine(name="script", store=str(db), recover=False) as script:  # beside the serve: allowed
        assert ("h1", "suspended") in script.list()
    with ControlClient(holder.addr) as client:
        assert client.resume("h1", "yes")["result"] == {"input": 1, "answer": "yes"}


@pytest.mark.slow
def test_after_kill_9_a_new_serve_takes_the_file(pool: ServerPool, tmp_path: Path) -> None:
    module = tmp_path / "lock_peer.py"
    module.write_text(HOLD_MODULE)
    db = tmp_path / "crashy.db"
    first = pool.start("first", db=db, load=(module,))
    assert cli_json(["start", "--at", first.addr, "lock_hold", 2, "--id", "k1"])["status"] == "suspended"
    pool.kill9(first)
    assert json.loads(Path(lock_path(str(db))).read_text())["name"] == "first", "the file stays, not the lock"
    second = pool.start("second", db=db, load=(module,))
    with ControlClient(second.addr) as client:
        assert client.resume("k1", "after")["result"] == {"input": 2, "answer": "after"}
    assert json.loads(Path(lock_path(str(db))).read_text())["name"] == "second"
