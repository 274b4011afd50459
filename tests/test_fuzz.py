"""Hostile input on every RPC method of a real in-process server (seeded, thousands of cases).

Each method gets random bytes, messages of its own type filled at random
(as they are, truncated, or with bytes flipped), messages of other types,
and messages over the size limit; client-streaming methods get sequences of
them. The server answers every case with a clean status (never UNKNOWN,
never an INTERNAL from a handler), stays up, and its store is unchanged.
`FEDFLOW_SOAK=1` (make soak) runs ten times as many cases.
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor

import fedflow
from fedflow.client import ControlClient
from fedflow.grpc.server import run_server
from fedflow.limits import Limits
from fedflow.v1 import fedflow_pb2 as pb

try:
    from test_grpc_support import METHODS, call_raw
except ImportError:  # tests/ imported as a package
    from tests.test_grpc_support import METHODS, call_raw

SEED = 20260601
CASES_PER_METHOD = 1500 if os.environ.get("FEDFLOW_SOAK") else 150
LIMITS = Limits(max_message_bytes=64 * 1024, max_replica_bytes=1024 * 1024)
Code = grpc.StatusCode
CLEAN = {Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.FAILED_PRECONDITION, Code.RESOURCE_EXHAUSTED}
MESSAGE_TYPES = sorted({getattr(pb, m.input_type.name) for _s, m in METHODS} |
                       {getattr(pb, m.output_type.name) for _s, m in METHODS}, key=lambda c: c.__name__)
VALUES = [b"", b"null", b"42", b'"echo"', b'{"$bytes": "AAE="}', b'{"$fail": "no"}', b'{"$map": [[1, 2]]}',
          b"[1e400]", b'{"a": [1, 2, {"b": null}]}', b"\xff\xfe", b"{", b"NaN", "é".encode()]


class Fuzzer:
    """Seeded generator of hostile request bytes."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def text(self) -> str:
        pick = self.rng.random()
        if pick < 0.1:
            return "echo"
        if pick < 0.2:
            return ""
        alphabet = "abc-_/.:\x00é\u2603\U0001f600 "
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(1, 40)))

    def blob(self) -> bytes:
        if self.rng.random() < 0.5:
            return self.rng.choice(VALUES)
        return self.rng.randbytes(self.rng.randint(0, 200))

    def scalar(self, field: FieldDescriptor) -> Any:
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            return self.text()
        if kind == FieldDescriptor.TYPE_BYTES:
            return self.blob()
        if kind == FieldDescriptor.TYPE_BOOL:
            return self.rng.random() < 0.5
        if kind == FieldDescriptor.TYPE_ENUM:
            return self.rng.randint(-2, 12)
        if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_UINT32):
            return self.rng.choice([0, 1, 7, 2**32 - 1, 2**63, 2**64 - 1])
        return self.rng.randint(-(2**31), 2**31 - 1)

    def fill(self, message: Any, depth: int = 0) -> Any:
        """Set a random subset of `message`'s fields to random values."""
        for field in message.DESCRIPTOR.fields:
            if self.rng.random() < 0.3:
                continue
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if depth > 2:
                    continue
                if field.is_repeated:
                    for _ in range(self.rng.randint(0, 3)):
                        self.fill(getattr(message, field.name).add(), depth + 1)
                else:
                    self.fill(getattr(message, field.name), depth + 1)
                    getattr(message, field.name).SetInParent()
            elif field.is_repeated:
                getattr(message, field.name).extend(self.scalar(field) for _ in range(self.rng.randint(0, 4)))
            else:
                setattr(message, field.name, self.scalar(field))
        return message

    def message(self, method: Any) -> bytes:
        """One hostile message for `method`."""
        own = getattr(pb, method.input_type.name)
        pick = self.rng.random()
        if pick < 0.2:
            return self.rng.randbytes(self.rng.randint(0, 300))
        if pick < 0.5:
            return self.fill(own()).SerializeToString()
        if pick < 0.65:
            data = self.fill(own()).SerializeToString()
            return data[:self.rng.randint(0, max(len(data) - 1, 0))]
        if pick < 0.8:
            data = bytearray(self.fill(own()).SerializeToString() or b"\x00")
            for _ in range(self.rng.randint(1, 3)):
                data[self.rng.randrange(len(data))] = self.rng.randrange(256)
            return bytes(data)
        if pick < 0.98:
            return self.fill(self.rng.choice(MESSAGE_TYPES)()).SerializeToString()
        return self.rng.randbytes(LIMITS.max_message_bytes + self.rng.randint(1, 4096))

    def case(self, method: Any) -> list[bytes]:
        """The messages of one call: one, or a sequence for a client-streaming method."""
        if not method.client_streaming:
            return [self.message(method)]
        if self.rng.random() < 0.3:
            return self.framed_replica()
        return [self.message(method) for _ in range(self.rng.randint(0, 4))]

    def framed_replica(self) -> list[bytes]:
        """A well-framed replica stream (right size and checksum) around hostile content."""
        data = self.rng.choice([self.blob(), b'{"format": "fedflow-store", "version": 1, "flows": [{"id": 5}]}',
                                b'{"format": "fedflow-store", "version": 99, "flows": []}', b"[" * 5000])
        header = pb.ReplicaHeader(source=self.text() or "src", total_bytes=len(data),
                                  sha256=hashlib.sha256(data).hexdigest())
        chunks = [data[i:i + 100] for i in range(0, len(data), 100)]
        return [pb.PushReplicaRequest(header=header).SerializeToString(),
                *(pb.PushReplicaRequest(chunk=c).SerializeToString() for c in chunks)]


@pytest.fixture
def target() -> Iterator[tuple[fedflow.Engine, str]]:
    """A served engine holding suspended flows only (so even a Gc that decodes changes nothing)."""
    flow_name = f"fuzz-wait-{uuid.uuid4().hex[:6]}"
    fedflow.defflow(flow_name, fedflow.node(lambda x: {"x": x, "go": fedflow.suspend("go")}))
    engine = fedflow.Engine(name=f"fuzz-{uuid.uuid4().hex[:6]}")
    engine.expose("echo", lambda x: x)
    for i in range(5):
        engine.start(flow_name, {"n": i, "blob": b"\x00" * i}, id=f"fuzz-flow-{i}")
    with run_server(engine, limits=LIMITS, grace=0.2) as port:
        yield engine, f"127.0.0.1:{port}"
    engine.close()


def _run_cases(address: str, cases: list[tuple[str, Any, list[bytes]]], metadata: tuple = ()) -> list[Any]:
    """Send every case (8 at a time: an oversized message costs grpcio ~0.1 s); each one's RpcError or None."""
    channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", -1)])
    try:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda c: call_raw(channel, c[0], c[1], c[2], metadata=metadata, timeout=10),
                                 cases))
    finally:
        channel.close()


def _cases(seed: int, per_method: int) -> list[tuple[str, Any, list[bytes]]]:
    fuzz = Fuzzer(seed)
    return [(service, method, fuzz.case(method)) for service, method in METHODS for _ in range(per_method)]


def test_every_method_answers_hostile_input_cleanly_and_changes_nothing(target):
    engine, address = target
    before = engine.export()
    cases = _cases(SEED, CASES_PER_METHOD)
    seen, bad = Counter(), []
    for (_service, method, messages), err in zip(cases, _run_cases(address, cases), strict=True):
        code = Code.OK if err is None else err.code()
        seen[code] += 1
        grpcio_internal = code is Code.INTERNAL and "internal error" not in (err.details() or "")
        if code not in CLEAN and not grpcio_internal:
            bad.append((method.name, code, err.details() if err else "", messages[:1]))
    assert not bad, f"unclean answers: {bad[:5]} (codes seen: {dict(seen)})"
    assert sum(seen.values()) == len(cases) >= 2500
    assert seen[Code.INVALID_ARGUMENT] and seen[Code.RESOURCE_EXHAUSTED] and seen[Code.OK]
    assert engine.export() == before, "hostile input changed the store"
    with ControlClient(address, deadline=5) as client:
        assert client.health() is True
        assert client.call("echo", [1, b"2"]) == {"result": [1, b"2"]}
        assert client.resume("fuzz-flow-0", "ok") == {"id": "fuzz-flow-0", "status": "done",
                                                      "result": {"x": {"n": 0, "blob": b""}, "go": "ok"}}


def test_hostile_input_without_the_token_is_refused_before_it_is_read():
    engine = fedflow.Engine(name=f"fuzz-tok-{uuid.uuid4().hex[:6]}")
    try:
        with run_server(engine, token="t0ken", limits=LIMITS, grace=0.2) as port:
            errors = _run_cases(f"127.0.0.1:{port}", _cases(SEED + 1, 20), (("authorization", "Bearer nope"),))
    finally:
        engine.close()
    codes = Counter(err.code() if err else Code.OK for err in errors)
    oversized = codes.pop(Code.RESOURCE_EXHAUSTED, 0)  # grpcio refuses those before any handler
    assert set(codes) == {Code.UNAUTHENTICATED} and oversized < sum(codes.values()) // 5
