"""The gRPC server and transport with a real Engine on 127.0.0.1 port 0:
calls, errors, deadlines, garbage input, replicas, health, reflection, auth, shutdown."""

from __future__ import annotations

import hashlib
import json
import random
import socket
import threading
import uuid
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import fedflow
from fedflow.grpc.codec import pack_call_value, unpack_call_value
from fedflow.grpc.replica_stream import replica_parts
from fedflow.grpc.server import run_server
from fedflow.transport.grpc import GrpcTransport
from fedflow.v1 import fedflow_pb2 as pb
from fedflow.v1 import fedflow_pb2_grpc as pb_grpc

try:
    from support import same
except ImportError:  # tests/ imported as a package
    from tests.support import same

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def hashlib_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Peer:
    """A served engine with a few exposed functions."""

    def __init__(self, engine: fedflow.Engine, port: int) -> None:
        self.engine, self.port = engine, port
        self.address = f"127.0.0.1:{port}"
        self.release = threading.Event()
        self.calls: list = []


@pytest.fixture
def peer() -> Iterator[Peer]:
    engine = fedflow.Engine(name=f"srv-{uuid.uuid4().hex[:6]}")
    with run_server(engine, grace=1.0) as port:
        p = Peer(engine, port)

        def boom(x):
            raise ValueError(f"bad input {x}")

        engine.expose("echo", lambda x: p.calls.append(x) or x)
        engine.expose("boom", boom)
        engine.expose("slow", lambda x: p.release.wait(x) and "released")
        engine.expose("fail", lambda x: fedflow.fail({"why": x}))
        engine.expose("not_plain", lambda x: {1, 2})
        yield p
        p.release.set()
    engine.close()


@pytest.fixture
def transport(peer: Peer) -> Iterator[GrpcTransport]:
    t = GrpcTransport("srv", peer.address, default_deadline=5.0)
    yield t
    t.close()


@pytest.fixture
def channel(peer: Peer) -> Iterator[grpc.Channel]:
    ch = grpc.insecure_channel(peer.address)
    yield ch
    ch.close()


# ---------------------------------------------------------------- calls
def test_call_round_trips_plain_data_exactly(transport: GrpcTransport):
    value = {"big": 2**64 + 1, "neg": -(2**70), "blob": b"\x00\xff", "no": fedflow.fail({"why": b"x"}),
             "z": -0.0, "f": 1.5, "items": [None, True, "ü", [1, 2]], "$tag": 1}
    assert same(transport.call("echo", value, deadline=5, call_id="c1"), value)


def test_long_strs_and_bytes_travel_as_raw_blobs_and_come_back_exact(peer: Peer, transport: GrpcTransport,
                                                                      channel: grpc.Channel):
    value = {"body": "ünïcode " * 9000, "raw": bytes(range(256)) * 300, "short": "hi", "no": fedflow.fail("x" * 5000)}
    assert same(transport.call("echo", value, deadline=5, call_id="big"), value)
    assert same(peer.calls[-1], value)
    data, blobs = pack_call_value(value, "payload")
    assert len(blobs) == 3 and len(data) < 200, "the long parts left the JSON text"
    reply = pb_grpc.PeerServiceStub(channel).Call(pb.CallRequest(fn="echo", payload=data, blobs=blobs), timeout=5)
    assert len(reply.blobs) == 3 and same(unpack_call_value(reply.value, reply.blobs, "result"), value)


def test_a_lone_surrogate_crosses_the_wire_both_ways(peer: Peer, transport: GrpcTransport):
    value = {"short": "\udc80", "long": "\ud800" + "a" * 5000}
    assert transport.call("echo", value, deadline=5, call_id="sur") == value


@pytest.mark.parametrize(("payload", "blobs", "why"), [
    (b'{"$text":1}', [b"only one"], "names blob 1"),
    (b'{"$blob":-1}', [b"x"], "names blob -1"),
    (b'{"$text":"0"}', [b"x"], "names blob '0'"),
    (b'{"$text":0}', [b"\xff\xfe"], "not UTF-8"),
    (b"", [b"x"], "no value naming them"),
    (b'[{"$text":0},{"$text":0}]', [b"x" * 100_000], "where blob 1 of 1 was due"),
    (b"1", [b"unnamed"] * 1000, "1000 blobs came with the value but it names 0"),
    (b'{"$text":0}', [], "no blobs came"),
])
def test_blobs_that_do_not_match_their_value_are_invalid_argument(peer: Peer, channel: grpc.Channel,
                                                                  payload: bytes, blobs: list, why: str):
    stub = pb_grpc.PeerServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Call(pb.CallRequest(fn="echo", payload=payload, blobs=blobs), timeout=5)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and why in caught.value.details()
    assert peer.calls == [], "nothing ran"


def test_an_exposed_function_calling_sys_exit_is_a_remote_error_not_a_hung_call(peer: Peer,
                                                                                   transport: GrpcTransport):
    peer.engine.expose("quit", lambda _x: __import__("sys").exit(3))
    with pytest.raises(fedflow.RemoteError) as caught:
        transport.call("quit", None, deadline=5, call_id="q")
    assert caught.value.remote_type == "SystemExit"
    assert transport.call("echo", 1, deadline=5, call_id="after") == 1, "the server keeps serving"


def test_a_fail_answer_is_a_result_not_an_error(transport: GrpcTransport):
    assert same(transport.call("fail", "stock", deadline=5, call_id="f"), fedflow.fail({"why": "stock"}))


def test_a_repeated_call_id_is_not_run_twice(peer: Peer, transport: GrpcTransport):
    assert transport.call("echo", 1, deadline=5, call_id="same") == 1
    assert transport.call("echo", 1, deadline=5, call_id="same") == 1
    assert peer.calls == [1]


def test_unknown_function_raises_unknown_function_naming_the_peer(transport: GrpcTransport):
    with pytest.raises(fedflow.UnknownFunction) as ei:
        transport.call("nope", 1, deadline=5, call_id="u")
    assert ei.value.peer == "srv" and "nope" in str(ei.value)


def test_a_raising_function_is_a_remote_error_with_its_type_and_message(transport: GrpcTransport):
    with pytest.raises(fedflow.RemoteError) as ei:
        transport.call("boom", 7, deadline=5, call_id="b")
    assert (ei.value.remote_type, ei.value.remote_message) == ("ValueError", "bad input 7")
    assert ei.value.peer == "srv"


def test_an_answer_that_is_not_plain_data_is_a_remote_error(transport: GrpcTransport):
    with pytest.raises(fedflow.RemoteError) as ei:
        transport.call("not_plain", None, deadline=5, call_id="n")
    assert ei.value.remote_type == "UnsupportedValue"


def test_a_slow_function_past_the_deadline_is_peer_unavailable(transport: GrpcTransport):
    with pytest.raises(fedflow.PeerUnavailable, match="deadline"):
        transport.call("slow", 10, deadline=0.5, call_id="s")


def test_a_stopped_server_is_peer_unavailable_within_the_deadline():
    engine = fedflow.Engine(name="gone")
    with run_server(engine, grace=0.1) as port:
        pass
    t = GrpcTransport("gone", f"127.0.0.1:{port}")
    try:
        with pytest.raises(fedflow.PeerUnavailable):
            t.call("echo", 1, deadline=0.8, call_id="x")
        assert t.health(deadline=0.5) is False
    finally:
        t.close()
        engine.close()


def test_a_payload_over_the_message_limit_is_refused_before_sending(transport: GrpcTransport):
    with pytest.raises(fedflow.PeerError, match="limit"):
        transport.call("echo", "x" * (9 * 1024 * 1024), deadline=5, call_id="big")


# ---------------------------------------------------------------- bad input
def _raw(channel: grpc.Channel, service: str, method) -> object:
    path = f"/{service}/{method.name}"
    if method.client_streaming:
        return channel.stream_unary(path, request_serializer=None, response_deserializer=None)
    if method.server_streaming:
        return channel.unary_stream(path, request_serializer=None, response_deserializer=None)
    return channel.unary_unary(path, request_serializer=None, response_deserializer=None)


def _send_raw(channel: grpc.Channel, service: str, method, data: bytes) -> grpc.StatusCode:
    stub = _raw(channel, service, method)
    try:
        if method.client_streaming:
            stub(iter([data, data]), timeout=5)
        elif method.server_streaming:
            list(stub(data, timeout=5))
        else:
            stub(data, timeout=5)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_garbage_bytes_on_every_method_are_refused_cleanly_and_the_server_stays_up(
        peer: Peer, channel: grpc.Channel, transport: GrpcTransport):
    rng = random.Random(1234)
    garbage = [b"\x07" + rng.randbytes(64), b"\xff" * 12, b"\x0a\x05ab", b"\x0f" + rng.randbytes(4000)]
    seen = {}
    for service in pb.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            for data in garbage:
                code = _send_raw(channel, service.full_name, method, data)
                seen[(method.name, data[:4])] = code
    bad = {k: c for k, c in seen.items()
           if c not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL)}
    assert not bad, bad
    assert transport.health(deadline=2) is True
    assert transport.call("echo", "still up", deadline=5, call_id="up") == "still up"


@pytest.mark.parametrize("payload", [b"{not json", b"\xff\xfe", b'{"$bytes": 5}', b"[NaN]", b'{"$fail"'])
def test_a_payload_that_is_not_tagged_json_is_invalid_argument(channel: grpc.Channel, payload: bytes):
    peer_stub = pb_grpc.PeerServiceStub(channel)
    control = pb_grpc.ControlServiceStub(channel)
    attempts = [lambda: peer_stub.Call(pb.CallRequest(fn="echo", payload=payload), timeout=5),
                lambda: control.Start(pb.StartRequest(flow="x", input=payload), timeout=5),
                lambda: control.Resume(pb.ResumeRequest(id="x", value=payload), timeout=5)]
    for attempt in attempts:
        with pytest.raises(grpc.RpcError) as ei:
            attempt()
        assert ei.value.code() is grpc.StatusCode.INVALID_ARGUMENT, ei.value.details()


def test_an_oversized_message_is_resource_exhausted_and_the_server_stays_up(
        channel: grpc.Channel, transport: GrpcTransport):
    stub = pb_grpc.PeerServiceStub(channel)
    with pytest.raises(grpc.RpcError) as ei:
        stub.Call(pb.CallRequest(fn="echo", payload=b"0" * (9 * 1024 * 1024)), timeout=5)
    assert ei.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert transport.call("echo", 1, deadline=5, call_id="after-big") == 1


# ---------------------------------------------------------------- replicas
def _big_store(name: str, flows: int = 3, size: int = 1_500_000) -> fedflow.Engine:
    flow_name = f"repl-{uuid.uuid4().hex[:8]}"
    fedflow.defflow(flow_name, fedflow.node(lambda x: {"x": len(x), "go": fedflow.suspend("go")}))
    engine = fedflow.Engine(name=name)
    for i in range(flows):
        engine.start(flow_name, f"{i}" + "é" * (size // 2), id=f"{name}-{i}")
    return engine


def test_a_multi_mib_replica_pushes_fetches_and_restores_intact(peer: Peer, transport: GrpcTransport):
    source = _big_store(f"big-{uuid.uuid4().hex[:6]}")
    try:
        text = json.dumps(source.export(), separators=(",", ":"))
        assert len(text.encode()) > 4 * 1024 * 1024, "more than grpc's default 4 MiB message"
        assert transport.push_replica(source.name, text, deadline=20) == 3
        assert transport.fetch_replica(source.name, deadline=20) == text
        assert sorted(transport.restore(source.name, [f"{source.name}-1"], deadline=20)) == [f"{source.name}-1"]
        assert peer.engine.status(f"{source.name}-0") == "unknown"
        assert sorted(transport.restore(source.name, None, deadline=20)) == [f"{source.name}-0", f"{source.name}-2"]
        assert peer.engine.resume(f"{source.name}-2", "ok") == {"x": 750_001, "go": "ok"}
    finally:
        source.close()


def _push_raw(channel: grpc.Channel, messages: list) -> grpc.RpcError:
    stub = pb_grpc.PeerServiceStub(channel)
    with pytest.raises(grpc.RpcError) as ei:
        stub.PushReplica(iter(messages), timeout=10)
    return ei.value


def test_a_replica_with_a_bad_checksum_is_invalid_argument_and_nothing_is_stored(
        peer: Peer, channel: grpc.Channel):
    source = _big_store(f"bad-{uuid.uuid4().hex[:6]}", flows=1, size=10_000)
    try:
        parts = list(replica_parts(source.name, json.dumps(source.export()), chunk=4096))
        parts[0].sha256 = hashlib_of(b"something else")
        messages = [pb.PushReplicaRequest(header=parts[0])] + [pb.PushReplicaRequest(chunk=c) for c in parts[1:]]
        err = _push_raw(channel, messages)
        assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and "checksum" in err.details()
        with pytest.raises(fedflow.ReplicaError):
            peer.engine.replica_text(source.name)
    finally:
        source.close()


@pytest.mark.parametrize("damage", ["not_an_export", "chunk_first", "no_source"])
def test_a_malformed_replica_is_invalid_argument_and_nothing_is_stored(
        peer: Peer, channel: grpc.Channel, damage: str):
    data = b'{"hello": "not a store export"}'
    header = pb.ReplicaHeader(source="" if damage == "no_source" else "mal", total_bytes=len(data),
                              sha256=hashlib_of(data))
    messages = [pb.PushReplicaRequest(header=header), pb.PushReplicaRequest(chunk=data)]
    if damage == "chunk_first":
        messages.reverse()
    assert _push_raw(channel, messages).code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(fedflow.ReplicaError):
        peer.engine.replica_text("mal")


def test_fetching_a_replica_the_peer_does_not_hold_is_a_replica_error(channel: grpc.Channel,
                                                                      transport: GrpcTransport):
    with pytest.raises(fedflow.ReplicaError, match="holds no replica"):
        transport.fetch_replica("nobody", deadline=5)
    with pytest.raises(grpc.RpcError) as ei:
        list(pb_grpc.PeerServiceStub(channel).FetchReplica(pb.FetchReplicaRequest(source="nobody"), timeout=5))
    assert ei.value.code() is grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------- health, reflection, shutdown
def test_health_and_reflection_list_the_fedflow_services(channel: grpc.Channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "fedflow.v1.PeerService", "fedflow.v1.ControlService"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status == SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    reply = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=5)))
    names = {s.name for s in reply.list_services_response.service}
    assert {"fedflow.v1.PeerService", "fedflow.v1.ControlService", "grpc.health.v1.Health"} <= names


def test_graceful_stop_goes_not_serving_finishes_in_flight_calls_then_refuses_new_ones():
    engine = fedflow.Engine(name="draining")
    entered, release = threading.Event(), threading.Event()
    engine.expose("wait", lambda x: (entered.set(), release.wait(5))[1] and "finished")
    server = run_server(engine, grace=3.0)
    port = server.__enter__()
    address = f"127.0.0.1:{port}"
    transport = GrpcTransport("draining", address)
    channel = grpc.insecure_channel(address)
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert next(watch).status == SERVING
    box: dict = {}
    caller = threading.Thread(target=lambda: box.setdefault("answer", transport.call(
        "wait", None, deadline=8, call_id="w")))
    caller.start()
    assert entered.wait(10), "the call reached the handler"
    stopper = threading.Thread(target=server.__exit__, args=(None, None, None))
    stopper.start()
    try:
        assert next(watch).status == NOT_SERVING
        watch.cancel()  # an open watch would hold the server for the whole grace period
        release.set()
        caller.join(5)
        assert box.get("answer") == "finished", "the in-flight call finished during the grace period"
        stopper.join(5)
        assert not stopper.is_alive()
        with pytest.raises(fedflow.PeerUnavailable):
            transport.call("wait", None, deadline=0.5, call_id="late")
    finally:
        release.set()
        stopper.join(5)
        channel.close()
        transport.close()
        engine.close()


def test_binding_a_port_in_use_raises_os_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        engine = fedflow.Engine(name="busy")
        with pytest.raises(OSError, match="cannot listen"), run_server(engine, f"127.0.0.1:{port}"):
            pass
        engine.close()


def test_a_second_server_on_the_same_port_is_refused():
    first, second = fedflow.Engine(name="first"), fedflow.Engine(name="second")
    try:
        with run_server(first) as port:
            with pytest.raises(OSError, match="cannot listen"), run_server(second, f"127.0.0.1:{port}"):
                pass
    finally:
        first.close()
        second.close()


# ---------------------------------------------------------------- auth
@pytest.fixture
def guarded() -> Iterator[str]:
    engine = fedflow.Engine(name="guarded")
    engine.expose("echo", lambda x: x)
    with run_server(engine, token="s3cret", grace=0.5) as port:
        yield f"127.0.0.1:{port}"
    engine.close()


def test_a_token_server_refuses_calls_without_the_token(guarded: str):
    for token in (None, "wrong"):
        t = GrpcTransport("g", guarded, token=token)
        try:
            with pytest.raises(fedflow.PeerError, match="--token-file"):
                t.call("echo", 1, deadline=2, call_id="x")
            with pytest.raises(fedflow.PeerError, match="--token-file"):
                t.push_replica("someone", "{}", deadline=2)
            with pytest.raises(fedflow.PeerError, match="--token-file"):
                t.fetch_replica("someone", deadline=2)
            assert t.health(deadline=2) is True, "health checks need no token"
        finally:
            t.close()


def test_a_token_server_answers_calls_with_the_token(guarded: str):
    t = GrpcTransport("g", guarded, token="s3cret")
    try:
        assert t.call("echo", 2**70, deadline=5, call_id="ok") == 2**70
    finally:
        t.close()
