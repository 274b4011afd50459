"""The peers one engine knows, by name: in-process ones and gRPC ones."""

from __future__ import annotations

import threading
from typing import Any

from .errors import UnknownPeer
from .transport.base import Transport
from .transport.local import LocalTransport


class PeerTable:
    """Name -> Transport for one engine (`engine.peers`)."""

    def __init__(self, owner: str, default_deadline: float) -> None:
        self._owner = owner
        self._deadline = default_deadline
        self._lock = threading.Lock()
        self._peers: dict[str, Transport] = {}

    def register(self, addr: str, table_or_engine: Any) -> None:
        """An in-process peer: a dict `{fn_name: callable}` or another Engine."""
        if not (isinstance(table_or_engine, dict) or hasattr(table_or_engine, "invoke")):
            raise TypeError(f"peers.register({addr!r}, ...) needs a dict of functions or an Engine, "
                            f"got {type(table_or_engine).__name__}")
        self.add(LocalTransport(addr, table_or_engine))

    def connect(self, addr: str, target: str, *, token: str | None = None, tls: Any = None,
                limits: Any = None) -> None:
        """A real peer over gRPC at `target` ("host:port"), reached under the name `addr`;
        `tls` a `fedflow.grpc.security.TlsConfig`, `limits` a `fedflow.limits.Limits`."""
        from .transport.grpc import GrpcTransport  # grpc is only loaded when a real peer is used

        self.add(GrpcTransport(addr, target, token=token, tls=tls, limits=limits, default_deadline=self._deadline))

    def add(self, transport: Transport) -> None:
        """Register a ready-made transport under its own name (replacing any old one)."""
        with self._lock:
            old = self._peers.get(transport.name)
            self._peers[transport.name] = transport
        if old is not None and old is not transport:
            old.close()

    def get(self, addr: str) -> Transport:
        """The transport for `addr`; UnknownPeer when there is none."""
        with self._lock:
            found = self._peers.get(addr)
        if found is None:
            raise UnknownPeer(f"engine {self._owner!r} knows no peer named {addr!r}; register it with "
                              f"engine.peers.register/connect or `fedflow serve --peer {addr}=HOST:PORT`",
                              peer=addr)
        return found

    def names(self) -> list[str]:
        """Every peer name, in registration order."""
        with self._lock:
            return list(self._peers)

    def address(self, addr: str) -> str | None:
        """The host:port of a gRPC peer, None for an in-process one."""
        return getattr(self.get(addr), "address", None)

    def close(self) -> None:
        """Close every transport."""
        with self._lock:
            peers, self._peers = list(self._peers.values()), {}
        for transport in peers:
            transport.close()
