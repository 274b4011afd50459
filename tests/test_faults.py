"""Peer faults over real gRPC on 127.0.0.1: `remote_failover` answers from the next peer,
every time, within the deadline, whatever the first peer does.

The first peer is down (nothing listens), hangs past the deadline, is killed and
restarted mid-call, raises, or answers a bare gRPC error status (UNAVAILABLE,
INTERNAL, RESOURCE_EXHAUSTED, UNAUTHENTICATED, UNKNOWN, DATA_LOSS, UNIMPLEMENTED)
or bytes that are not a CallResponse. Each scenario runs several flows at once,
and each flow's own time is bounded. `FEDFLOW_SOAK=1` runs more flows.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

import fedflow
from fedflow.grpc.server import run_server
from fedflow.remote import FAILOVER_RETRY_WINDOW
from fedflow.transport.grpc import GrpcTransport

try:
    from test_grpc_support import Child
except ImportError:  # tests/ imported as a package
    from tests.test_grpc_support import Child

FLOWS = 12 if os.environ.get("FEDFLOW_SOAK") else 3
DEADLINE = 0.8
SLACK = 1.0  # scheduling, the good peer's answer, thread start-up on a 2-core machine
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
                      during: Callable[[], None] | None = None) -> list[tuple[object, float]]:
    """Run FLOWS failover flows at once over [first, good]; each flow's (answer, seconds)."""
    flow = fedflow.remote_failover([first, "good"], "fn", fedflow.const("local"), deadline=deadline)

    def one(i: int) -> tuple[object, float]:
        began = time.monotonic()
        answer = caller.start(flow, i)
        return answer, time.monotonic() - began

    with futures.ThreadPoolExecutor(FLOWS) as pool:
        running = [pool.submit(one, i) for i in range(FLOWS)]
        if during is not None:
            during()
        return [f.result(timeout=30) for f in running]


def _assert_good(results: list[tuple[object, float]], bound: float) -> None:
    answers = [answer for answer, _ in results]
    assert answers == [f"good:{i}" for i in range(FLOWS)]
    slowest = max(seconds for _, seconds in results)
    assert slowest < bound, f"a flow took {slowest:.2f}s, over {bound:.2f}s"


# ---------------------------------------------------------------- unreachable or slow peers
def test_a_peer_that_is_down(caller: fedflow.Engine):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    caller.peers.add(GrpcTransport("down", f"127.0.0.1:{port}", default_deadline=DEADLINE))
    _assert_good(_failover_answers(caller, "down"), min(FAILOVER_RETRY_WINDOW, DEADLINE) + SLACK)


def test_a_peer_that_hangs_past_the_deadline(caller: fedflow.Engine, stack: contextlib.ExitStack):
    release = threading.Event()
    hung = fedflow.Engine(name=f"hung-{uuid.uuid4().hex[:6]}")
    hung.expose("fn", lambda x: release.wait(30) and "too late")
    stack.callback(hung.close)
    port = stack.enter_context(run_server(hung, grace=0.1))
    stack.callback(release.set)  # runs before the server stops
    caller.peers.add(GrpcTransport("hung", f"127.0.0.1:{port}", default_deadline=DEADLINE))
    _assert_good(_failover_answers(caller, "hung"), DEADLINE + SLACK)


RESTARTABLE = """
import sys, time
import fedflow
from fedflow.grpc.server import serve_forever

engine = fedflow.Engine(name="restartable")
engine.expose("fn", lambda x: time.sleep(5) or "restarted")
serve_forever(engine, f"127.0.0.1:{sys.argv[1]}", grace=0.1, on_ready=lambda port: print(port, flush=True))
"""


def test_a_peer_that_restarts_mid_call(caller: fedflow.Engine, tmp_path: Path):
    child = Child(RESTARTABLE, ["0"], tmp_path / "restartable.log").start()
    replacement = Child(RESTARTABLE, [str(child.port)], tmp_path / "restartable.log")
    try:
        caller.peers.add(GrpcTransport("restarting", child.address, default_deadline=1.5))

        def kill_and_restart() -> None:
            time.sleep(0.3)  # every call is in flight on the peer
            child.kill()
            replacement.start()

        _assert_good(_failover_answers(caller, "restarting", 1.5, during=kill_and_restart), 1.5 + SLACK)
    finally:
        child.kill()
        replacement.kill()


# ---------------------------------------------------------------- peers that answer errors
def test_a_peer_whose_function_raises(caller: fedflow.Engine, stack: contextlib.ExitStack):
    broken = fedflow.Engine(name=f"broken-{uuid.uuid4().hex[:6]}")
    broken.expose("fn", lambda x: 1 / 0)
    stack.callback(broken.close)
    port = stack.enter_context(run_server(broken, grace=0.1))
    caller.peers.add(GrpcTransport("broken", f"127.0.0.1:{port}", default_deadline=DEADLINE))
    _assert_good(_failover_answers(caller, "broken"), SLACK)


def _raw_server(answer: Callable[[bytes, grpc.ServicerContext], bytes]) -> tuple[grpc.Server, int]:
    """A bare gRPC server whose PeerService/Call runs `answer(request_bytes, context)`."""
    handler = grpc.method_handlers_generic_handler("fedflow.v1.PeerService", {
        "Call": grpc.unary_unary_rpc_method_handler(answer)})
    server = grpc.server(futures.ThreadPoolExecutor(4), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
#: A hang guard, not a speed check: a transient error is retried for at most the failover
#: window (bounded by the deadline); what must not happen is waiting out retries at all for
#: the others, which the call count below checks.
ERROR_BOUND = min(FAILOVER_RETRY_WINDOW, DEADLINE) + SLACK + 3.0


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
    _assert_good(_failover_answers(caller, "erring"), ERROR_BOUND)
    if code in TRANSIENT:
        assert len(calls) >= FLOWS, "each flow tried the erring peer"
    elif code != "wrong-service":  # no handler there to count calls
        assert len(calls) == FLOWS, "a permanent error is not retried: one call per flow, then failover"


def test_a_walk_past_every_kind_of_bad_peer_ends_at_the_good_one(caller: fedflow.Engine,
                                                                 stack: contextlib.ExitStack):
    bare = fedflow.Engine(name=f"bare-{uuid.uuid4().hex[:6]}")  # exposes no "fn"
    stack.callback(bare.close)
    port = stack.enter_context(run_server(bare, grace=0.1))
    broken, broken_port = _raw_server(lambda r, c: c.abort(grpc.StatusCode.INTERNAL, "injected"))
    stack.callback(broken.stop, None)
    peers = {"down": "127.0.0.1:1", "no-fn": f"127.0.0.1:{port}", "broken": f"127.0.0.1:{broken_port}"}
    for name, address in peers.items():
        caller.peers.add(GrpcTransport(name, address, default_deadline=DEADLINE))
    flow = fedflow.remote_failover([*peers, "good"], "fn", fedflow.const("local"), deadline=DEADLINE)
    began = time.monotonic()
    assert caller.start(flow, "x") == "good:x"
    assert time.monotonic() - began < min(FAILOVER_RETRY_WINDOW, DEADLINE) + SLACK
