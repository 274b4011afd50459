"""Method handlers for the fedflow.v1 services whose requests decode leniently:
undecodable bytes get INVALID_ARGUMENT (grpcio alone answers UNKNOWN); handlers
call `parsed(request)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from .. import errors as E
from ..v1 import fedflow_pb2 as pb

__all__ = ["CONTROL_SERVICE", "HANDLER_KINDS", "PEER_SERVICE", "parsed", "service_handler"]


class _Undecodable:
    """Stands in for a request message that is not valid protobuf (grpcio itself
    would answer UNKNOWN); handlers refuse it with INVALID_ARGUMENT."""

    def __init__(self, kind: str, error: Exception) -> None:
        self.kind = kind
        self.error = error


def parsed(message: Any) -> Any:
    """`message`, or UnsupportedValue (-> INVALID_ARGUMENT) if it did not decode."""
    if isinstance(message, _Undecodable):
        raise E.UnsupportedValue(f"request is not a valid fedflow.v1.{message.kind} message "
                                 f"({message.error}); send the protobuf message the method expects",
                                 path="request")
    return message


def _lenient(cls: Any) -> Callable[[bytes], Any]:
    """A request deserializer that never raises (see `_Undecodable`)."""
    def parse(data: bytes) -> Any:
        try:
            return cls.FromString(data)
        except Exception as exc:  # DecodeError and friends
            return _Undecodable(cls.DESCRIPTOR.name, exc)
    return parse


#: The fully qualified names of fedflow's two services.
PEER_SERVICE = pb.DESCRIPTOR.services_by_name["PeerService"].full_name
CONTROL_SERVICE = pb.DESCRIPTOR.services_by_name["ControlService"].full_name

#: (request_streaming, response_streaming) -> the grpc method-handler factory.
HANDLER_KINDS = {(False, False): grpc.unary_unary_rpc_method_handler,
                 (False, True): grpc.unary_stream_rpc_method_handler,
                 (True, False): grpc.stream_unary_rpc_method_handler,
                 (True, True): grpc.stream_stream_rpc_method_handler}


def service_handler(service: str, servicer: Any) -> grpc.GenericRpcHandler:
    """Handlers for every method of fedflow.v1 `service`, with lenient request parsing."""
    desc = pb.DESCRIPTOR.services_by_name[service]
    table = {}
    for method in desc.methods:
        make = HANDLER_KINDS[(method.client_streaming, method.server_streaming)]
        table[method.name] = make(getattr(servicer, method.name),
                                  request_deserializer=_lenient(getattr(pb, method.input_type.name)),
                                  response_serializer=getattr(pb, method.output_type.name).SerializeToString)
    return grpc.method_handlers_generic_handler(desc.full_name, table)
