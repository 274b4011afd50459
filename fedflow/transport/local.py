"""In-process peers: a dict of functions, or another Engine in the same process.

Values still go through the codec both ways, so tests see exactly what the
wire would carry.
"""

from __future__ import annotations

from typing import Any

from .. import values
from ..errors import PeerError, RemoteError, UnknownFunction, UnsupportedValue
from .base import ByteCount, Transport


class LocalTransport(Transport):
    """A peer living in this process: `target` is a `{name: callable}` dict or an Engine."""

    def __init__(self, name: str, target: Any) -> None:
        self.name = name
        self.target = target

    def _engine(self, what: str) -> Any:
        if isinstance(self.target, dict):
            raise PeerError(f"peer {self.name!r} is a function table and cannot {what}; "
                            f"register an Engine as the peer instead", peer=self.name)
        return self.target

    def _invoke(self, fn: str, payload: Any, call_id: str) -> Any:
        if not isinstance(self.target, dict):
            return self.target.invoke(fn, payload, call_id=call_id)
        func = self.target.get(fn)
        if func is None:
            raise UnknownFunction(f"peer {self.name!r} exposes no function {fn!r}; "
                                  f"it has: {sorted(self.target)}", peer=self.name)
        return func(payload)

    def call(self, fn: str, payload: Any, *, deadline: float, call_id: str,
             retry_window: float | None = None) -> Any:
        """Run `fn` in this process; its exception becomes RemoteError."""
        text = values.dumps(payload, f"payload of {self.name}.{fn}")
        try:
            answer = self._invoke(fn, values.loads(text), call_id)
        except UnknownFunction as exc:
            exc.peer = self.name
            raise
        except Exception as exc:
            raise RemoteError(f"{self.name}.{fn} raised {type(exc).__name__}: {exc}; fix it on that peer, or "
                              f"catch it with try_catch or remote_failover", peer=self.name,
                              remote_type=type(exc).__name__, remote_message=str(exc)) from exc
        try:
            return values.loads(values.dumps(answer, f"answer of {self.name}.{fn}"))
        except UnsupportedValue as exc:
            raise RemoteError(f"{self.name}.{fn} answered with a value that is not plain data: {exc}",
                              peer=self.name, remote_type="UnsupportedValue", remote_message=str(exc)) from exc

    def push_replica(self, source: str, export_text: str, *, deadline: float,
                     on_bytes: ByteCount | None = None) -> int:
        """Hand the export to the peer engine's replica slot for `source`."""
        flows = self._engine("hold replicas").accept_replica(source, export_text)
        if on_bytes is not None:
            size = len(export_text.encode("utf-8", "surrogatepass"))
            on_bytes(size, size)
        return flows

    def fetch_replica(self, source: str, *, deadline: float, on_bytes: ByteCount | None = None) -> str:
        """The export the peer engine holds for `source`."""
        text = self._engine("hand out replicas").replica_text(source)
        if on_bytes is not None:
            size = len(text.encode("utf-8", "surrogatepass"))
            on_bytes(size, size)
        return text

    def restore(self, source: str, ids: list[str] | None, *, deadline: float) -> list[str]:
        """Have the peer engine import its replica of `source`."""
        return self._engine("restore flows").restore_local(source, ids)

    def claims(self, ids: list[str], *, deadline: float) -> list[tuple[str, int]]:
        """The flows of `ids` the peer engine holds, with their epochs."""
        return self._engine("hold flows").claims(ids)

    def health(self, *, deadline: float) -> bool:
        """An in-process peer is always there."""
        return True
