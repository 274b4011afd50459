"""Peer faults over real gRPC on 127.0.0.1: `remote_failover` answers from the next peer,
every time, within the deadline, whatever the first peer does.

The first peer is down (nothing listens), hangs past the deadline, is killed and
restarted mid-call, raises, or answers a bare gRPC error status (UNAVAILABLE,
INTERNAL, RESOURCE_EXHAUSTED, UNAUTHENTICATED, UNKNOWN, DATA_LOSS, UNIMPLEMENTED)
or bytes that are not a CallResponse. Each scenario runs several flows at once
and checks what each flow answered and which calls reached the first peer; a
flow that hangs fails the bounded wait for its answer. `FEDFLOW_SOAK=1` runs
more flows.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

import fedflow
from fedflow.grpc.server import run_server
from fedflow.transport.grpc import GrpcTransport

try:
    from test_grpc_support import Child, wait_until
except ImportError:  # tests/ imported as a package
    from tests.test_grpc_support import Child, wait_until

FLOWS = 12 if os.environ.get("FEDFLOW_SOAK") else 3
DEADLINE = 0.8
ANSWER_WAIT = 30.0  # a hang guard: a flow that waits out a bad peer without a deadline fails here
CALL_PATH = "/fedflow.v1.PeerService/Call"


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as s:
        yield s


@pytest.fixture
def caller(stack: contextlib.ExitStack) -> fedflow.Engine:
    """A caller engine whose peer "good" answers `good:<x>` over gRPC."""
    good = fedflow.Engine(name=f"good-{uuid.uuid4().hex[:6]}")
    good.expose("fn", lambda x: f"good:{x}")
    stack.callback(good.close)
    port = stack.enter_context(run_server(good, grace=0.2))
    engine = fedflow.Engine(name=f"caller-{uuid.uuid4().hex[:6]}", deadline=DEADLINE)
    stack.callback(engine.close)
    engine.peers.add(GrpcTransport("good", f"127.0.0.1:{port}", default_deadline=DEADLINE))
    return engine


def _failover_answers(caller: fedflow.Engine, first: str, deadline: float = DEADLINE,
                      during: Callable[[], None] | None = None) -> list[object]:
    """Run FLOWS failover flows at once over [first, good]; each flow's answer (bounded wait)."""
    flow = fedflow.remote_failover([first, "good"], "fn", fedflow.const("local"), deadline=deadline)
    with futures.ThreadPoolExecutor(FLOWS) as pool:
        running = [pool.submit(caller.start, flow, i) for i in range(FLOWS)]
        if during is not None:
            during()
        return [f.result(timeout=ANSWER_WAIT) for f in running]


def _assert_good(answers: list[object]) -> None:
    assert answers == [f"good:{i}" for i in range(FLOWS)]


# ---------------------------------------------------------------- unreachable or slow peers
def test_a_peer_that_is_down(caller: fedflow.Engine):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    caller.peers.add(GrpcTransport("down", f"127.0.0.1:{port}", default_deadline=DEADLINE))
    _assert_good(_failover_answers(caller, "down"))


def test_a_peer_that_hangs_past_the_deadline(caller: fedflow.Engine, stack: contextlib.ExitStack):
    release = threading.Event()
    entered: list[object] = []
    hung = fedflow.Engine(name=f"hung-{uuid.uuid4().hex[:6]}")
    hung.expose("fn", lambda x: entered.append(x) or (release.wait(ANSWER_WAIT * 2) and "too late"))
    stack.callback(hung.close)
    port = stack.enter_context(run_server(hung, grace=0.1))
    stack.callback(release.set)  # runs before the server stops
    caller.peers.add(GrpcTransport("hung", f"127.0.0.1:{port}", default_deadline=DEADLINE))
    _assert_good(_failover_answers(caller, "hung"))
    assert not release.is_set(), "every flow answered while the hung peer still held its call"
    assert sorted(set(entered)) == list(range(FLOWS)), "each flow's call reached the hung peer first"


RESTARTABLE = """
import os, sys, time, uuid
import fedflow
from fedflow.grpc.server import serve_forever

def fn(x):
    open(os.path.join(sys.argv[2], uuid.uuid4().hex), "w").close()  # this call is in flight here
    time.sleep(5)
    return "restarted"

engine = fedflow.Engine(name="restartable")
engine.expose("fn", fn)
serve_forever(engine, f"127.0.0.1:{sys.argv[1]}", grace=0.1, on_ready=lambda port: print(port, flush=True))
"""


def test_a_peer_that_restarts_mid_call(caller: fedflow.Engine, tmp_path: Path):
    in_flight, after_restart = tmp_path / "in-flight", tmp_path / "after-restart"
    in_flight.mkdir()
    after_restart.mkdir()
    child = Child(RESTARTABLE, ["0", str(in_flight)], tmp_path / "restartable.log").start()
    replacement = Child(RESTARTABLE, [str(child.port), str(after_restart)], tmp_path / "restartable.log")
    try:
        caller.peers.add(GrpcTransport("restarting", child.address, default_deadline=1.5))

        def kill_and_restart() -> None:
            wait_until(lambda: len(list(in_flight.iterdir())) == FLOWS, 20, "every call in flight on the peer")
            child.kill()
            replacement.start()

        _assert_good(_failover_answers(caller, "restarting", 1.5, during=kill_and_restart))
        assert len(list(in_flight.iterdir())) == FLOWS, "the killed peer held one call per flow"
    finally:
        child.kill()
        replacement.kill()


# ---------------------------------------------------------------- peers that answer errors
def test_a_peer_whose_function_raises(caller: fedflow.Engine, stack: contextlib.ExitStack):
    calls: list[object] = []
    broken = fedflow.Engine(name=f"broken-{uuid.uuid4().hex[:6]}")
    broken.expose("fn", lambda x: calls.append(x) or 1 / 0)
    stack.callback(broken.close)
    port = stack.enter_context(run_server(broken, grace=0.1))
    caller.peers.add(GrpcTransport("broken", f"127.0.0.1:{port}", default_deadline=DEADLINE))
    _assert_good(_failover_answers(caller, "broken"))
    assert sorted(calls) == list(range(FLOWS)), "a raising function is not retried: one call per flow, then failover"


def _raw_server(answer: Callable[[bytes, grpc.ServicerContext], bytes]) -> tuple[grpc.Server, int]:
    """A bare gRPC server whose PeerService/Call runs `answer(request_bytes, context)`."""
    handler = grpc.method_handlers_generic_handler("fedflow.v1.PeerService", {
        "Call": grpc.unary_unary_rpc_method_handler(answer)})
    server = grpc.server(futures.ThreadPoolExecutor(4), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL,
                                  grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS,
                                  grpc.StatusCode.INVALID_ARGUMENT, "garbage", "wrong-service"],
                         ids=lambda c: getattr(c, "name", c))
def test_a_peer_that_answers_an_error(caller: fedflow.Engine, stack: contextlib.ExitStack, code):
    calls: list[bytes] = []

    def answer(request: bytes, context: grpc.ServicerContext) -> bytes:
        calls.append(request)
        if code == "garbage":
            return b"\xff\x00 not a CallResponse"
        context.abort(code, f"injected {code.name}")

    if code == "wrong-service":
        server = grpc.server(futures.ThreadPoolExecutor(2))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
    else:
        server, port = _raw_server(answer)
    stack.callback(server.stop, None)
    caller.peers.add(GrpcTransport("erring", f"127.0.0.1:{port}", default_deadline=DEADLINE))
    _assert_good(_failover_answers(caller, "erring"))
    if code in TRANSIENT:
        assert len(calls) >= FLOWS, "each flow tried the erring peer"
    elif code != "wrong-service":  # no handler there to count calls
        assert len(calls) == FLOWS, "a permanent error is not retried: one call per flow, then failover"


def test_a_walk_past_every_kind_of_bad_peer_ends_at_the_good_one(caller: fedflow.Engine,
                                                                 stack: contextlib.ExitStack):
    bare = fedflow.Engine(name=f"bare-{uuid.uuid4().hex[:6]}")  # exposes no "fn"
    stack.callback(bare.close)
    port = stack.enter_context(run_server(bare, grace=0.1))
    broken_calls: list[bytes] = []
    broken, broken_port = _raw_server(lambda r, c: broken_calls.append(r) or c.abort(grpc.StatusCode.INTERNAL,
                                                                                     "injected"))
    stack.callback(broken.stop, None)
    peers = {"down": "127.0.0.1:1", "no-fn": f"127.0.0.1:{port}", "broken": f"127.0.0.1:{broken_port}"}
    for name, address in peers.items():
        caller.peers.add(GrpcTransport(name, address, default_deadline=DEADLINE))
    flow = fedflow.remote_failover([*peers, "good"], "fn", fedflow.const("local"), deadline=DEADLINE)
    assert caller.start(flow, "x") == "good:x"
    assert len(broken_calls) == 1, "the walk passed the broken peer once, without retrying its permanent error"
