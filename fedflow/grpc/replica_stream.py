"""A replica on the wire: one header (source, size, SHA-256), then byte chunks.

`replica_parts` cuts export text into that stream; `ReplicaAssembler` takes
it back, checking order, size and checksum as it goes, and refusing a
replica over `Limits.max_replica_bytes` from its header alone (before any
chunk is buffered). A malformed stream raises `ReplicaError`; an oversized
one raises `LimitExceeded`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from .. import errors as E
from ..limits import DEFAULT_LIMITS, MIB, Limits
from ..v1 import fedflow_pb2 as pb

__all__ = ["CHUNK_BYTES", "ReplicaAssembler", "replica_parts"]

CHUNK_BYTES = MIB


def replica_parts(source: str, text: str, chunk: int = CHUNK_BYTES) -> Iterator[pb.ReplicaHeader | bytes]:
    """A replica as a header (size, SHA-256) followed by byte chunks of `chunk` bytes."""
    data = text.encode("utf-8")
    yield pb.ReplicaHeader(source=source, total_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    for start in range(0, len(data), chunk):
        yield data[start:start + chunk]


class ReplicaAssembler:
    """Collects a replica stream (header first, then non-empty chunks) and checks it."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS, peer: str | None = None) -> None:
        self.header: pb.ReplicaHeader | None = None
        self._limits = limits
        self._peer = peer
        self._digest = hashlib.sha256()
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, message: Any) -> None:
        """Take one PushReplicaRequest / FetchReplicaResponse."""
        part = message.WhichOneof("part")
        if part == "header":
            self._add_header(message.header)
        elif part == "chunk" and message.chunk:
            self._add_chunk(message.chunk)
        else:
            raise E.ReplicaError("empty replica message; send a header, then non-empty chunks")

    def _add_header(self, header: pb.ReplicaHeader) -> None:
        if self.header is not None:
            raise E.ReplicaError("a replica stream carries one header; resend the replica")
        if header.total_bytes > self._limits.max_replica_bytes:
            raise self._limits.exceeded("max_replica_bytes", header.total_bytes,
                                        f"the replica of {header.source!r}", self._peer)
        self.header = header

    def _add_chunk(self, chunk: bytes) -> None:
        if self.header is None:
            raise E.ReplicaError("a replica stream must start with its header; resend the replica")
        self._size += len(chunk)
        if self._size > self.header.total_bytes:
            raise E.ReplicaError("replica is longer than its header says; resend the replica")
        self._digest.update(chunk)
        self._parts.append(chunk)

    def finish(self) -> tuple[str, str]:
        """`(source, export_text)` once the stream is complete and its checksum matches."""
        if self.header is None:
            raise E.ReplicaError("replica stream had no header; resend the replica")
        if self._size != self.header.total_bytes:
            raise E.ReplicaError(f"replica truncated: got {self._size} of {self.header.total_bytes} "
                                 f"bytes; resend the replica")
        if self._digest.hexdigest() != self.header.sha256.lower():
            raise E.ReplicaError("replica checksum mismatch (sha256); it was corrupted: resend it")
        try:
            text = b"".join(self._parts).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise E.ReplicaError(f"replica is not UTF-8 JSON text: {exc}; resend a store export") from exc
        return self.header.source, text
