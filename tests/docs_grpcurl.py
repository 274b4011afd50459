"""A stand-in for the `grpcurl` commands of the docs (no tests here): grpcurl is not installed on this machine.

`grpcurl(args)` understands what the docs use: ``-plaintext``, ``-H 'name: value'``,
``-d JSON``, then ``ADDRESS list`` (by server reflection) or ``ADDRESS pkg.Service/Method``,
and prints what grpcurl prints: the response in protobuf's JSON mapping (two-space
indent, lowerCamelCase names, enums by name, 64-bit ints and bytes as strings), or
``ERROR:`` with the status code and message. Messages are described by the
generated fedflow and health modules; the calls themselves go to the real server.
"""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2  # noqa: F401 (registers grpc.health.v1 in the default pool)
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from fedflow.v1 import fedflow_pb2  # noqa: F401 (registers fedflow.v1 in the default pool)

_GO_NAMES = {"CANCELLED": "Canceled"}


def _code_name(code: grpc.StatusCode) -> str:
    return _GO_NAMES.get(code.name, "".join(part.title() for part in code.name.split("_")))


def _parse(args: list[str]) -> tuple[list[tuple[str, str]], str | None, list[str]]:
    metadata, data, rest, i = [], None, [], 0
    while i < len(args):
        if args[i] == "-plaintext":
            i += 1
        elif args[i] == "-H":
            name, _, value = args[i + 1].partition(":")
            metadata.append((name.strip().lower(), value.strip()))
            i += 2
        elif args[i] == "-d":
            data, i = args[i + 1], i + 2
        elif args[i].startswith("-"):
            raise ValueError(f"the grpcurl stand-in does not know {args[i]}")
        else:
            rest.append(args[i])
            i += 1
    return metadata, data, rest


def _list(channel: grpc.Channel, metadata: list[tuple[str, str]]) -> str:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                        metadata=metadata, timeout=10)
    names = sorted(s.name for reply in replies for s in reply.list_services_response.service)
    return "".join(name + "\n" for name in names)


def _call(channel: grpc.Channel, method: str, data: str | None, metadata: list[tuple[str, str]]) -> str:
    service_name, _, method_name = method.replace("/", ".").rpartition(".")
    service = descriptor_pool.Default().FindServiceByName(service_name)
    found = service.FindMethodByName(method_name)
    request_class = message_factory.GetMessageClass(found.input_type)
    reply_class = message_factory.GetMessageClass(found.output_type)
    request = json_format.Parse(data or "{}", request_class())
    rpc = channel.unary_unary(f"/{service_name}/{method_name}", request_serializer=request_class.SerializeToString,
                              response_deserializer=reply_class.FromString)
    reply = rpc(request, metadata=metadata, timeout=10)
    return json_format.MessageToJson(reply, indent=2) + "\n"


def grpcurl(args: list[str]) -> tuple[int, str]:
    """Run a documented grpcurl command: its exit status (0, or 1 on an error status) and output."""
    metadata, data, rest = _parse(args)
    address, what = rest[0], rest[1]
    with grpc.insecure_channel(address) as channel:
        try:
            if what == "list":
                return 0, _list(channel, metadata)
            return 0, _call(channel, what, data, metadata)
        except grpc.RpcError as exc:
            return 1, f"ERROR:\n  Code: {_code_name(exc.code())}\n  Message: {exc.details()}\n"
