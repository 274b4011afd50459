"""Server reflection, as `grpc.reflection.v1` and `grpc.reflection.v1alpha`.

grpcio-reflection serves only v1alpha; tools such as grpcurl ask for v1 first.
The two protocols are the same messages under another package name, so one
reflection servicer answers both: v1's descriptors are v1alpha's file renamed
into the `grpc.reflection.v1` package (added to the default descriptor pool,
so reflection can describe itself), and its bytes are read and written with
the v1alpha message classes.

With a token, reflection needs it like every fedflow call, except that a caller
without one may still ask for the descriptors of `grpc.health.v1` (the health
service is open): `health_only` wraps the reflection handler for such callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as alpha

__all__ = ["HEALTH_PACKAGE", "METHODS", "SERVICE_NAMES", "enable_reflection", "health_only"]

V1_SERVICE = "grpc.reflection.v1.ServerReflection"
#: Both reflection services, v1 first.
SERVICE_NAMES = (V1_SERVICE, reflection.SERVICE_NAME)
#: The full method path of each reflection service's one method.
METHODS = tuple(f"/{name}/ServerReflectionInfo" for name in SERVICE_NAMES)
HEALTH_PACKAGE = "grpc.health.v1"
_HEALTH_FILE = health_pb2.DESCRIPTOR.name  # grpcio-health-checking names it grpc_health/v1/health.proto
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _register_v1_descriptor() -> None:
    """Put the v1 reflection file into the default pool (once): v1alpha's, renamed."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    alpha.DESCRIPTOR.CopyToProto(proto)
    old = f".{proto.package}."
    proto.name, proto.package = _V1_FILE, "grpc.reflection.v1"
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(old, ".grpc.reflection.v1.")
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old, ".grpc.reflection.v1.")
            method.output_type = method.output_type.replace(old, ".grpc.reflection.v1.")
    proto.options.Clear()
    pool.Add(proto)


def enable_reflection(server: grpc.Server, service_names: Iterable[str]) -> None:
    """Serve reflection on `server` as v1 and v1alpha, describing `service_names` and itself."""
    _register_v1_descriptor()
    servicer = reflection.ReflectionServicer((*service_names, *SERVICE_NAMES))
    for name in SERVICE_NAMES:
        handler = grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo, request_deserializer=alpha.ServerReflectionRequest.FromString,
            response_serializer=alpha.ServerReflectionResponse.SerializeToString)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo":
                                                                                     handler}),))


def _about_health(request: Any) -> bool:
    """True for a request that asks only for the health service's descriptors."""
    field = request.WhichOneof("message_request")
    if field == "file_containing_symbol":
        return request.file_containing_symbol.startswith(HEALTH_PACKAGE + ".")
    return field == "file_by_filename" and request.file_by_filename == _HEALTH_FILE


def health_only(handler: grpc.RpcMethodHandler, refusal: str) -> grpc.RpcMethodHandler:
    """A reflection handler for a caller without the token: it describes `grpc.health.v1`
    (so `grpcurl ADDRESS grpc.health.v1.Health/Check` works without a token) and answers
    anything else UNAUTHENTICATED with `refusal`."""
    def answer(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        for request in requests:
            if not _about_health(request):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, refusal)
            yield from handler.stream_stream(iter([request]), context)

    return grpc.stream_stream_rpc_method_handler(answer, request_deserializer=handler.request_deserializer,
                                                 response_serializer=handler.response_serializer)
