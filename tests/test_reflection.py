"""Server reflection as grpcurl uses it: served as v1 and v1alpha, describing the fedflow services,
health and itself; with a token, only the open health service is described without it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2 as r

import fedflow
from fedflow.grpc.server import run_server

try:
    from support import unique
except ImportError:  # tests/ imported as a package
    from tests.support import unique

TOKEN = "reflect-t0ken"
VERSIONS = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")


@pytest.fixture(params=[None, TOKEN], ids=["open", "token"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[grpc.Channel, str | None]]:
    with contextlib.ExitStack() as stack:
        engine = stack.enter_context(fedflow.Engine(name=unique("reflect")))
        port = stack.enter_context(run_server(engine, grace=0.5, token=request.param))
        yield stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{port}")), request.param


def ask(channel: grpc.Channel, service: str, req: r.ServerReflectionRequest,
        token: str | None = None) -> r.ServerReflectionResponse:
    """One reflection request on `service` (the messages are the same in v1 and v1alpha)."""
    stub = channel.stream_stream(f"/{service}/ServerReflectionInfo",
                                 request_serializer=r.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=r.ServerReflectionResponse.FromString)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    (reply,) = list(stub(iter([req]), timeout=10, metadata=metadata))
    return reply


def described(reply: r.ServerReflectionResponse) -> set[str]:
    """Fully qualified names of the services in a file_descriptor_response."""
    names = set()
    for raw in reply.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        names |= {f"{proto.package}.{service.name}" for service in proto.service}
    return names


@pytest.mark.parametrize("version", VERSIONS)
def test_both_reflection_versions_list_and_describe_every_service(served: tuple[grpc.Channel, str | None],
                                                                  version: str) -> None:
    channel, token = served

    listed = ask(channel, version, r.ServerReflectionRequest(list_services=""), token)

    names = {s.name for s in listed.list_services_response.service}
    assert names == {"fedflow.v1.ControlService", "fedflow.v1.PeerService", "grpc.health.v1.Health", *VERSIONS}
    for name in names:
        reply = ask(channel, version, r.ServerReflectionRequest(file_containing_symbol=name), token)
        assert name in described(reply), (name, reply)


@pytest.mark.parametrize("version", VERSIONS)
def test_without_the_token_reflection_describes_health_and_nothing_else(version: str) -> None:
    with fedflow.Engine(name=unique("reflect")) as engine, run_server(engine, grace=0.5, token=TOKEN) as port, \
            grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        for symbol in ("grpc.health.v1.Health", "grpc.health.v1.HealthCheckRequest"):
            reply = ask(channel, version, r.ServerReflectionRequest(file_containing_symbol=symbol))
            assert described(reply) == {"grpc.health.v1.Health"}, symbol
        reply = ask(channel, version, r.ServerReflectionRequest(file_by_filename=health_pb2.DESCRIPTOR.name))
        assert described(reply) == {"grpc.health.v1.Health"}

        for req in (r.ServerReflectionRequest(list_services=""),
                    r.ServerReflectionRequest(file_containing_symbol="fedflow.v1.ControlService"),
                    r.ServerReflectionRequest(file_by_filename="fedflow/v1/fedflow.proto"),
                    r.ServerReflectionRequest(file_containing_symbol="grpc.health.v1x.Evil")):
            with pytest.raises(grpc.RpcError) as caught:
                ask(channel, version, req)
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED, req
            assert "Bearer" in caught.value.details()
        with pytest.raises(grpc.RpcError) as caught:
            ask(channel, version, r.ServerReflectionRequest(list_services=""), "wrong")
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
