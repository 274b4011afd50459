"""`fedflow serve` itself: startup, config files, tokens, crashes and recovery, bad input."""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

import pytest

try:
    from test_cli_support import (
        FEDFLOW,
        PEERS,
        ServerPool,
        assert_one_line_error,
        cli_json,
        free_ports,
        run_cli,
    )
except ImportError:  # tests/ imported as a package
    from tests.test_cli_support import (
        FEDFLOW,
        PEERS,
        ServerPool,
        assert_one_line_error,
        cli_json,
        free_ports,
        run_cli,
    )

pytestmark = pytest.mark.slow

GATED_PEER = textwrap.dedent('''
    """A step that blocks until a file appears (tests/test_serve.py)."""
    import os
    import time

    from fedflow import defflow, node, sequence, step, suspend

    GATE = os.environ["FEDFLOW_TEST_GATE"]


    def wait_for_release(x):
        with open(os.path.join(GATE, "entered"), "a") as fh:
            fh.write("entered\\n")
        end = time.monotonic() + 60
        while not os.path.exists(os.path.join(GATE, "release")):
            if time.monotonic() > end:
                raise TimeoutError("never released")
            time.sleep(0.02)
        return {"released": x}


    def register(engine):
        engine.expose("hello", lambda who: f"hello {who}")
        defflow("t_gated", sequence(step(wait_for_release), node(lambda r: {**r, "after": "done"})))
        defflow("t_hold", node(lambda x: {"input": x, "answer": suspend("go")}))
''')


@pytest.fixture
def gated(tmp_path: Path) -> tuple[Path, Path]:
    """(the gated peer module, its gate folder)."""
    gate = tmp_path / "gate"
    gate.mkdir()
    module = tmp_path / "gated_peer.py"
    module.write_text(GATED_PEER)
    return module, gate


def wait_for(path: Path, timeout: float = 20.0) -> None:
    """Bounded wait for `path` to exist."""
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear within {timeout}s"
        time.sleep(0.02)


def test_startup_logs_and_sigterm_stops_cleanly(fedflow_serve, gated: tuple[Path, Path]) -> None:
    module, gate = gated
    down = f"127.0.0.1:{free_ports(1)[0]}"
    server = fedflow_serve("logger", load=[module], peers={"far": down}, env={"FEDFLOW_TEST_GATE": str(gate)})
    assert cli_json(["call", "--at", server.address, "hello", '"you"']) == {"result": "hello you"}
    assert server.stop() == 0
    log = server.log()
    for line in (f"peer far at {down}", f"loaded module {module}", "exposed function hello",
                 "defined flow t_gated", f"serving logger on {server.address}", "stopped logger"):
        assert line in log, log
    assert "Traceback" not in log


def test_kill_9_then_restart_on_the_same_db(fedflow_serve, gated: tuple[Path, Path]) -> None:
    module, gate = gated
    server = fedflow_serve("crash", load=[module], env={"FEDFLOW_TEST_GATE": str(gate)})
    at = server.address
    assert cli_json(["start", "--at", at, "t_hold", '"w"', "--id", "held"])["status"] == "suspended"
    blocked = subprocess.Popen([*FEDFLOW, "start", "--at", at, "t_gated", '"g"', "--id", "gated"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(gate / "entered")
        assert cli_json(["status", "--at", at, "gated"])["status"] == "running"
        server.kill()
        _out, err = blocked.communicate(timeout=30)
    finally:
        blocked.kill()
    assert blocked.returncode == 1 and len(err.strip().splitlines()) == 1, err
    (gate / "release").touch()
    assert "recovered flow" not in server.log()
    server.restart()
    assert "recovered flow gated: now done" in server.log()
    assert cli_json(["result", "--at", at, "gated"]) == {"id": "gated", "result": {"released": "g", "after": "done"}}
    assert (gate / "entered").read_text().count("entered") == 2, "the unfinished step ran again, once"
    out = cli_json(["resume", "--at", at, "held", '"after the crash"'])
    assert out == {"id": "held", "status": "done", "result": {"input": "w", "answer": "after the crash"}}


def test_config_file_with_flag_overrides_and_peer_tokens(pool: ServerPool, tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("s3cret\n")
    port, other = free_ports(2)
    conf = tmp_path / "conf" / "node.toml"
    conf.parent.mkdir()
    conf.write_text(textwrap.dedent(f'''
        name = "fromfile"
        listen = "127.0.0.1:1"          # overridden by --listen
        db = "node.db"                  # relative to this file
        load = ["{PEERS / 'fed.py'}"]
        deadline = 1.5
        token_file = "../token.txt"
        log_level = "debug"
        [peers]
        fed = {{ address = "127.0.0.1:{port}", token_file = "../token.txt" }}  # itself, over gRPC
        gone = "127.0.0.1:{other}"
    '''))
    addr = f"127.0.0.1:{port}"
    server = pool.spawn("fromfile", addr, ["serve", "--config", str(conf), "--listen", addr,
                                           "--load", str(PEERS / "publishing.py"), "--peer", "gone=" + addr])
    assert (conf.parent / "node.db").exists(), "db is relative to the config file"
    denied = run_cli(["call", "--at", addr, "publish", '"x"'])
    assert_one_line_error(denied, 1, "token")
    token = ["--token-file", tmp_path / "token.txt"]
    out = cli_json(["start", "--at", addr, "publish", '"hello"', *token])
    assert out["result"] == {"published": "hello!", "by": "fromfile", "count": 1}
    peers = {p["name"]: p for p in cli_json(["peers", "--at", addr], env={"FEDFLOW_TOKEN": "s3cret"})["peers"]}
    assert peers["fed"]["serving"] and peers["gone"] == {"name": "gone", "address": addr, "serving": True}
    assert "DEBUG" in server.log()


@pytest.mark.parametrize("text, needle", [
    ("name = \"x\"\nbogus = 1\n", "unknown key"),
    ("name = [\n", "not valid TOML"),
    ("name = \"x\"\n[peers]\nb = \"nowhere\"\n", "HOST:PORT"),
    ("name = \"x\"\ndeadline = -1\n", "deadline"),
])
def test_bad_config_is_usage(tmp_path: Path, text: str, needle: str) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text(text)
    cp = run_cli(["serve", "--config", conf, "--listen", "127.0.0.1:0"], cwd=tmp_path)
    assert_one_line_error(cp, 2, needle)


@pytest.mark.parametrize("source, needle, store_created", [
    ("import no_such_module_here\n", "No module named", False),
    ("def register(engine):\n    raise RuntimeError('boom')\n", "RuntimeError: boom", True),
    ("x = 1\n", "no register(engine)", False),
    ("def register(:\n", "SyntaxError", False),
])
def test_failing_load_is_one_line(tmp_path: Path, source: str, needle: str, store_created: bool) -> None:
    (tmp_path / "broken.py").write_text(source)
    cp = run_cli(["serve", "--name", "bad", "--listen", "127.0.0.1:0", "--load", "broken.py"], cwd=tmp_path)
    assert_one_line_error(cp, 2, "--load broken.py", needle, logs=True)
    assert (tmp_path / "bad.db").exists() == store_created


def test_missing_load_targets(tmp_path: Path) -> None:
    for target in ("missing.py", "no_such.dotted.module"):
        cp = run_cli(["serve", "--name", "m", "--listen", "127.0.0.1:0", "--load", target], cwd=tmp_path)
        assert_one_line_error(cp, 2, target, logs=True)


def test_dotted_load_from_the_working_directory(pool: ServerPool, tmp_path: Path) -> None:
    (tmp_path / "mypeer.py").write_text("def register(engine):\n    engine.expose('twice', lambda x: 2 * x)\n")
    server = pool.start("dotted", load=("mypeer",))
    assert cli_json(["call", "--at", server.addr, "twice", "21"]) == {"result": 42}


def test_port_in_use(pool: ServerPool, tmp_path: Path) -> None:
    first = pool.start("first")
    cp = run_cli(["serve", "--name", "second", "--listen", first.addr], cwd=tmp_path)
    assert_one_line_error(cp, 1, first.addr, "in use", logs=True)
    assert not (tmp_path / "second.db").exists()


def test_db_that_is_not_a_fedflow_store(tmp_path: Path) -> None:
    junk = tmp_path / "notes.db"
    junk.write_text("shopping list\n")
    cp = run_cli(["serve", "--name", "n", "--listen", "127.0.0.1:0", "--db", junk])
    assert_one_line_error(cp, 1, "--db", str(junk), logs=True)
    assert junk.read_text() == "shopping list\n", "the file is left alone"


def test_make_serve_modules_work_alone(fedflow_serve) -> None:
    """What `make serve` loads: publishing (standing in for fed) and the pipeline."""
    server = fedflow_serve("local", load=[PEERS / "publishing.py", PEERS / "pipeline.py"])
    a = server.address
    assert cli_json(["start", "--at", a, "publish", '"hello"'])["result"] == {"published": "hello!", "by": "local"}
    assert cli_json(["start", "--at", a, "publish", '"x"'])["result"] == "rejected"
    out = cli_json(["start", "--at", a, "pipeline", '{"title": "T", "body": "B"}', "--id", "p-1"])
    assert out["status"] == "suspended" and out["tag"].startswith("request:")
    cli_json(["resume", "--at", a, "p-1", '"<h1>T</h1>"'])
    cli_json(["resume", "--at", a, "p-1", '"approved"'])
    out = cli_json(["resume", "--at", a, "p-1", '{"url": "/posts/1"}'])
    assert out["result"] == {"url": "/posts/1"}
