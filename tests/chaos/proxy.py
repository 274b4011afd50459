"""A small fault-injecting TCP proxy for tests: forwards one listening port to a target,
and on command delays, drops (blackholes), drops only the replies of, or resets the traffic.

>>> with FaultProxy(("127.0.0.1", 9)) as proxy:   # doctest: +SKIP
...     proxy.set(DROP_REPLIES)                    # the target gets requests, nobody hears back
...     proxy.set(PASS)

Modes apply to connections already open and to new ones. `RESET` closes every connection
with a TCP reset (SO_LINGER 0) and resets new ones as they arrive. A proxy's threads are
daemons; `close()` stops it and closes every socket.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from types import TracebackType

__all__ = ["DELAY", "DROP", "DROP_REPLIES", "MODES", "PASS", "RESET", "FaultProxy"]

PASS, DELAY, DROP, DROP_REPLIES, RESET = "pass", "delay", "drop", "drop-replies", "reset"
MODES = (PASS, DELAY, DROP, DROP_REPLIES, RESET)
_CHUNK = 65536


def _reset(sock: socket.socket) -> None:
    """Close `sock` with a TCP RST rather than a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """Listen on `listen` (default: a free 127.0.0.1 port, see `.port`) and forward to `target`."""

    def __init__(self, target: tuple[str, int], listen: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.target = target
        self.mode = PASS
        self.delay = 0.0
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._closed = threading.Event()
        self._server = socket.create_server(listen, reuse_port=False)
        self._server.settimeout(0.2)
        self.port: int = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True, name=f"proxy-{self.port}")
        self._thread.start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def address(self) -> str:
        """host:port clients connect to."""
        host = self._server.getsockname()[0]
        return f"{host}:{self.port}"

    def set(self, mode: str, delay: float = 0.0) -> None:
        """Switch every connection to `mode` (`DELAY` holds each chunk `delay` seconds)."""
        if mode not in MODES:
            raise ValueError(f"proxy mode must be one of {MODES}, got {mode!r}")
        with self._lock:
            self.mode, self.delay = mode, delay
            doomed = list(self._pairs) if mode == RESET else []
            if doomed:
                self._pairs.clear()
        for client, upstream in doomed:
            _reset(client)
            _reset(upstream)

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._server.close()
        with self._lock:
            pairs, self._pairs = list(self._pairs), []
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)
        self._thread.join(timeout=2)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _addr = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == RESET:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
            for src, dst, reply in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, reply), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, reply: bool) -> None:
        """Copy `src` to `dst` chunk by chunk, as the mode at each chunk says."""
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                mode, delay = self.mode, self.delay
                if mode == DROP or (mode == DROP_REPLIES and reply):
                    continue
                if mode == DELAY:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
