"""Hung peer functions do not starve the control verbs: each service has its own slots."""

from __future__ import annotations

import contextlib
import threading

import grpc
import pytest

import fedflow
from fedflow.client import ControlClient
from fedflow.grpc import server
from fedflow.grpc.codec import pack, unpack
from fedflow.grpc.servicers import Gate
from fedflow.grpc.status import error_for, is_transient
from fedflow.v1 import fedflow_pb2 as pb
from fedflow.v1 import fedflow_pb2_grpc as pb_grpc


class _Hang:
    """An exposed function that holds its worker until `release` is set; `all_in` is set once
    every peer worker (`server.WORKERS`) is inside it."""

    def __init__(self) -> None:
        self.release, self.all_in = threading.Event(), threading.Event()
        self.inside = 0
        self._lock = threading.Lock()

    def __call__(self, _x: object) -> str:
        with self._lock:
            self.inside += 1
            if self.inside == server.WORKERS:
                self.all_in.set()
        self.release.wait(30)
        return "released"


def test_control_verbs_answer_while_every_peer_worker_is_stuck() -> None:
    hang = _Hang()
    engine = fedflow.Engine(name="pools")
    engine.expose("hang", hang)
    callers: list[threading.Thread] = []
    try:
        with server.run_server(engine, "127.0.0.1:0") as port:
            address = f"127.0.0.1:{port}"

            def call_and_hang() -> None:
                with ControlClient(address, deadline=30) as client:
                    try:
                        client.call("hang", None)
                    except fedflow.FedflowError:
                        pass

            callers = [threading.Thread(target=call_and_hang) for _ in range(server.WORKERS)]
            for caller in callers:
                caller.start()
            assert hang.all_in.wait(20), "every peer worker should be inside the hung function"
            with ControlClient(address, deadline=5) as client:
                assert client.status("nobody") == {"id": "nobody", "status": "unknown"}
                assert client.list() == {"flows": []}
            hang.release.set()
    finally:
        hang.release.set()
        for caller in callers:
            caller.join(30)
        engine.close()


class _Context:
    """The two ServicerContext methods a Gate uses; abort raises like grpcio's does."""

    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining
        self.active = True
        self.aborted: tuple[grpc.StatusCode, str] | None = None
        self.waiting = threading.Event()  # set once a Gate has asked whether the call is still wanted

    def time_remaining(self) -> float | None:
        return self.remaining

    def is_active(self) -> bool:
        self.waiting.set()
        return self.active

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise RuntimeError("aborted")


def test_a_full_gate_makes_a_call_wait_for_the_next_free_slot() -> None:
    gate = Gate("PeerService", 1)
    entered = threading.Event()
    with gate.slot(_Context(5.0)):
        waiter = threading.Thread(target=lambda: _enter(gate, entered))
        waiter.start()
        assert not entered.wait(0.2), "the second call must wait while the only slot is held"
    assert entered.wait(5), "the second call runs once the slot is free"
    waiter.join(5)


def _enter(gate: Gate, entered: threading.Event) -> None:
    with gate.slot(_Context(5.0)):
        entered.set()


def test_a_call_whose_deadline_passes_while_waiting_gets_resource_exhausted_and_frees_nothing() -> None:
    gate = Gate("PeerService", 1)
    late = _Context(0.05)
    with gate.slot(_Context(5.0)):
        with pytest.raises(RuntimeError, match="aborted"):
            with gate.slot(late):
                pytest.fail("no slot should have been given")
    assert late.aborted is not None
    code, details = late.aborted
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED and "all 1 PeerService workers are busy" in details
    with gate.slot(_Context(0.05)):  # the holder's release left exactly one slot, not two
        other = _Context(0.05)
        with pytest.raises(RuntimeError):
            with gate.slot(other):
                pass
        assert other.aborted is not None


def test_a_busy_peer_service_answers_resource_exhausted_which_callers_treat_as_transient() -> None:
    engine = fedflow.Engine(name="busy")
    hang = _Hang()
    engine.expose("hang", hang)
    try:
        with server.run_server(engine, "127.0.0.1:0") as port, \
                grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.PeerServiceStub(channel)
            calls = [stub.Call.future(pb.CallRequest(fn="hang"), timeout=30) for _ in range(server.WORKERS)]
            assert hang.all_in.wait(20), "every peer slot should be taken by a hung call"
            with pytest.raises(grpc.RpcError) as caught:
                stub.Call(pb.CallRequest(fn="hang"), timeout=10)
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert f"all {server.WORKERS} PeerService workers are busy" in caught.value.details()
            assert is_transient(caught.value), "callers retry it within their deadline"
            assert hang.inside == server.WORKERS, "the refused call never ran"
            assert isinstance(error_for(caught.value, "busy"), fedflow.PeerUnavailable)
            with fedflow.Engine(name="caller") as caller:
                caller.peers.connect("busy", f"127.0.0.1:{port}")
                with pytest.raises(fedflow.PeerUnavailable, match="busy"):  # given up on, not timed out
                    caller.call_peer("busy", "hang", None, deadline=5, retry_window=1.5)
            with ControlClient(f"127.0.0.1:{port}", deadline=5) as client:
                assert client.status("nobody")["status"] == "unknown"
            hang.release.set()
            assert all(call.result(timeout=30).WhichOneof("outcome") == "value" for call in calls)
    finally:
        hang.release.set()
        engine.close()


def test_a_waiting_call_whose_client_left_never_runs() -> None:
    gate = Gate("PeerService", 1)
    gone = _Context(5.0)
    ran: list[bool] = []

    def wait_then_run() -> None:
        with contextlib.suppress(RuntimeError), gate.slot(gone):
            ran.append(True)

    with gate.slot(_Context(5.0)):
        waiter = threading.Thread(target=wait_then_run)
        waiter.start()
        assert gone.waiting.wait(5)
        gone.active = False  # the client cancelled while waiting
    waiter.join(5)
    assert ran == [] and gone.aborted is not None and gone.aborted[0] is grpc.StatusCode.CANCELLED


def test_closing_a_gate_drops_its_waiting_calls() -> None:
    gate = Gate("ControlService", 1)
    waiting = _Context(None)
    waiter = threading.Thread(target=lambda: _enter_quietly(gate, waiting))
    with gate.slot(_Context(5.0)):
        waiter.start()
        assert waiting.waiting.wait(5)
        gate.close()
        waiter.join(5)
    assert waiting.aborted is not None and waiting.aborted[0] is grpc.StatusCode.CANCELLED
    assert "stopping" in waiting.aborted[1]


def _enter_quietly(gate: Gate, context: _Context) -> None:
    with contextlib.suppress(RuntimeError), gate.slot(context):
        pytest.fail("a closed gate runs nothing more")


def test_an_idle_replica_upload_does_not_hold_a_peer_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "WORKERS", 1)  # one peer slot: an upload holding it would block the call
    engine = fedflow.Engine(name="uploads")
    engine.expose("echo", lambda x: x)
    idle, header_sent = threading.Event(), threading.Event()

    def stalled_upload():
        yield pb.PushReplicaRequest(header=pb.ReplicaHeader(source="x", total_bytes=10, sha256="0" * 64))
        header_sent.set()
        idle.wait(20)  # the header is in, the bytes never come

    try:
        with server.run_server(engine, "127.0.0.1:0", grace=0.5) as port, \
                grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.PeerServiceStub(channel)
            upload = stub.PushReplica.future(stalled_upload(), timeout=20)
            assert header_sent.wait(10)
            answer = stub.Call(pb.CallRequest(fn="echo", payload=pack("hi")), timeout=5)
            assert unpack(answer.value) == "hi"
            upload.cancel()
    finally:
        idle.set()
        engine.close()
