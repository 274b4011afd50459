"""Progress of replicate, restore and handoff: the streaming RPCs, the client, and the CLI's stderr."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import grpc
import pytest

import fedflow
from fedflow.cli.config import UsageError
from fedflow.cli.watch import EVERY_ENV, PhaseProgress, progress_every
from fedflow.client import ControlClient
from fedflow.grpc.server import run_server

try:
    from support import unique
    from test_cli_support import cli_json, describe, run_cli
except ImportError:  # tests/ imported as a package
    from tests.support import unique
    from tests.test_cli_support import cli_json, describe, run_cli

FLOWS = 250  # enough for many "exporting" reports (one per FLOWS // 100 flows)


@pytest.fixture
def three() -> Iterator[dict]:
    """Served engines a, b, c (a and c know b, b knows c), a with FLOWS suspended flows."""
    wait = unique("wait")
    fedflow.defflow(wait, fedflow.node(lambda x: {"input": x, "go": fedflow.suspend("go")}))
    with contextlib.ExitStack() as stack:
        names = {key: unique(key) for key in "abc"}
        engines, addresses = {}, {}
        for key, name in names.items():
            engines[key] = fedflow.Engine(name=name)
            stack.callback(engines[key].close)
            addresses[key] = f"127.0.0.1:{stack.enter_context(run_server(engines[key], grace=0.5))}"
        engines["a"].peers.connect(names["b"], addresses["b"])
        engines["c"].peers.connect(names["b"], addresses["b"])
        engines["b"].peers.connect(names["c"], addresses["c"])
        for i in range(FLOWS):
            engines["a"].start(wait, i, id=f"w{i:03}")
        yield {"names": names, "engines": engines, "addresses": addresses, "wait": wait}


def client(three: dict, key: str) -> ControlClient:
    return ControlClient(three["addresses"][key], deadline=30)


def phases(reports: list[tuple]) -> dict[str, list[tuple]]:
    """The reports grouped by phase, in order, after checking each phase only goes forward."""
    grouped: dict[str, list[tuple]] = {}
    for phase, done, total, unit in reports:
        grouped.setdefault(phase, []).append((done, total, unit))
    for phase, told in grouped.items():
        dones = [done for done, _total, _unit in told]
        assert dones == sorted(dones), (phase, dones)
    return grouped


def test_replicate_reports_exporting_flows_then_sending_bytes_then_answers(three: dict):
    reports: list[tuple] = []
    with client(three, "a") as a:
        answer = a.replicate(three["names"]["b"], lambda *told: reports.append(told))
    assert answer == {"to": three["names"]["b"], "flows": FLOWS}
    grouped = phases(reports)
    assert list(grouped) == ["exporting", "sending"]
    exporting = grouped["exporting"]
    assert len(exporting) >= 10 and exporting[-1] == (FLOWS, FLOWS, "flows")
    done, total, unit = grouped["sending"][-1]
    assert unit == "bytes" and done == total and total > FLOWS * 10


def test_restore_reports_receiving_bytes_then_restoring_flows(three: dict):
    names = three["names"]
    with client(three, "a") as a:
        a.replicate(names["b"])
    reports: list[tuple] = []
    with client(three, "c") as c:
        answer = c.restore(names["b"], names["a"], lambda *told: reports.append(told))
    assert sorted(answer["ids"]) == [f"w{i:03}" for i in range(FLOWS)]
    assert three["engines"]["c"].status("w007") == "suspended"
    grouped = phases(reports)
    assert list(grouped) == ["receiving", "restoring"]
    done, total, unit = grouped["receiving"][-1]
    assert unit == "bytes" and done == total > 0
    assert grouped["restoring"][-1] == (FLOWS, FLOWS, "flows")


def test_handoff_reports_and_moves_every_flow(three: dict):
    names = three["names"]
    reports: list[tuple] = []
    with client(three, "b") as b, client(three, "a") as a:
        a.replicate(names["b"])
        b.restore(names["b"], names["a"])  # b now owns the flows, then hands them to c
        answer = b.handoff(names["c"], lambda *told: reports.append(told))
    assert answer["to"] == names["c"] and len(answer["ids"]) == FLOWS
    assert three["engines"]["b"].status("w001") == "moved"
    assert three["engines"]["c"].status("w001") == "suspended"
    grouped = phases(reports)
    assert list(grouped) == ["exporting", "sending"]
    assert grouped["exporting"][-1][0] == grouped["exporting"][-1][1]


def test_a_failure_ends_the_stream_with_the_same_error_as_the_unary_call(three: dict):
    with client(three, "a") as a:
        with pytest.raises(fedflow.UnknownPeer) as watched:
            a.replicate("nobody", lambda *told: None)
        with pytest.raises(fedflow.UnknownPeer) as unary:
            a.replicate("nobody")
    assert watched.value.peer == unary.value.peer == "nobody"


def test_an_instance_without_the_streaming_form_gets_the_unary_call(three: dict, monkeypatch):
    class Unimplemented(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNIMPLEMENTED

        def details(self) -> str:
            return "Method not found!"

    def old_server(*_args, **_kwargs):
        raise Unimplemented()
    reports: list[tuple] = []
    with client(three, "a") as a:
        monkeypatch.setattr(a._control, "ReplicateWatch", old_server)
        answer = a.replicate(three["names"]["b"], lambda *told: reports.append(told))
    assert answer == {"to": three["names"]["b"], "flows": FLOWS} and reports == []


def test_the_cli_prints_progress_on_stderr_and_one_json_object_on_stdout(three: dict):
    names, addresses = three["names"], three["addresses"]
    env = {EVERY_ENV: "0"}
    out = cli_json(["replicate", "--at", addresses["a"], "--to", names["b"]], env=env)
    assert out == {"to": names["b"], "flows": FLOWS}
    cp = run_cli(["restore", "--at", addresses["c"], "--from", names["b"], "--source", names["a"]], env=env)
    assert cp.returncode == 0 and cp.stdout.count("\n") == 1, describe(cp)
    lines = cp.stderr.splitlines()
    assert "\r" not in cp.stderr and lines, describe(cp)  # not a terminal: plain lines
    assert all(line.startswith("fedflow restore: ") for line in lines), describe(cp)
    assert any(line.startswith("fedflow restore: receiving: ") and "B" in line for line in lines), describe(cp)
    assert lines[-1].startswith(f"fedflow restore: restoring: {FLOWS} of {FLOWS} flows (100%)"), describe(cp)
    assert "done in" in lines[-1], describe(cp)


def test_the_cli_is_quiet_for_work_shorter_than_the_interval(three: dict):
    names, addresses = three["names"], three["addresses"]
    cp = run_cli(["replicate", "--at", addresses["a"], "--to", names["b"]], env={EVERY_ENV: "3600"})
    assert cp.returncode == 0 and cp.stderr == "", describe(cp)


def test_a_terminal_gets_one_redrawn_line_per_phase():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True
    screen = Terminal()
    shown = PhaseProgress("fedflow replicate", every=0, stream=screen)
    for done in (10, 20):
        shown("exporting", done, 20, "flows")
    shown("sending", 2048, 2048, "bytes")
    shown.finish()
    drawn = screen.getvalue()
    assert drawn.count("\n") == 2 and drawn.count("\r") == 5  # two phases, each ended by its last word
    assert "exporting: 20 of 20 flows (100%)" in drawn and "sending: 2.0 KiB of 2.0 KiB (100%)" in drawn


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_interval_is_a_usage_error_naming_the_variable(value: str, monkeypatch):
    monkeypatch.setenv(EVERY_ENV, value)
    with pytest.raises(UsageError, match=EVERY_ENV):
        progress_every()
