"""The `fedflow.testing` plugin beyond the conformance suite: teardown of a failed test,
tokens, restarts of a running serve, load targets relative to the test's directory,
refusals of bad arguments that start nothing, and an import that loads no gRPC."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fedflow
from fedflow import node, suspend
from fedflow.client import ControlClient
from fedflow.testing import ServeError, Serves, local_federation

pytest_plugins = ["pytester"]

MODULE = textwrap.dedent('''
    from fedflow import defflow, node, suspend

    def register(engine):
        engine.expose("double", lambda x: x * 2)
        defflow("plugin-wait", node(lambda x: {"input": x, "answer": suspend("go")}))
''')


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "plugin_peer.py"
    path.write_text(MODULE)
    return path


def is_up(address: str) -> bool:
    with ControlClient(address, deadline=1.0) as client:
        return client.health()


FAILING_TEST = '''
    def test_fails_with_a_serve(fedflow_serve):
        srv = fedflow_serve("keep-me")
        with open({out!r}, "w") as f:
            f.write(srv.address)
        assert srv.client.list()["flows"] == ["not", "empty"]
'''


def test_a_failed_test_still_stops_its_serves_and_shows_their_logs(pytester, monkeypatch, tmp_path: Path):
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    out = tmp_path / "address.txt"
    pytester.makepyfile(test_user=textwrap.dedent(FAILING_TEST).format(out=str(out)))
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(failed=1)
    address = out.read_text()
    result.stdout.fnmatch_lines([f"*fedflow serve keep-me ({address}) log*"])
    assert not is_up(address)


CLOSED_ENGINES = '''
    closed = []

    def test_makes_a_federation(fedflow_federation, fedflow_engine):
        engines = {**fedflow_federation("a", "b"), "single": fedflow_engine}
        for name, engine in engines.items():
            engine.close = lambda name=name, close=engine.close: (closed.append(name), close())

    def test_they_were_closed_after_it():
        assert sorted(closed) == ["a", "b", "single"]
'''


def test_federation_and_engine_fixtures_close_their_engines(pytester, monkeypatch):
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile(test_user=textwrap.dedent(CLOSED_ENGINES))
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=2)


def test_a_serve_with_a_token_refuses_a_client_without_it(fedflow_serve, module: Path):
    srv = fedflow_serve("guarded", load=[module], token="s3cret")
    assert srv.client.call("double", 4) == {"result": 8}
    with ControlClient(srv.address, deadline=5.0) as stranger, pytest.raises(fedflow.PeerError, match="token"):
        stranger.list()


def test_restart_of_a_running_serve_keeps_its_address_and_flows(fedflow_serve, module: Path):
    srv = fedflow_serve("again", load=[module])
    address, first_pid = srv.address, srv.pid
    assert srv.client.start("plugin-wait", 1, flow_id="w-1")["status"] == "suspended"
    srv.restart()
    assert (srv.address, srv.running) == (address, True) and srv.pid != first_pid
    assert srv.client.resume("w-1", "back")["result"] == {"input": 1, "answer": "back"}


def test_load_targets_resolve_from_the_tests_working_directory(fedflow_serve, module: Path, monkeypatch):
    monkeypatch.chdir(module.parent)
    by_path = fedflow_serve("by-path", load=[module.name])
    by_name = fedflow_serve("by-name", load=[module.stem])
    assert by_path.client.call("double", 2) == by_name.client.call("double", 2) == {"result": 4}


def test_a_serve_that_cannot_start_fails_the_test_with_its_log(tmp_path: Path):
    serves = Serves(tmp_path)
    with pytest.raises(ServeError, match=r"no-such-peer\.py") as caught:
        serves.start("broken", load=[tmp_path / "no-such-peer.py"])
    assert "exited with status 2" in str(caught.value)
    assert not any(serve.running for serve in serves.serves)


@pytest.mark.parametrize(("args", "error", "fix"), [
    ((("a=b",), {}), ValueError, "without '/'"),
    ((("x",), {"load": "peer.py"}), TypeError, "load=['peer.py']"),
    ((("x",), {"peers": {"b": 50051}}), TypeError, "b.address"),
    ((("x",), {"token": " padded "}), ValueError, "whitespace"),
])
def test_bad_serve_arguments_are_refused_before_anything_starts(tmp_path: Path, args, error, fix):
    serves = Serves(tmp_path / "serves")
    positional, keywords = args
    with pytest.raises(error) as caught:
        serves.start(*positional, **keywords)
    assert fix in str(caught.value)
    assert serves.serves == [] and not (tmp_path / "serves").exists()


def test_a_second_running_serve_of_the_same_name_is_refused(fedflow_serve):
    first = fedflow_serve("twin")
    with pytest.raises(ValueError, match="restart"):
        fedflow_serve("twin")
    assert first.running


@pytest.mark.parametrize(("names", "fix"), [((), "name the members"), (("a", "a"), "'a' given twice"),
                                            (("a", ""), "non-empty")])
def test_bad_federation_names_are_refused(names, fix):
    with pytest.raises(ValueError, match=fix):
        local_federation(*names)


def test_federation_members_know_every_other_member_by_name(fedflow_federation):
    fed = fedflow_federation("a", "b", "c")
    assert {name: engine.peers.names() for name, engine in fed.items()} == {
        "a": ["b", "c"], "b": ["a", "c"], "c": ["a", "b"]}
    waiting = fed["c"].start(node(lambda x: suspend("t")), 1, id="moving")
    assert fed["c"].handoff_to("a") == [waiting.id] and fed["a"].status("moving") == "suspended"


def test_importing_the_plugin_loads_no_grpc():
    code = "import sys, fedflow.testing.plugin; print(sorted(m for m in sys.modules if m.split('.')[0] == 'grpc'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_a_port_taken_before_the_serve_binds_it_is_retried_on_another(tmp_path: Path, monkeypatch):
    from fedflow.testing import serve as serve_module

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        ports = iter([taken.getsockname()[1], serve_module.free_port()])
        monkeypatch.setattr(serve_module, "free_port", lambda: next(ports))
        serves = Serves(tmp_path)
        try:
            srv = serves.start("retried")
            assert srv.running and srv.address != busy
            assert [s.address for s in serves.serves] == [busy, srv.address]
            assert "in use" in serves.serves[0].log() and "in use" not in srv.log()
        finally:
            serves.stop_all()
