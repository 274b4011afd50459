"""A stand-in for the `grpcurl` commands of the docs (no tests here): grpcurl is not installed on this machine.

`grpcurl(args)` understands what the docs use: ``-plaintext``, ``-H 'name: value'``,
``-d JSON``, then ``ADDRESS list`` (by server reflection) or ``ADDRESS pkg.Service/Method``,
and prints what grpcurl prints: the response in protobuf's JSON mapping (two-space
indent, lowerCamelCase names, enums by name, 64-bit ints and bytes as strings), or
``ERROR:`` with the status code and message. As grpcurl does, it asks the server's
reflection (`grpc.reflection.v1`) for the service before calling it, so a call the
server would not describe fails as it would with grpcurl; the messages themselves are
then read with the generated fedflow and health modules.
"""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2  # noqa: F401 (registers grpc.health.v1 in the default pool)
from grpc_reflection.v1alpha import reflection_pb2

from fedflow.v1 import fedflow_pb2  # noqa: F401 (registers fedflow.v1 in the default pool)

_GO_NAMES = {"CANCELLED": "Canceled"}
_REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


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


def _reflect(channel: grpc.Channel, request: reflection_pb2.ServerReflectionRequest,
             metadata: list[tuple[str, str]]) -> reflection_pb2.ServerReflectionResponse:
    """One request to the server's v1 reflection (its messages are v1alpha's, renamed)."""
    stub = channel.stream_stream(_REFLECTION,
                                 request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    (reply,) = list(stub(iter([request]), metadata=metadata, timeout=10))
    return reply


def _list(channel: grpc.Channel, metadata: list[tuple[str, str]]) -> str:
    reply = _reflect(channel, reflection_pb2.ServerReflectionRequest(list_services=""), metadata)
    names = sorted(s.name for s in reply.list_services_response.service)
    return "".join(name + "\n" for name in names)


def _call(channel: grpc.Channel, method: str, data: str | None, metadata: list[tuple[str, str]]) -> str:
    service_name, _, method_name = method.replace("/", ".").rpartition(".")
    try:
        described = _reflect(channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=service_name),
                             metadata)
    except grpc.RpcError as exc:
        raise _Failed(f"Error invoking method \"{method}\": failed to query for service descriptor "
                      f"\"{service_name}\": rpc error: code = {_code_name(exc.code())} "
                      f"desc = {exc.details()}\n") from exc
    if described.HasField("error_response"):
        raise _Failed(f"Error invoking method \"{method}\": target server does not expose service "
                      f"\"{service_name}\"\n")
    service = descriptor_pool.Default().FindServiceByName(service_name)
    found = service.FindMethodByName(method_name)
    request_class = message_factory.GetMessageClass(found.input_type)
    reply_class = message_factory.GetMessageClass(found.output_type)
    request = json_format.Parse(data or "{}", request_class())
    rpc = channel.unary_unary(f"/{service_name}/{method_name}", request_serializer=request_class.SerializeToString,
                              response_deserializer=reply_class.FromString)
    reply = rpc(request, metadata=metadata, timeout=10)
    return json_format.MessageToJson(reply, indent=2) + "\n"


class _Failed(Exception):
    """What grpcurl prints when it cannot even make the call."""


def grpcurl(args: list[str]) -> tuple[int, str]:
    """Run a documented grpcurl command: its exit status (0, or 1 on an error status) and output."""
    metadata, data, rest = _parse(args)
    address, what = rest[0], rest[1]
    with grpc.insecure_channel(address) as channel:
        try:
            if what == "list":
                return 0, _list(channel, metadata)
            return 0, _call(channel, what, data, metadata)
        except _Failed as exc:
            return 1, str(exc)
        except grpc.RpcError as exc:
            return 1, f"ERROR:\n  Code: {_code_name(exc.code())}\n  Message: {exc.details()}\n"
