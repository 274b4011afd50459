"""fedflow.grpc: fedflow errors <-> gRPC statuses, values, replica chunking (no server)."""

from __future__ import annotations

import hashlib

import grpc
import pytest

import fedflow
from fedflow import errors as E
from fedflow.grpc.codec import pack, status_from_proto, status_to_proto, unpack
from fedflow.grpc.replica_stream import ReplicaAssembler, replica_parts
from fedflow.grpc.status import error_for, is_transient, status_for, trailers_for
from fedflow.limits import LimitExceeded
from fedflow.v1 import fedflow_pb2 as pb

try:
    from test_grpc_support import FakeRpcError, over_the_wire
except ImportError:  # tests/ imported as a package
    from tests.test_grpc_support import FakeRpcError, over_the_wire

Code = grpc.StatusCode



@pytest.mark.parametrize(("exc", "code"), [
    (E.UnknownFlow("no flow x", "x"), Code.NOT_FOUND),
    (E.UnknownFunction("no fn", "p"), Code.NOT_FOUND),
    (E.UnknownPeer("no peer", "q"), Code.NOT_FOUND),
    (E.UnsupportedValue("bad", path="value[0]"), Code.INVALID_ARGUMENT),
    (E.ReplicaError("bad replica"), Code.INVALID_ARGUMENT),
    (E.PeerUnavailable("down", "q"), Code.UNAVAILABLE),
    (E.FlowCancelled("cancelled", "x"), Code.FAILED_PRECONDITION),
    (E.FlowMoved("moved", "x", owner="b"), Code.FAILED_PRECONDITION),
    (E.FlowNotDone("not done", "x"), Code.FAILED_PRECONDITION),
    (E.FlowError("already done", "x"), Code.FAILED_PRECONDITION),
    (E.FlowFailed("failed", "x", cause=ValueError("boom")), Code.FAILED_PRECONDITION),
])
def test_each_fedflow_error_maps_to_its_status_and_comes_back_as_the_same_class(exc, code):
    assert status_for(exc)[0] is code
    back = over_the_wire(exc)
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    for attr in ("id", "owner", "path"):
        if hasattr(exc, attr):
            assert getattr(back, attr) == getattr(exc, attr)


def test_flow_failed_carries_its_cause_type_and_message():
    back = over_the_wire(E.FlowFailed("flow x failed", "x", cause=KeyError("k")))
    assert isinstance(back, fedflow.FlowFailed) and back.id == "x"
    assert isinstance(back.cause, E.RemoteError)
    assert (back.cause.remote_type, back.cause.remote_message) == ("KeyError", "'k'")


def test_a_text_cause_from_a_stored_failure_is_split_into_type_and_message():
    back = over_the_wire(E.FlowFailed("flow x failed", "x", cause="ValueError: nope"))
    assert (back.cause.remote_type, back.cause.remote_message) == ("ValueError", "nope")


def test_non_determinism_keeps_expected_and_recorded():
    back = over_the_wire(E.NonDeterminism("diverged", "x", expected="step:a", recorded="step:b"))
    assert isinstance(back, E.NonDeterminism)
    assert (back.expected, back.recorded) == ("step:a", "step:b")


def test_unknown_flow_is_still_a_key_error_and_peer_errors_keep_the_nested_peer():
    assert isinstance(over_the_wire(E.UnknownFlow("no", "x")), KeyError)
    assert over_the_wire(E.PeerUnavailable("down", "far"), peer="near").peer == "far"
    assert over_the_wire(E.UnknownFunction("no fn"), peer="near").peer == "near"


def test_unexpected_exceptions_are_internal_with_a_short_message_and_no_trailers():
    code, message = status_for(RuntimeError("secret detail\nTraceback"))
    assert code is Code.INTERNAL
    assert "secret" not in message and "Traceback" not in message
    assert trailers_for(RuntimeError("x")) == ()


@pytest.mark.parametrize(("code", "cls", "words"), [
    (Code.UNAVAILABLE, E.PeerUnavailable, "unavailable"),
    (Code.DEADLINE_EXCEEDED, E.PeerUnavailable, "deadline"),
    (Code.UNAUTHENTICATED, E.PeerError, "--token-file"),
    (Code.RESOURCE_EXHAUSTED, E.PeerError, "overloaded"),
    (Code.UNIMPLEMENTED, E.PeerError, "fedflow instance"),
    (Code.INTERNAL, E.PeerError, "log"),
    (Code.UNKNOWN, E.PeerError, "log"),
])
def test_bare_status_codes_map_to_the_most_specific_error(code, cls, words):
    err = error_for(FakeRpcError(code, "detail"), "p")
    assert type(err) is cls and err.peer == "p"
    assert words in str(err)


def test_only_transport_failures_without_a_fedflow_answer_are_transient():
    assert is_transient(FakeRpcError(Code.UNAVAILABLE, "x"))
    assert is_transient(FakeRpcError(Code.DEADLINE_EXCEEDED, "x"))
    assert is_transient(FakeRpcError(Code.RESOURCE_EXHAUSTED, "x"))
    answered = trailers_for(E.PeerUnavailable("nested peer down", "q"))
    assert not is_transient(FakeRpcError(Code.UNAVAILABLE, "x", answered))
    for code in (Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.UNAUTHENTICATED, Code.PERMISSION_DENIED):
        assert not is_transient(FakeRpcError(code, "x"))


def test_values_pack_exactly_and_bad_bytes_are_unsupported():
    value = {"n": 2**64 + 1, "b": b"\x00", "f": fedflow.fail("no"), "z": -0.0}
    assert unpack(pack(value)) == value
    assert unpack(b"") is None
    for bad in (b"\xff\xfe", b"{not json", b'{"$bytes": 5}', b"NaN"):
        with pytest.raises(E.UnsupportedValue):
            unpack(bad)


def test_flow_status_strings_round_trip_through_the_enum():
    for status in ("running", "suspended", "done", "failed", "cancelled", "moved", "unknown"):
        assert status_from_proto(status_to_proto(status)) == status
    assert status_from_proto(pb.FLOW_STATUS_UNSPECIFIED) == "unknown"


def _assemble(parts: list) -> tuple[str, str]:
    assembler = ReplicaAssembler()
    for part in parts:
        assembler.add(pb.PushReplicaRequest(header=part) if isinstance(part, pb.ReplicaHeader)
                      else pb.PushReplicaRequest(chunk=part))
    return assembler.finish()


def test_a_replica_splits_into_a_header_and_chunks_and_reassembles():
    text = "é" * 3000
    parts = list(replica_parts("a", text, chunk=1000))
    header, chunks = parts[0], parts[1:]
    assert header.total_bytes == 6000 and len(chunks) == 6
    assert header.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert _assemble(parts) == ("a", text)


@pytest.mark.parametrize("damage", ["checksum", "truncated", "chunk_first", "two_headers", "too_long"])
def test_a_damaged_replica_stream_is_a_replica_error(damage):
    parts = list(replica_parts("a", "x" * 100, chunk=10))
    if damage == "checksum":
        parts[0].sha256 = "0" * 64
    elif damage == "truncated":
        parts.pop()
    elif damage == "chunk_first":
        parts = parts[1:] + parts[:1]
    elif damage == "two_headers":
        parts.insert(2, parts[0])
    else:
        parts.append(b"extra")
    with pytest.raises(E.ReplicaError):
        _assemble(parts)


# ---------------------------------------------------------------- every status, both ways
@pytest.mark.parametrize("code", list(Code), ids=lambda c: c.name)
def test_every_status_code_maps_to_a_fedflow_error_with_advice(code):
    err = error_for(FakeRpcError(code, "detail"), "p")
    assert isinstance(err, E.FedflowError)
    assert "detail" in str(err) and ";" in str(err), "says what happened and what to do"
    if isinstance(err, E.PeerError):
        assert err.peer == "p"


def test_a_limit_exceeded_travels_by_name_with_its_limit():
    back = over_the_wire(LimitExceeded("too big; raise --max-replica-bytes", None, "max_replica_bytes"), "far")
    assert type(back) is LimitExceeded and back.limit == "max_replica_bytes" and back.peer == "far"
    assert status_for(LimitExceeded("x"))[0] is Code.RESOURCE_EXHAUSTED


def test_a_replica_looked_up_by_name_that_is_missing_is_not_found():
    assert status_for(E.ReplicaError("holds no replica"), lookup=True)[0] is Code.NOT_FOUND
    assert status_for(E.ReplicaError("bad"))[0] is Code.INVALID_ARGUMENT


@pytest.mark.parametrize(("code", "details", "cls", "words", "transient"), [
    (Code.RESOURCE_EXHAUSTED, "Received message larger than max (9 vs. 8)", LimitExceeded, "--max-message-bytes",
     False),
    (Code.RESOURCE_EXHAUSTED, "Sent message larger than max (9 vs. 8)", LimitExceeded, "--max-message-bytes", False),
    (Code.RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!", E.PeerUnavailable, "--max-concurrent-rpcs", True),
    (Code.UNAVAILABLE, "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
     "Tls handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: CERTIFICATE_VERIFY_FAILED", E.PeerError,
     "--tls-ca", False),
    (Code.UNAVAILABLE, "failed to connect to all addresses; Socket closed", E.PeerUnavailable, "--tls-", True),
])
def test_limit_and_tls_failures_name_their_flag_and_only_retryable_ones_are_transient(
        code, details, cls, words, transient):
    failure = FakeRpcError(code, details)
    err = error_for(failure, "p")
    assert type(err) is cls and words in str(err)
    assert is_transient(failure) is transient
