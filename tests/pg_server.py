"""A throwaway PostgreSQL server for the tests: `initdb` + `pg_ctl` into a temp dir.

As a wrapper, it starts a server, exports its URL as ``FEDFLOW_TEST_POSTGRES``,
runs a command, stops the server (also when the command fails or is
interrupted) and exits with the command's status::

    python tests/pg_server.py -- python -m pytest -q

The server uses Debian's binaries from /usr/lib/postgresql/*/bin (`make
postgres-deps` installs them), listens on 127.0.0.1 on a free port, keeps its
unix socket in the temp dir, trusts every local connection, and runs as an
unprivileged user when started by root (PostgreSQL refuses to run as root).
Nothing outlives it: the data directory is removed when it stops.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator

ENV_VAR = "FEDFLOW_TEST_POSTGRES"
_SUPERUSER = "postgres"  # the database role initdb creates; not a system account
_RUN_AS = ("postgres", "nobody")  # system accounts to run the server as when we are root


class PostgresUnavailable(RuntimeError):
    """Raised when no PostgreSQL binaries are installed or the server does not start; says the fix."""


def bin_dir() -> str:
    """The newest /usr/lib/postgresql/VERSION/bin holding initdb and pg_ctl."""
    found = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
             if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(os.path.join(d, "pg_ctl"), os.X_OK)]
    if not found:
        raise PostgresUnavailable("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin; "
                                  "run `make postgres-deps` (apt-get install postgresql)")
    return max(found, key=lambda d: [int(p) if p.isdigit() else 0 for p in d.split("/")[-2].split(".")])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as (None when we are not root)."""
    if os.geteuid() != 0:
        return None
    for name in _RUN_AS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable(f"running as root and none of the accounts {_RUN_AS} exists; "
                              f"create one (useradd --system postgres) or run as an ordinary user")


class PostgresServer:
    """One throwaway server; `start()` it, read `url`, `stop()` it (or use it as a context manager)."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.port = 0
        self.root = ""
        self._user = _run_as()

    @property
    def data(self) -> str:
        """The data directory (inside the temp dir)."""
        return os.path.join(self.root, "data")

    @property
    def url(self) -> str:
        """The server's URL, connecting as the superuser to the `postgres` database."""
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        user = self._user
        proc = subprocess.run([os.path.join(self.bin, args[0]), *args[1:]], capture_output=True, text=True,
                              cwd=self.root, user=user.pw_uid if user else None,
                              group=user.pw_gid if user else None, extra_groups=[] if user else None,
                              check=False)
        if proc.returncode != 0:
            raise PostgresUnavailable(f"{args[0]} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}"
                                      f"\n{self._server_log()}")

    def _server_log(self) -> str:
        with contextlib.suppress(OSError), open(os.path.join(self.root, "server.log")) as f:
            return f.read()[-3000:]
        return ""

    def start(self) -> PostgresServer:
        """initdb a temp dir and start the server on a free port; returns once it accepts connections."""
        self.root = tempfile.mkdtemp(prefix="fedflow-pg-")
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        try:
            self._run("initdb", "-D", self.data, "-U", _SUPERUSER, "--auth=trust", "-E", "UTF8",
                      "--locale=C", "--no-sync")
            for _attempt in range(3):  # the free port may be taken between the probe and the start
                self.port = free_port()
                options = (f"-h 127.0.0.1 -p {self.port} -k {self.root} -F -c max_connections=200 "
                           f"-c shared_buffers=32MB")
                try:
                    self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "server.log"), "-w",
                              "-t", "60", "-o", options, "start")
                    return self
                except PostgresUnavailable:
                    if "could not bind" not in self._server_log():
                        raise
            raise PostgresUnavailable(f"PostgreSQL found no free port:\n{self._server_log()}")
        except BaseException:
            self.stop()
            raise

    def restart(self) -> None:
        """Restart the server (fast shutdown: its clients' connections break), same data, same port."""
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "server.log"), "-m", "fast", "-w",
                  "-t", "60", "restart")

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away) and remove the temp dir."""
        if not self.root:
            return
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            with contextlib.suppress(PostgresUnavailable):
                self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "30", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = ""

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """A started throwaway server's URL for the `with` block."""
    with PostgresServer() as server:
        yield server.url


def main(argv: list[str]) -> int:
    """`pg_server.py -- COMMAND...`: run COMMAND with FEDFLOW_TEST_POSTGRES set; its exit status."""
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        print("usage: python tests/pg_server.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        print(f"pg_server: {exc}", file=sys.stderr)
        return 1
    print(f"pg_server: throwaway PostgreSQL at {server.url}", file=sys.stderr, flush=True)
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        child = subprocess.Popen(argv, env={**os.environ, ENV_VAR: server.url})
        while True:
            try:
                return child.wait()
            except InterruptedError:
                continue
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
