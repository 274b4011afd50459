"""Limits on a real server (127.0.0.1, port 0): message size on both ends, concurrent
RPCs, replica size. Past each: RESOURCE_EXHAUSTED, raised as an error that names
the limit and the flag that raises it; the server stays up and stores nothing."""

from __future__ import annotations

import doctest
import json
import threading
import uuid
from collections.abc import Iterator

import grpc
import pytest

import fedflow
from fedflow import limits as limits_module
from fedflow.client import ControlClient
from fedflow.grpc import security
from fedflow.grpc.server import run_server
from fedflow.grpc.status import error_for, is_transient
from fedflow.limits import LimitExceeded, Limits
from fedflow.transport.grpc import GrpcTransport
from fedflow.v1 import fedflow_pb2 as pb
from fedflow.v1 import fedflow_pb2_grpc as pb_grpc

try:
    from test_grpc_support import wait_until
except ImportError:  # tests/ imported as a package
    from tests.test_grpc_support import wait_until

SMALL = Limits(max_message_bytes=128 * 1024, max_concurrent_rpcs=2, max_replica_bytes=20_000)
BIG = "x" * 200_000


@pytest.fixture
def engine() -> Iterator[fedflow.Engine]:
    e = fedflow.Engine(name=f"lim-{uuid.uuid4().hex[:6]}")
    e.expose("echo", lambda x: x)
    e.expose("big", lambda n: "y" * n)
    yield e
    e.close()


@pytest.fixture
def small_server(engine: fedflow.Engine) -> Iterator[str]:
    with run_server(engine, limits=SMALL, grace=0.2) as port:
        yield f"127.0.0.1:{port}"


def test_the_docstring_examples_hold():
    for module in (limits_module, security):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0


def test_limits_must_be_positive_ints():
    for bad in ({"max_message_bytes": 1000}, {"max_concurrent_rpcs": 0}, {"max_replica_bytes": 1.5},
                {"max_concurrent_rpcs": True}):
        with pytest.raises(ValueError, match="must be an int"):
            Limits(**bad)


def test_a_request_over_the_servers_message_limit_names_the_flag_and_is_not_retried(small_server: str):
    transport = GrpcTransport("small", small_server, default_deadline=5)
    try:
        with pytest.raises(LimitExceeded, match="--max-message-bytes") as ei:
            transport.call("echo", BIG, deadline=5, call_id="big")
        assert ei.value.limit == "max_message_bytes" and ei.value.peer == "small"
        assert not is_transient(ei.value.__cause__)
        assert transport.call("echo", "small", deadline=5, call_id="after") == "small", "the server is still up"
    finally:
        transport.close()


def test_a_payload_over_the_clients_own_limit_is_refused_before_sending(engine: fedflow.Engine):
    with run_server(engine, grace=0.2) as port:
        transport = GrpcTransport("p", f"127.0.0.1:{port}", limits=SMALL)
        try:
            with pytest.raises(LimitExceeded, match=r"payload for echo.*--max-message-bytes"):
                transport.call("echo", BIG, deadline=5, call_id="x")
        finally:
            transport.close()


def test_an_answer_over_the_servers_message_limit_is_refused_by_the_server(small_server: str):
    with ControlClient(small_server, deadline=5) as client:
        with pytest.raises(LimitExceeded, match=r"answer to Call.*--max-message-bytes") as ei:
            client.call("big", 200_000)
        assert ei.value.limit == "max_message_bytes"
        assert client.call("big", 10) == {"result": "y" * 10}


def test_an_answer_over_the_clients_message_limit_is_refused_by_the_client(engine: fedflow.Engine):
    with run_server(engine, grace=0.2) as port:
        with ControlClient(f"127.0.0.1:{port}", limits=SMALL, deadline=5) as client:
            with pytest.raises(LimitExceeded, match="--max-message-bytes"):
                client.call("big", 200_000)


def test_one_call_past_the_concurrency_limit_is_resource_exhausted_and_names_the_flag(engine: fedflow.Engine):
    release, inside = threading.Event(), []
    engine.expose("hold", lambda x: inside.append(x) or release.wait(10))
    with run_server(engine, limits=SMALL, grace=0.5) as port:
        address = f"127.0.0.1:{port}"
        holders = [threading.Thread(target=_call_quietly, args=(address, i)) for i in range(2)]
        for thread in holders:
            thread.start()
        try:
            wait_until(lambda: len(inside) == 2, 10, "two calls in flight")
            channel = grpc.insecure_channel(address)
            with pytest.raises(grpc.RpcError) as ei:
                pb_grpc.ControlServiceStub(channel).List(pb.ListRequest(), timeout=5)
            channel.close()
            assert ei.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            err = error_for(ei.value, "busy")
            assert isinstance(err, fedflow.PeerUnavailable) and "--max-concurrent-rpcs" in str(err)
        finally:
            release.set()
            for thread in holders:
                thread.join(10)
        with ControlClient(address, deadline=5) as client:
            assert client.list() == {"flows": []}, "calls are accepted again once the others finish"


def _call_quietly(address: str, i: int) -> None:
    with ControlClient(address, deadline=10) as client:
        client.call("hold", i)


def _store_text(name: str, size: int) -> str:
    flow = f"lim-wait-{uuid.uuid4().hex[:6]}"
    fedflow.defflow(flow, fedflow.node(lambda x: fedflow.suspend("go")))
    with fedflow.Engine(name=name) as source:
        source.start(flow, "z" * size, id=f"{name}-1")
        return json.dumps(source.export(), separators=(",", ":"))


def test_a_replica_over_the_servers_cap_is_refused_from_its_header_and_not_stored(
        engine: fedflow.Engine, small_server: str):
    transport = GrpcTransport("small", small_server)
    try:
        with pytest.raises(LimitExceeded, match="--max-replica-bytes") as ei:
            transport.push_replica("src", _store_text("src", 50_000), deadline=5)
        assert ei.value.limit == "max_replica_bytes"
        with pytest.raises(fedflow.ReplicaError):
            engine.replica_text("src")
        assert transport.push_replica("src", _store_text("src", 1_000), deadline=5) == 1
    finally:
        transport.close()


def test_a_fetched_replica_over_the_clients_cap_is_refused(engine: fedflow.Engine):
    engine.accept_replica("src", _store_text("src", 50_000))
    with run_server(engine, grace=0.2) as port:
        transport = GrpcTransport("p", f"127.0.0.1:{port}", limits=SMALL)
        try:
            with pytest.raises(LimitExceeded, match=r"replica of 'src'.*--max-replica-bytes"):
                transport.fetch_replica("src", deadline=5)
        finally:
            transport.close()


def test_replicas_stream_in_chunks_that_fit_a_small_message_limit(engine: fedflow.Engine):
    small = Limits(max_message_bytes=64 * 1024, max_replica_bytes=10_000_000)
    text = _store_text("chunky", 1_000_000)
    with run_server(engine, limits=small, grace=0.2) as port:
        transport = GrpcTransport("p", f"127.0.0.1:{port}", limits=small)
        try:
            assert transport.push_replica("chunky", text, deadline=10) == 1
            assert transport.fetch_replica("chunky", deadline=10) == text
        finally:
            transport.close()
