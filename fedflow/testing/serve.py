"""Real `fedflow serve` processes for tests: start one on a free 127.0.0.1 port, kill it,
stop it, restart it on the same address and store.

`Serves` starts them and guarantees they are gone at `stop_all` (the `fedflow_serve`
fixture calls it at teardown, whether the test passed or not). Readiness is a bounded
poll of the health service, never a fixed sleep.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import ControlClient

__all__ = ["Serve", "ServeError", "Serves"]

#: Seconds a serve may take to answer its health check SERVING after it was started.
READY_TIMEOUT = 30.0
#: Seconds `stop()` waits after SIGTERM before it sends SIGKILL.
STOP_TIMEOUT = 10.0
_POLL = 0.05
_PORT_ATTEMPTS = 3  # a free port can be taken between choosing it and the serve binding it

_live: weakref.WeakSet[Serve] = weakref.WeakSet()


class ServeError(AssertionError):
    """A `fedflow serve` a test started did not come up, with the end of its log.

    An AssertionError, so pytest reports it as the test's failure."""


def free_port() -> int:
    """A 127.0.0.1 port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _absolute(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.fspath(path))


def _load_target(target: Any) -> str:
    """A `--load` target as the serve must see it: a file path made absolute (the serve runs
    in its own working directory), a dotted module name as given."""
    if isinstance(target, os.PathLike):
        return _absolute(target)
    if not isinstance(target, str) or not target:
        raise TypeError(f"fedflow_serve(load=[...]) takes .py paths or dotted module names, got {target!r}")
    if target.endswith(".py") or os.sep in target or "/" in target:
        return _absolute(target)
    return target


class Serve:
    """One `fedflow serve` process: `.name`, `.address` ("127.0.0.1:PORT"), `.client`,
    `.kill()`, `.stop()`, `.restart()`; `.log()` is what it printed so far."""

    def __init__(self, name: str, address: str, args: list[str], *, workdir: Path, db: Path,
                 token: str | None, env: Mapping[str, str]) -> None:
        """Describe a serve; `start()` runs it (`Serves.start` does both)."""
        self.name = name
        self.address = address
        self.db = db
        self.workdir = workdir
        self.log_path = workdir / f"{name}.{address.rsplit(':', 1)[1]}.log"
        self._args = args
        self._token = token
        self._env = dict(env)
        self._proc: subprocess.Popen[bytes] | None = None
        self._group_ended = False
        self._client: ControlClient | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<fedflow serve {self.name} at {self.address}, {state}>"

    @property
    def pid(self) -> int | None:
        """The process id of the running serve, None when it is not running."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def client(self) -> ControlClient:
        """A `ControlClient` for this serve (with its token); the same one across restarts."""
        if self._client is None:
            from ..client import ControlClient

            self._client = ControlClient(self.address, token=self._token)
        return self._client

    def log(self) -> str:
        """Everything the serve printed so far (all of its runs)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self, ready_timeout: float = READY_TIMEOUT) -> Serve:
        """Run the process and wait (bounded) until it answers its health check SERVING."""
        if self.running:
            raise RuntimeError(f"fedflow serve {self.name} is already running; restart() it instead")
        with open(self.log_path, "ab") as log:
            self._group_ended = False
            self._proc = subprocess.Popen([sys.executable, "-m", "fedflow", *self._args], stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir,
                                          env=self._env, start_new_session=True)
        _live.add(self)
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll the health service until SERVING; ServeError if the process exits or `timeout` passes."""
        from ..client import ControlClient

        end = time.monotonic() + timeout
        with ControlClient(self.address, token=self._token, deadline=1.0) as probe:
            while not probe.health():
                if not self.running:
                    code = None if self._proc is None else self._proc.returncode
                    raise ServeError(f"fedflow serve {self.name} exited with status {code} before it was "
                                     f"ready at {self.address}; its log:\n{self.log()[-3000:]}")
                if time.monotonic() > end:
                    self.kill()
                    raise ServeError(f"fedflow serve {self.name} did not answer its health check at "
                                     f"{self.address} within {timeout}s; its log:\n{self.log()[-3000:]}")
                time.sleep(_POLL)

    def kill(self) -> None:
        """Crash the serve: SIGKILL its process group, then reap it. Nothing if it is not running."""
        if self._proc is None:
            return
        self._end_group()
        self._proc.wait(timeout=STOP_TIMEOUT)

    def _end_group(self) -> None:
        # Once per process: after that its group id may belong to someone else.
        if self._proc is not None and not self._group_ended:
            self._group_ended = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Stop the serve cleanly (SIGTERM; SIGKILL after `timeout` seconds); its exit status,
        None if it was never started."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._end_group()  # anything it left behind in its group
        return self._proc.returncode

    def restart(self, ready_timeout: float = READY_TIMEOUT) -> Serve:
        """Stop the serve if it runs, then start it again on the same address and store."""
        self.stop()
        return self.start(ready_timeout)

    def close(self) -> None:
        """Stop the serve and close its client."""
        try:
            self.stop()
        finally:
            if self._client is not None:
                self._client.close()
                self._client = None
            _live.discard(self)


class Serves:
    """Starts `fedflow serve` processes in `workdir` and stops every one at `stop_all`."""

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        """Serves whose logs, token files and default stores go to `workdir`."""
        self.workdir = Path(workdir)
        self.serves: list[Serve] = []

    def start(self, name: str, load: Iterable[str | os.PathLike[str]] = (), peers: Mapping[str, str] | None = None,
              db: str | os.PathLike[str] | None = None, token: str | None = None, *,
              env: Mapping[str, str] | None = None, args: Iterable[str] = (),
              ready_timeout: float = READY_TIMEOUT) -> Serve:
        """Start `fedflow serve --name NAME` on a free 127.0.0.1 port and wait until it serves.

        `load`: `.py` files or dotted module names (`--load`); `peers`: `{name: "host:port"}`
        (`--peer`); `db`: the store file (default `NAME.db` in the workdir); `token`: required
        on every RPC and sent to peers (`.client` sends it too); `env`, `args`: extra
        environment variables and `serve` flags."""
        self._check(name, load, peers, token)
        workdir = self.workdir / name
        workdir.mkdir(parents=True, exist_ok=True)
        store = Path(_absolute(db)) if db is not None else workdir / f"{name}.db"
        flags = ["serve", "--name", name, "--db", str(store)]
        for target in load:
            flags += ["--load", _load_target(target)]
        for peer, address in (peers or {}).items():
            flags += ["--peer", f"{peer}={address}"]
        if token is not None:
            token_file = workdir / "token"
            token_file.write_text(token)
            token_file.chmod(0o600)
            flags += ["--token-file", str(token_file)]
        flags += list(args)
        # Dotted --load names resolve from where the tests run, as they would in the test process.
        path = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path, **(env or {})}
        for attempt in range(_PORT_ATTEMPTS):
            address = f"127.0.0.1:{free_port()}"
            serve = Serve(name, address, [*flags, "--listen", address], workdir=workdir, db=store, token=token,
                          env=full_env)
            self.serves.append(serve)
            try:
                return serve.start(ready_timeout)
            except ServeError:
                if attempt + 1 == _PORT_ATTEMPTS or "in use" not in serve.log():
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _check(self, name: Any, load: Any, peers: Any, token: Any) -> None:
        if not isinstance(name, str) or not name or any(c in name for c in "/\\=\0") or name.startswith("."):
            raise ValueError(f"fedflow_serve(name) takes a non-empty name without '/', '\\' or '=', got {name!r}")
        if any(s.name == name and s.running for s in self.serves):
            raise ValueError(f"a serve named {name!r} is already running in this test; give the new one "
                             f"another name, or restart() the one you have")
        if isinstance(load, (str, bytes, os.PathLike)):
            raise TypeError(f"fedflow_serve(load=...) takes a list of targets; write load=[{load!r}]")
        if peers is not None and not (isinstance(peers, Mapping) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in peers.items())):
            raise TypeError(f"fedflow_serve(peers=...) takes {{name: 'host:port'}} (e.g. {{'b': b.address}}), "
                            f"got {peers!r}")
        if token is not None and (not isinstance(token, str) or not token or token != token.strip()):
            raise ValueError("fedflow_serve(token=...) takes a non-empty text without surrounding whitespace")

    def stop_all(self) -> None:
        """Stop every serve started here (newest first) and close their clients; every one is
        reached even if stopping another fails."""
        errors: list[BaseException] = []
        for serve in reversed(self.serves):
            try:
                serve.close()
            except Exception as exc:  # teardown must reach every serve
                errors.append(exc)
                with contextlib.suppress(Exception):
                    serve.kill()
        self.serves.clear()
        if errors:
            raise errors[0]


@atexit.register
def _kill_leftovers() -> None:
    """A last resort when a test run ends without its teardown (e.g. interrupted)."""
    for serve in list(_live):
        with contextlib.suppress(Exception):
            serve.kill()
