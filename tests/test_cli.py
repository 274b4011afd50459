"""The client verbs against three real `fedflow serve` processes (a, b, c) and one dead peer.

Every verb, its JSON shape and exit code; failover past a dead peer;
replicate/restore and handoff between processes; bad input (one line on
stderr, the right exit code, never a traceback).
"""

from __future__ import annotations

import io
import json
import textwrap
from contextlib import redirect_stderr, redirect_stdout

import pytest

from fedflow.cli import main as cli

try:
    from test_cli_support import PEERS, ServerPool, assert_one_line_error, cli_json, free_ports, run_cli
except ImportError:  # tests/ imported as a package
    from tests.test_cli_support import PEERS, ServerPool, assert_one_line_error, cli_json, free_ports, run_cli

pytestmark = pytest.mark.slow

TEST_PEER = textwrap.dedent('''
    """Peer module for tests/test_cli.py."""
    from fedflow import const, defflow, fail, node, remote_failover, sequence, suspend

    def register(engine):
        engine.expose("echo", lambda x: x)
        engine.expose("boom", lambda x: 1 / 0)
        engine.expose("whoami", lambda x: engine.name)
        defflow("t_wait", node(lambda x: {"input": x, "answer": suspend("go")}))
        defflow("t_values", node(lambda x: {"big": 2**64 + 1, "raw": b"\\x00\\xff", "no": fail("nope"), "x": x}))
        defflow("t_crash", node(lambda x: 1 / 0))
        defflow("t_failover", sequence(remote_failover(["down", "b"], "whoami", const("local")),
                                       node(lambda who: {"who": who, "ok": suspend("ok")})))
''')


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory):
    """Servers a, b, c (peers of each other, plus `down` where nothing listens), addresses by name."""
    workdir = tmp_path_factory.mktemp("cli")
    module = workdir / "t_peer.py"
    module.write_text(TEST_PEER)
    ports = dict(zip(["a", "b", "c", "down"], free_ports(4), strict=True))
    addr = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    pool = ServerPool(workdir)
    try:
        started = []
        for name in ["a", "b", "c"]:
            peers = {other: addr[other] for other in addr if other != name}
            started.append(pool.start(name, port=ports[name], load=(module, PEERS / "publishing.py"),
                                      peers=peers, extra=("--deadline", "1"), wait=False))
        for server in started:
            pool.wait_ready(server)
        yield addr
    finally:
        pool.stop_all()


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = cli.main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------ help and usage
@pytest.mark.parametrize("verb", ["serve", *cli.CLIENT_VERBS])
def test_every_verb_help_shows_an_example(verb: str) -> None:
    rc, out, _err = run_main([verb, "--help"])
    assert rc == 0
    assert "example" in out and f"fedflow {verb}" in out


def test_main_help_lists_verbs_and_example_via_python_m() -> None:
    cp = run_cli(["--help"])
    assert cp.returncode == 0
    assert "examples:" in cp.stdout and all(v in cp.stdout for v in cli.CLIENT_VERBS)


@pytest.mark.parametrize("argv, needle", [
    (["frob"], "invalid choice"),
    (["status", "--at", "127.0.0.1:1", "x", "--frob"], "unrecognized arguments"),
    ([], "choose a command"),
    (["status", "x"], "--at"),
    (["call", "--at", "127.0.0.1:1", "fn", "{not json"], "not valid JSON"),
    (["call", "--at", "127.0.0.1:1", "fn", "hello"], "not valid JSON"),
    (["call", "--at", "127.0.0.1:1", "fn", '{"$bytes": "!!"}'], "invalid base64"),
    (["call", "--at", "127.0.0.1:1", "fn", '{"a": [1, {"$byte": "AA=="}]}'], "JSON['a'][1]: unknown tag '$byte'"),
    (["resume", "--at", "127.0.0.1:1", "x"], "required: JSON"),
    (["status", "--at", "nowhere", "x"], "HOST:PORT"),
    (["replicate", "--at", "127.0.0.1:1"], "--to"),
    (["serve", "--listen", "127.0.0.1:0"], "--name"),
])
def test_usage_errors_exit_2_with_one_line(argv: list[str], needle: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEDFLOW_AT", raising=False)
    rc, out, err = run_main(argv)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err, err


def test_usage_errors_in_a_real_process_have_no_traceback() -> None:
    assert_one_line_error(run_cli(["frob"]), 2, "invalid choice")
    assert_one_line_error(run_cli(["call", "--at", "127.0.0.1:1", "inc", "{not json"]), 2, "not valid JSON")


def test_unreachable_at_is_a_peer_error(fed: dict[str, str]) -> None:
    line = assert_one_line_error(run_cli(["status", "--at", fed["down"], "x"]), 1, fed["down"])
    assert "--at" in line


# ------------------------------------------------------------------ verbs
def test_call_round_trips_exact_ints_bytes_and_fail(fed: dict[str, str]) -> None:
    value = '{"n": 18446744073709551617, "raw": {"$bytes": "AP8="}, "f": {"$fail": "x"}, "m": {"$map": [["$k", 1]]}}'
    cp = run_cli(["call", "--at", fed["b"], "echo", value])
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout) == {"result": json.loads(value)}
    assert "18446744073709551617" in cp.stdout
    assert cli_json(["call", "--at", fed["b"], "echo"]) == {"result": None}


def test_call_errors_are_peer_errors(fed: dict[str, str]) -> None:
    assert_one_line_error(run_cli(["call", "--at", fed["b"], "nope", "1"]), 1, "UnknownFunction", "nope")
    assert_one_line_error(run_cli(["call", "--at", fed["b"], "boom", "1"]), 1, "RemoteError", "ZeroDivisionError")


def test_start_status_pending_resume_result_list(fed: dict[str, str]) -> None:
    a = fed["a"]
    out = cli_json(["start", "--at", a, "t_wait", '{"n": 1}', "--id", "w-1"])
    assert out == {"id": "w-1", "status": "suspended", "tag": "go"}
    assert cli_json(["start", "--at", a, "t_wait", '"other"', "--id", "w-1"]) == out, "an existing id is not re-run"
    assert cli_json(["status", "--at", a, "w-1"]) == {"id": "w-1", "status": "suspended"}
    assert {"id": "w-1", "tag": "go", "kind": None, "payload": None} in cli_json(["pending", "--at", a])["pending"]
    out = cli_json(["resume", "--at", a, "w-1", '"yes"'])
    assert out == {"id": "w-1", "status": "done", "result": {"input": {"n": 1}, "answer": "yes"}}
    assert cli_json(["result", "--at", a, "w-1"]) == {"id": "w-1", "result": {"input": {"n": 1}, "answer": "yes"}}
    assert {"id": "w-1", "status": "done"} in cli_json(["list", "--at", a])["flows"]
    assert_one_line_error(run_cli(["resume", "--at", a, "w-1", "1"]), 1, "already done")


def test_start_without_id_gets_a_fresh_one_and_values_print_tagged(fed: dict[str, str]) -> None:
    cp = run_cli(["start", "--at", fed["a"], "t_values", "[1, 2.5]"])
    out = json.loads(cp.stdout)
    assert out["status"] == "done" and out["id"].startswith("a-")
    assert out["result"] == {"big": 2**64 + 1, "raw": {"$bytes": "AP8="}, "no": {"$fail": "nope"}, "x": [1, 2.5]}
    assert "18446744073709551617" in cp.stdout


def test_failed_and_unknown_flows_exit_1(fed: dict[str, str]) -> None:
    a = fed["a"]
    assert_one_line_error(run_cli(["start", "--at", a, "t_crash", "1", "--id", "crash-1"]), 1,
                          "FlowFailed", "ZeroDivisionError")
    assert cli_json(["status", "--at", a, "crash-1"]) == {"id": "crash-1", "status": "failed"}
    assert_one_line_error(run_cli(["result", "--at", a, "crash-1"]), 1, "crash-1")
    assert_one_line_error(run_cli(["start", "--at", a, "no_such_flow"]), 1, "no_such_flow")
    assert_one_line_error(run_cli(["resume", "--at", a, "ghost-id", "1"]), 1, "UnknownFlow", "ghost-id")
    assert cli_json(["status", "--at", a, "ghost-id"]) == {"id": "ghost-id", "status": "unknown"}


def test_cancel_forget_gc(fed: dict[str, str]) -> None:
    c = fed["c"]
    cli_json(["start", "--at", c, "t_wait", "1", "--id", "k-1"])
    cli_json(["start", "--at", c, "t_wait", "2", "--id", "k-2"])
    assert_one_line_error(run_cli(["result", "--at", c, "k-1"]), 1, "FlowNotDone")
    assert_one_line_error(run_cli(["forget", "--at", c, "k-1"]), 1, "k-1")
    assert cli_json(["cancel", "--at", c, "k-1"]) == {"id": "k-1", "status": "cancelled"}
    assert_one_line_error(run_cli(["resume", "--at", c, "k-1", "1"]), 1, "FlowCancelled")
    assert cli_json(["forget", "--at", c, "k-1"]) == {"id": "k-1", "status": "unknown"}
    cli_json(["cancel", "--at", c, "k-2"])
    assert cli_json(["gc", "--at", c])["removed"] >= 1
    assert cli_json(["status", "--at", c, "k-2"])["status"] == "unknown"


def test_peers_shows_addresses_and_health(fed: dict[str, str]) -> None:
    peers = {p["name"]: p for p in cli_json(["peers", "--at", fed["a"]])["peers"]}
    assert peers["b"] == {"name": "b", "address": fed["b"], "serving": True}
    assert peers["down"] == {"name": "down", "address": fed["down"], "serving": False}
    assert peers["fed"]["address"] is None, "publishing.py stands in for a missing fed peer"


def test_at_defaults_from_the_environment(fed: dict[str, str]) -> None:
    out = cli_json(["status", "x-env"], env={"FEDFLOW_AT": fed["b"]})
    assert out == {"id": "x-env", "status": "unknown"}


# ------------------------------------------------------------------ federation
def test_failover_past_a_dead_peer(fed: dict[str, str]) -> None:
    out = cli_json(["start", "--at", fed["a"], "t_failover", "null", "--id", "fo-1"])
    assert out == {"id": "fo-1", "status": "suspended", "tag": "ok"}
    out = cli_json(["resume", "--at", fed["a"], "fo-1", "true"])
    assert out["result"] == {"who": "b", "ok": True}


def test_replicate_restore_elsewhere_and_resume(fed: dict[str, str]) -> None:
    cli_json(["start", "--at", fed["a"], "t_wait", '"r"', "--id", "rep-1"])
    out = cli_json(["replicate", "--at", fed["a"], "--to", "b"])
    assert out["to"] == "b" and isinstance(out["flows"], int) and out["flows"] >= 1
    out = cli_json(["restore", "--at", fed["c"], "--from", "b", "--source", "a"])
    assert "rep-1" in out["ids"] and set(out) == {"ids"}
    out = cli_json(["resume", "--at", fed["c"], "rep-1", '"on c"'])
    assert out == {"id": "rep-1", "status": "done", "result": {"input": "r", "answer": "on c"}}
    assert_one_line_error(run_cli(["restore", "--at", fed["c"], "--from", "nobody"]), 1, "nobody")


def test_handoff_between_processes(fed: dict[str, str]) -> None:
    b, c = fed["b"], fed["c"]
    cli_json(["start", "--at", b, "t_wait", '"h"', "--id", "ho-1"])
    out = cli_json(["handoff", "--at", b, "--to", "c"])
    assert out["to"] == "c" and "ho-1" in out["ids"]
    assert cli_json(["status", "--at", b, "ho-1"]) == {"id": "ho-1", "status": "moved"}
    assert_one_line_error(run_cli(["resume", "--at", b, "ho-1", "1"]), 1, "FlowMoved", "'c'")
    out = cli_json(["resume", "--at", c, "ho-1", '"moved"'])
    assert out == {"id": "ho-1", "status": "done", "result": {"input": "h", "answer": "moved"}}


def test_replicate_to_an_unknown_peer_is_a_peer_error(fed: dict[str, str]) -> None:
    assert_one_line_error(run_cli(["replicate", "--at", fed["a"], "--to", "nobody"]), 1, "UnknownPeer", "nobody")
    assert_one_line_error(run_cli(["handoff", "--at", fed["a"], "--to", "nobody"]), 1, "UnknownPeer")


@pytest.mark.parametrize("name", ["fedflow.cli.main", "fedflow.cli.verbs", "fedflow.cli.config"])
def test_command_line_doctests(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_replicate_to_a_dead_peer_is_a_peer_error(fed: dict[str, str]) -> None:
    cp = run_cli(["replicate", "--at", fed["a"], "--to", "down", "--deadline", "20"])
    assert_one_line_error(cp, 1, "PeerUnavailable", "down")
