"""Generated gRPC stubs for proto/fedflow/v1 (`make proto`); never edit them by hand.

`fedflow_pb2` holds the messages, `fedflow_pb2_grpc` the `PeerService` and
`ControlService` stubs and servicers. `tests/test_proto_stubs.py` fails when
they drift from the .proto files.
"""
