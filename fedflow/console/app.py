"""The console's HTTP server: the standard library's ThreadingHTTPServer, one thread per request.

The console is a handful of server-rendered pages and form posts, so
`http.server` is all it needs: no web framework, no dependency, nothing to
keep up to date. It runs beside the gRPC server in the same process and
reads the same engine; its threads sleep until a request comes, so an idle
console costs the gRPC path nothing.

`Console(address, token, insecure)` checks the address and binds it at once
(before the store is opened, so a bad flag or a port in use changes
nothing); `start(engine)` begins serving, `close()` stops.
"""

from __future__ import annotations

import http.server
import logging
import socket
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..cli.config import ConfigError, parse_address
from . import auth
from .metrics import Metrics

log = logging.getLogger("fedflow.console")

#: How often the idle server thread looks whether close() was called (close() waits up to this long).
POLL_SECONDS = 0.05

#: Largest request body taken (a resume value is the biggest thing posted).
MAX_BODY = 8 * 1024 * 1024


def is_loopback(host: str) -> bool:
    """Whether `host` (from HOST:PORT) only reaches this machine."""
    host = host.strip("[]").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def check_address(address: str, token: str | None, insecure: bool) -> tuple[str, int]:
    """(host, port) of `--http`; ConfigError when it would open the console to a network without a token."""
    try:
        host, port = parse_address(address, allow_zero=True)
    except ConfigError as exc:
        raise ConfigError(f"--http: {exc}") from None
    if token is None and not insecure and not is_loopback(host):
        raise ConfigError(f"--http {address} would let anyone who reaches it see, resume and cancel every flow; "
                          f"give --token-file, listen on 127.0.0.1, or add --http-insecure on a trusted network")
    return host.strip("[]"), port


class Request:
    """One parsed HTTP request, as the routes see it."""

    def __init__(self, method: str, target: str, headers: Any, body: bytes) -> None:
        parts = urlsplit(target)
        self.method = method
        self.raw_path = parts.path or "/"
        self.segments = [unquote(s) for s in self.raw_path.split("/")[1:]]
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = headers
        self.cookies = auth.cookies(headers.get("Cookie"))
        text = body.decode("utf-8", "replace") if body else ""
        self.form = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
        self.target = target
        self.csrf = ""             # set by the routes: the CSRF token forms carry
        self.csrf_is_new = False   # ... and whether it still has to be set as a cookie


class Response:
    """What a route answers: a status, headers and a body."""

    def __init__(self, status: int, body: str | bytes = b"", content_type: str = "text/html; charset=utf-8",
                 headers: list[tuple[str, str]] | None = None) -> None:
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers = [("Content-Type", content_type), *(headers or [])]

    @classmethod
    def redirect(cls, location: str, headers: list[tuple[str, str]] | None = None) -> Response:
        """A 303 See Other to `location` (a path on this console)."""
        return cls(303, b"", "text/plain; charset=utf-8", [("Location", location), *(headers or [])])


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "fedflow-console"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write (flushed after each request), without Nagle's delay: written
    # apart, a kept-alive connection waits ~40 ms on the client's delayed ACK for every response.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    console: Console  # set on the subclass each Console makes

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._send(Response(413, "request body too large or without a length", "text/plain; charset=utf-8"))
            return
        self._answer(self.rfile.read(length))

    def _answer(self, body: bytes) -> None:
        request = Request(self.command, self.path, self.headers, body)
        try:
            response = self.console.routes.handle(request)
        except Exception:  # one bad request must not take the console down
            log.exception("console: %s %s failed", self.command, request.raw_path)
            response = Response(500, "internal error; see the server log", "text/plain; charset=utf-8")
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("console %s: " + format, self.address_string(), *args)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


class Console:
    """The web console, /metrics and /healthz of one `fedflow serve`, on its own port."""

    def __init__(self, address: str, token: str | None = None, *, insecure: bool = False) -> None:
        """Check `address` (HOST:PORT) and bind it; OSError when it is taken, ConfigError when refused."""
        host, port = check_address(address, token, insecure)
        self.gate = auth.Gate(token)
        self.loopback = is_loopback(host)
        handler = type("ConsoleHandler", (_Handler,), {"console": self})
        try:
            self._server = _Server((host, port), handler)
        except OSError as exc:
            raise OSError(f"cannot serve the console on --http {address}: {exc.strerror or exc}; pick a free "
                          f"HOST:PORT") from exc
        self.port: int = self._server.server_address[1]
        self.routes: Any = None
        self._instrumented: Any = None
        self._thread: threading.Thread | None = None

    def start(self, engine: Any) -> None:
        """Serve `engine` from a background thread (and start watching it for the metrics)."""
        from .hooks import instrument
        from .routes import Routes

        metrics = Metrics(engine)
        self._instrumented = instrument(engine, metrics)
        self.routes = Routes(engine, self.gate, metrics, self._instrumented, loopback=self.loopback)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_SECONDS,),
                                        name="fedflow-console", daemon=True)
        self._thread.start()
        host = self._server.server_address[0]
        log.info("console on http://%s:%d/%s", f"[{host}]" if ":" in host else host, self.port,
                 " (token required)" if self.gate.required else "")

    def close(self) -> None:
        """Stop serving and remove the engine's instrumentation."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        if self._instrumented is not None:
            self._instrumented.close()
            self._instrumented = None
