"""Several `fedflow serve` on one PostgreSQL database: shared flows, kill -9 and takeover, bad --db."""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

import pytest

try:
    from test_cli_support import FEDFLOW, ServerPool, assert_one_line_error, cli_json, run_cli
except ImportError:  # tests/ imported as a package
    from tests.test_cli_support import FEDFLOW, ServerPool, assert_one_line_error, cli_json, run_cli

pytestmark = pytest.mark.slow

PEER = textwrap.dedent('''
    """Two steps, counted per serve: a quick one, then one that waits for the release file."""
    import os
    import time

    from fedflow import defflow, node, sequence, step, suspend

    NODE, DIR = os.environ["PG_NODE"], os.environ["PG_DIR"]


    def mark(kind):
        with open(os.path.join(DIR, kind), "a") as fh:
            fh.write(NODE + "\\n")


    def quick(x):
        mark("quick")
        return {"input": x, "quick_on": NODE}


    def slow(x):
        mark("slow")
        end = time.monotonic() + 120
        while not os.path.exists(os.path.join(DIR, "release")):
            if time.monotonic() > end:
                raise TimeoutError("never released")
            time.sleep(0.02)
        return dict(x, slow_on=NODE)


    def register(engine):
        defflow("pg_two_steps", sequence(step(quick), step(slow)))
        defflow("pg_hold", node(lambda x: {"input": x, "answer": suspend("go")}))
''')


def marks(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    """Poll `condition` (bounded: fails after `timeout` seconds)."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def start_pair(pool: ServerPool, tmp_path: Path, pg_url: str, lease: float = 2) -> tuple:
    """Serves pg-a and pg-b on one database with `lease`; short for takeovers, long where a slow
    heartbeat on a loaded machine must not look like a death."""
    module = tmp_path / "pg_peer.py"
    module.write_text(PEER)
    env, extra = {"PG_DIR": str(tmp_path)}, ("--lease", str(lease))
    a = pool.start("pg-a", db=pg_url, load=(module,), extra=extra, env={**env, "PG_NODE": "a"})
    b = pool.start("pg-b", db=pg_url, load=(module,), extra=extra, env={**env, "PG_NODE": "b"})
    return a, b


def test_any_serve_reads_resumes_and_cancels_any_flow(pool: ServerPool, tmp_path: Path, pg_url: str) -> None:
    a, b = start_pair(pool, tmp_path, pg_url)
    for flow_id in ("h1", "h2"):
        assert cli_json(["start", "--at", a.addr, "pg_hold", '"x"', "--id", flow_id])["status"] == "suspended"
    assert {f["id"] for f in cli_json(["list", "--at", b.addr])["flows"]} >= {"h1", "h2"}
    out = cli_json(["resume", "--at", b.addr, "h1", '"from b"'])
    assert out["result"] == {"input": "x", "answer": "from b"}
    assert cli_json(["result", "--at", a.addr, "h1"])["result"] == {"input": "x", "answer": "from b"}
    cli_json(["cancel", "--at", a.addr, "h2"])
    assert cli_json(["status", "--at", b.addr, "h2"])["status"] == "cancelled"


def test_kill_9_of_a_serve_hands_its_running_flow_to_the_other(pool: ServerPool, tmp_path: Path,
                                                                 pg_url: str) -> None:
    a, b = start_pair(pool, tmp_path, pg_url)
    blocked = subprocess.Popen([*FEDFLOW, "start", "--at", a.addr, "pg_two_steps", '"go"', "--id", "t1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: marks(tmp_path / "slow") == ["a"], "the slow step on serve a")
        assert cli_json(["status", "--at", b.addr, "t1"])["status"] == "running"
        pool.kill9(a)
        blocked.communicate(timeout=30)
    finally:
        blocked.kill()
    wait_for(lambda: marks(tmp_path / "slow") == ["a", "b"], "serve b to re-run the unfinished step")
    (tmp_path / "release").touch()
    wait_for(lambda: cli_json(["status", "--at", b.addr, "t1"])["status"] == "done", "the flow to finish on b")
    assert cli_json(["result", "--at", b.addr, "t1"])["result"] == {"input": "go", "quick_on": "a", "slow_on": "b"}
    assert marks(tmp_path / "quick") == ["a"], "the step journaled before the kill did not run again"
    assert "took over flow t1" in b.log()


def test_a_restarted_serve_does_not_take_a_live_ones_flow(pool: ServerPool, tmp_path: Path, pg_url: str) -> None:
    a, b = start_pair(pool, tmp_path, pg_url, lease=30)
    blocked = subprocess.Popen([*FEDFLOW, "start", "--at", a.addr, "pg_two_steps", '"go"', "--id", "t2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: marks(tmp_path / "slow") == ["a"], "the slow step on serve a")
        pool.stop(b)
        c = pool.start("pg-c", db=pg_url, load=(tmp_path / "pg_peer.py",), extra=("--lease", "30"),
                       env={"PG_DIR": str(tmp_path), "PG_NODE": "c"})
        assert cli_json(["status", "--at", c.addr, "t2"])["status"] == "running"
        (tmp_path / "release").touch()
        _out, err = blocked.communicate(timeout=60)
    finally:
        blocked.kill()
    assert blocked.returncode == 0, err
    assert marks(tmp_path / "slow") == ["a"], "only serve a ran the flow: it was alive"
    assert cli_json(["result", "--at", c.addr, "t2"])["result"]["slow_on"] == "a"


@pytest.mark.parametrize(("db", "needle"), [
    ("postgresql://u:pw@127.0.0.1:1/x", "start the server"),
    ("postgresql://[oops/x", "postgresql://USER:PASSWORD@HOST:PORT/DBNAME"),
])
def test_a_bad_postgres_db_is_one_line(tmp_path: Path, db: str, needle: str) -> None:
    cp = run_cli(["serve", "--name", "n", "--listen", "127.0.0.1:0", "--db", db], cwd=tmp_path)
    line = assert_one_line_error(cp, 1, "--db", needle, logs=True)
    assert ":pw@" not in line, "the password is not shown"


def test_lease_must_be_positive(tmp_path: Path) -> None:
    cp = run_cli(["serve", "--name", "n", "--listen", "127.0.0.1:0", "--lease", "0"], cwd=tmp_path)
    assert_one_line_error(cp, 2, "--lease")
