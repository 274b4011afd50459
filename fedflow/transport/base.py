"""The transport interface: how an engine reaches one peer.

Two implementations: `local.LocalTransport` (an in-process dict table or
Engine, values still passed through the codec) and `grpc.GrpcTransport`
(a real peer, one reused channel). Every method raises only `PeerError`
subclasses (or `ReplicaError` for a malformed replica); payloads and
answers are plain data, exactly as `fedflow.values` carries them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from ..errors import PeerError

#: `on_bytes(done, total)`: how many bytes of a replica crossed so far, of how many.
ByteCount = Callable[[int, int], None]


class Transport(abc.ABC):
    """One peer, as seen by the engine that calls it."""

    #: The name this peer is registered under on the calling engine.
    name: str

    @abc.abstractmethod
    def call(self, fn: str, payload: Any, *, deadline: float, call_id: str,
             retry_window: float | None = None) -> Any:
        """Run exposed function `fn` on the peer with `payload`; its (plain-data) answer.

        `deadline` is the whole budget in seconds, retries included; `retry_window` caps
        how long transient transport errors are retried (default: the whole deadline);
        `call_id` is an idempotency key the peer may use to drop a duplicate of a call.
        Raises UnknownFunction, RemoteError (the function raised), PeerUnavailable."""

    @abc.abstractmethod
    def push_replica(self, source: str, export_text: str, *, deadline: float,
                     on_bytes: ByteCount | None = None) -> int:
        """Store `export_text` (JSON text of an export) in the peer's replica slot for
        engine `source`; returns the number of flows the peer received. `on_bytes(done,
        total)` is told the bytes sent as they go (at least once, at the end)."""

    @abc.abstractmethod
    def fetch_replica(self, source: str, *, deadline: float, on_bytes: ByteCount | None = None) -> str:
        """The export text the peer holds for engine `source`; `on_bytes(done, total)` is told
        the bytes received as they come (at least once, at the end).
        Raises ReplicaError when the peer holds none."""

    @abc.abstractmethod
    def restore(self, source: str, ids: list[str] | None, *, deadline: float) -> list[str]:
        """Ask the peer to import into its own store the replica it holds of `source`
        (only `ids`, when given); returns the ids it imported."""

    def claims(self, ids: list[str], *, deadline: float) -> list[tuple[str, int]]:
        """Of `ids`, the flows the peer holds (not as moved), with their ownership epochs."""
        raise PeerError(f"peer {self.name!r} cannot answer ownership claims over this transport", self.name)

    @abc.abstractmethod
    def health(self, *, deadline: float) -> bool:
        """True when the peer answers and is serving."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the connection, if any."""
