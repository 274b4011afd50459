"""Deadlines and connections: a nested peer call never outlives the call it serves, and a
`fedflow serve` answers calls while recovery runs (health NOT_SERVING), so a recovered flow
that calls its own instance finishes instead of waiting out its deadline."""

from __future__ import annotations

import contextlib
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fedflow
from fedflow import deadlines
from fedflow.grpc import options
from fedflow.grpc.server import run_server
from fedflow.testing.serve import Serves
from fedflow.transport.grpc import GrpcTransport


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as opened:
        yield opened


def _served(stack: contextlib.ExitStack, name: str) -> tuple[fedflow.Engine, str]:
    engine = stack.enter_context(fedflow.Engine(name=name))
    port = stack.enter_context(run_server(engine, "127.0.0.1:0"))
    return engine, f"127.0.0.1:{port}"


def test_a_nested_peer_call_gets_no_more_time_than_its_caller_has_left(stack: contextlib.ExitStack) -> None:
    # Given b relays to c with a long deadline of its own, and c reports the time it was given
    b, _b_address = _served(stack, "b")
    c, c_address = _served(stack, "c")
    c.expose("time_left", lambda _x: deadlines.remaining())
    b.peers.connect("c", c_address)
    b.expose("relay", lambda x: b.call_peer("c", "time_left", x, deadline=60.0, call_id=""))
    caller = stack.enter_context(contextlib.closing(GrpcTransport("b", _b_address)))
    # When a calls b with 3 seconds
    left = caller.call("relay", None, deadline=3.0, call_id="")
    # Then c was given at most what b's caller had left, not b's 60 seconds
    assert 0 < left <= 3.0


def test_a_served_call_without_a_deadline_bounds_nothing() -> None:
    assert deadlines.remaining() is None
    with deadlines.within(None):
        assert deadlines.bounded(60.0) == 60.0
    with deadlines.within(5.0), deadlines.within(50.0):
        assert deadlines.bounded(60.0) <= 5.0, "the outer, sooner end still holds"


def test_connections_are_kept_alive_and_aged_on_both_ends() -> None:
    client = dict(options.channel_options())
    server = dict(options.server_options())
    assert client["grpc.keepalive_time_ms"] == server["grpc.keepalive_time_ms"] > 0
    assert client["grpc.keepalive_permit_without_calls"] == 1
    assert server["grpc.http2.min_ping_interval_without_data_ms"] <= client["grpc.keepalive_time_ms"], \
        "a server never refuses the pings its clients send"
    assert server["grpc.max_connection_age_ms"] > server["grpc.max_connection_age_grace_ms"] > 0


SELF_CALLER = textwrap.dedent('''
    import os, sys, time
    import fedflow
    from fedflow import remote_node, sequence, step

    def register(engine):
        listen = sys.argv[sys.argv.index("--listen") + 1]
        engine.peers.connect("self", listen)
        engine.expose("inc", lambda n: n + 1)
        hold = os.environ["HOLD_FILE"]

        def held(n):
            with open(hold + ".entered", "a") as fh:
                fh.write("entered\\n")
            while os.path.exists(hold):
                time.sleep(0.05)
            return n
        fedflow.defflow("calls_itself", sequence(step(held), remote_node("self", "inc")))
''')


def _wait_for(path: Path, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {path}")
        time.sleep(0.05)


@pytest.mark.slow
def test_a_recovered_flow_that_calls_its_own_instance_finishes(tmp_path: Path) -> None:
    # Given a flow left running by a kill -9, whose next step calls its own instance
    module = tmp_path / "self_caller.py"
    module.write_text(SELF_CALLER)
    hold = tmp_path / "hold"
    hold.touch()
    serves = Serves(tmp_path)
    try:
        server = serves.start("selfish", load=[module], env={"HOLD_FILE": str(hold)}, args=["--deadline", "3"])
        starter = threading.Thread(target=_start, args=(server,))
        starter.start()
        _wait_for(Path(f"{hold}.entered"))
        server.kill()
        starter.join(timeout=30)
        hold.unlink()
        # When it restarts (ready once health says SERVING, after recovery)
        server.start()
        # Then recovery finished the flow through its own port, without waiting out the deadline
        assert server.client.status("r-1")["status"] == "done", server.log()
        assert server.client.result("r-1")["result"] == 42
        assert "recovered flow r-1: now done" in server.log()
    finally:
        serves.stop_all()


def _start(server) -> None:
    with contextlib.suppress(Exception):  # the serve is killed under this call
        server.client.start("calls_itself", 41, flow_id="r-1")
