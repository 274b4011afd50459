"""Federation scenarios run over both transports (in-process and real gRPC), plus
real-process cases: a peer process killed mid-call, `serve_forever` and SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import fedflow
from fedflow import const, node, remote_failover, remote_node, sequence, step, suspend, try_catch
from fedflow.grpc.server import run_server

try:
    from support import unique
except ImportError:  # tests/ imported as a package
    from tests.support import unique

ROOT = Path(__file__).resolve().parent.parent
Link = Callable[[fedflow.Engine, str, fedflow.Engine], None]


@pytest.fixture(params=["local", "grpc"])
def link(request: pytest.FixtureRequest) -> Iterator[Link]:
    """link(caller, name, callee): make `callee` reachable from `caller` as peer `name`."""
    with contextlib.ExitStack() as stack:
        ports: dict[int, int] = {}

        def connect(caller: fedflow.Engine, name: str, callee: fedflow.Engine) -> None:
            if request.param == "local":
                caller.peers.register(name, callee)
                return
            if id(callee) not in ports:
                ports[id(callee)] = stack.enter_context(run_server(callee, grace=0.5))
            caller.peers.connect(name, f"127.0.0.1:{ports[id(callee)]}")

        yield connect


@pytest.fixture
def engines() -> Iterator[Callable[[str], fedflow.Engine]]:
    made: list[fedflow.Engine] = []

    def make(prefix: str = "fed") -> fedflow.Engine:
        made.append(fedflow.Engine(name=unique(prefix), deadline=5.0))
        return made[-1]

    yield make
    for engine in reversed(made):
        engine.close()


def test_remote_node_round_trips_exact_values(engines, link: Link):
    caller, callee = engines("caller"), engines("callee")
    seen: list = []
    callee.expose("echo", lambda x: seen.append(x) or x)
    link(caller, "svc", callee)
    value = {"big": 2**64 + 1, "blob": b"\x00\xff", "no": fedflow.fail("x"), "pair": (1, 2), "f": -0.0}
    out = caller.start(remote_node("svc", "echo"), value)
    assert out == dict(value, pair=[1, 2]) and str(out["f"]) == "-0.0"
    assert seen == [dict(value, pair=[1, 2])]


def test_a_raising_peer_function_is_a_remote_error(engines, link: Link):
    caller, callee = engines(), engines()

    def broken(x):
        raise LookupError("no such order")

    callee.expose("broken", broken)
    link(caller, "svc", callee)
    flow = try_catch(remote_node("svc", "broken"),
                     lambda e: [type(e).__name__, e.remote_type, e.remote_message, e.peer])
    assert caller.start(flow, None) == ["RemoteError", "LookupError", "no such order", "svc"]


def test_unknown_function_and_unknown_peer(engines, link: Link):
    caller, callee = engines(), engines()
    link(caller, "svc", callee)
    flow = try_catch(remote_node("svc", "private"), lambda e: [type(e).__name__, e.peer])
    assert caller.start(flow, None) == ["UnknownFunction", "svc"]
    flow = try_catch(remote_node("nowhere", "f"), lambda e: type(e).__name__)
    assert caller.start(flow, None) == "UnknownPeer"


def test_failover_moves_past_peer_errors_but_not_past_a_fail_answer(engines, link: Link):
    caller, empty, raising, failing, good = engines(), engines(), engines(), engines(), engines()
    raising.expose("fn", lambda x: 1 / 0)
    failing.expose("fn", lambda x: fedflow.fail(f"declined {x}"))
    good.expose("fn", lambda x: f"good {x}")
    for name, engine in [("empty", empty), ("raising", raising), ("failing", failing), ("good", good)]:
        link(caller, name, engine)
    assert caller.start(remote_failover(["empty", "raising", "good"], "fn", const("local")), 1) == "good 1"
    assert caller.start(remote_failover(["failing", "good"], "fn", const("local")), 2) == fedflow.fail("declined 2")
    assert caller.start(remote_failover(["empty", "raising"], "fn", const("local")), 3) == "local"


def test_a_completed_remote_call_is_journaled_and_not_made_again_on_resume(engines, link: Link):
    caller, callee = engines(), engines()
    calls: list = []
    callee.expose("charge", lambda x: calls.append(x) or {"receipt": x})
    link(caller, "svc", callee)
    flow = sequence(remote_node("svc", "charge"), node(lambda r: {"r": r, "ack": suspend("ack")}))
    waiting = caller.start(flow, 10)
    assert caller.resume(waiting.id, "yes") == {"r": {"receipt": 10}, "ack": "yes"}
    assert calls == [10]


@pytest.fixture
def waiting_flow() -> tuple[str, list]:
    name, steps = unique("fed-wait"), []
    fedflow.defflow(name, sequence(step(lambda x: steps.append(x) or f"prepared {x}"),
                                   node(lambda p: {"prepared": p, "go": suspend("go")})))
    return name, steps


def test_replicate_then_restore_elsewhere_and_resume(engines, link: Link, waiting_flow):
    name, steps = waiting_flow
    a, holder, c = engines("a"), engines("holder"), engines("c")
    link(a, "holder", holder)
    link(c, "holder", holder)
    s = a.start(name, 1)
    assert a.replicate_to("holder") == 1
    assert holder.status(s.id) == "unknown"
    assert c.restore_from("holder", source=a.name) == [s.id]
    assert c.resume(s.id, "now") == {"prepared": "prepared 1", "go": "now"}
    assert steps == [1]


def test_restore_from_defaults_to_the_engines_own_replica(engines, link: Link, waiting_flow):
    name, _ = waiting_flow
    a, holder = engines("self"), engines("holder")
    link(a, "holder", holder)
    s = a.start(name, "x")
    a.replicate_to("holder")
    reborn = fedflow.Engine(name=a.name)
    try:
        link(reborn, "holder", holder)
        assert reborn.restore_from("holder") == [s.id]
        assert reborn.resume(s.id, "back") == {"prepared": "prepared x", "go": "back"}
    finally:
        reborn.close()


def test_handoff_moves_flows_with_their_journal(engines, link: Link, waiting_flow):
    name, steps = waiting_flow
    a, b = engines("from"), engines("to")
    link(a, "target", b)
    s1, s2 = a.start(name, 1), a.start(name, 2)
    assert sorted(a.handoff_to("target")) == sorted([s1.id, s2.id])
    assert {(i, st) for i, st in a.list()} == {(s1.id, "moved"), (s2.id, "moved")}
    with pytest.raises(fedflow.FlowMoved) as ei:
        a.resume(s1.id, "x")
    assert ei.value.owner == "target"
    assert b.resume(s2.id, "on b") == {"prepared": "prepared 2", "go": "on b"}
    assert sorted(steps) == [1, 2], "journaled steps are not re-run after the move"


# ---------------------------------------------------------------- gRPC only
def test_failover_moves_past_a_peer_that_is_not_listening(engines, link: Link):
    caller, good = engines(), engines()
    good.expose("fn", lambda x: x * 2)
    caller.peers.connect("down", "127.0.0.1:1")
    link(caller, "good", good)
    assert caller.start(remote_failover(["down", "good"], "fn", const("local"), deadline=0.5), 4) == 8


CHILD = """
import logging, sys, time
import fedflow
from fedflow.grpc.server import serve_forever

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
engine = fedflow.Engine(name="child")
engine.expose("echo", lambda x: x)
engine.expose("hang", lambda x: print("in hang", flush=True) or time.sleep(60))
serve_forever(engine, "127.0.0.1:0", grace=1.0, on_ready=lambda port: print(port, flush=True))
"""


@pytest.fixture
def child(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """A peer in its own process (serve_forever); yields (process, address, log path)."""
    log = tmp_path / "child.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL, env=env, cwd=tmp_path)
    try:
        line = _read_line(proc, timeout=20)
        assert line.strip().isdigit(), f"child did not report a port: {line!r}; log: {log.read_text()}"
        yield proc, f"127.0.0.1:{line.strip()}", log
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline().decode()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0] if box else ""


def test_a_peer_process_killed_mid_call_fails_over_to_the_local_node(engines, child):
    proc, address, _ = child
    caller = engines("survivor")
    caller.peers.connect("child", address)
    assert caller.start(remote_node("child", "echo"), 2**65) == 2**65
    box: dict = {}
    flow = remote_failover(["child"], "hang", const("local answer"), deadline=2.0)
    runner = threading.Thread(target=lambda: box.setdefault("out", caller.start(flow, None)))
    runner.start()
    assert _read_line(proc, timeout=10).strip() == "in hang", "the call is in flight on the child"
    proc.send_signal(signal.SIGKILL)
    runner.join(10)
    assert box.get("out") == "local answer"


def test_serve_forever_logs_and_stops_cleanly_on_sigterm(child):
    proc, address, log = child
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    text = log.read_text()
    assert f"serving child on {address}" in text, text
