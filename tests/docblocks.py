"""Helpers for tests/test_docs.py (no tests here): find the fenced blocks of a Markdown page and run them.

How a block is treated depends on its info string (the words after the opening fence):

- ``python``: run with this venv's python, in the page's work folder; exit 0.
  ``python repeat=2`` runs it twice in the same folder (an example that must be
  runnable again).
- ``sh``: each command (``\\`` continues a line) runs in bash; exit 0.
- ``console``: ``$ COMMAND`` lines, each followed by the output it must print
  (stdout, then stderr; ``...`` matches anything, as in doctest). A command
  ending in ``# exit N`` must exit N, any other 0.
- ``output``: what the block just before it printed (stdout), matched the same way.
- any language with ``file=NAME`` (``python file=greet.py``, ``toml file=a.toml``,
  ``js file=client.js``): written into the work folder, not run.
- ``text``, ``json``, ``toml``, ``proto``: shown, not run (output and illustrations).

Every block of a page runs in page order, in one work folder (holding links to
`peers/` and `proto/`), with this venv's `bin` first on PATH. Some commands are
taken over, because a reader runs them in another terminal or once per machine:

- ``fedflow serve ...`` starts in the background (as in a second terminal); the
  harness waits for its health check and stops it when the page ends. A
  ``fedflow serve ... # exit N`` is expected to fail, so it runs in the foreground.
- ``export NAME=VALUE`` sets NAME for the page's later commands.
- ``npm install PKG...`` installs once into ``build/docs-node`` and links its
  ``node_modules`` into the work folder.
- ``grpcurl ...`` is replayed by `docs_grpcurl` (grpcurl is not installed here).
- ``make demo`` and ``make test`` are run by tests/test_demo.py and by the suite
  itself, so they are passed over (``RUN_ELSEWHERE``).

Every address ``127.0.0.1:5xxxx`` on a page is mapped to a free port, the same
port for the same address across the page, in commands, files and outputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import doctest
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from fedflow.client import ControlClient

try:
    from docs_grpcurl import grpcurl
    from test_cli_support import free_ports
except ImportError:  # tests/ imported as a package
    from tests.docs_grpcurl import grpcurl
    from tests.test_cli_support import free_ports

REPO = Path(__file__).resolve().parent.parent
RUN = {"python", "sh", "console"}
SHOWN = {"text", "json", "toml", "proto"}
RUN_ELSEWHERE = {"make demo": "tests/test_demo.py", "make test": "the test suite itself"}
NODE_CACHE = REPO / "build" / "docs-node"
COMMAND_TIMEOUT = 60.0
_FENCE = re.compile(r"^(\s*)(`{3,})(.*)$")
_ADDRESS = re.compile(r"127\.0\.0\.1:(5\d{4})")
_EXIT = re.compile(r"#\s*exit (\d+)\s*$")


@dataclasses.dataclass
class Block:
    """One fenced block of a page: its language, options (``file=``, ``repeat=``), text and line."""

    lang: str
    options: dict[str, str]
    text: str
    line: int

    def where(self, page: Path) -> str:
        """`page:line`, for failure messages."""
        return f"{page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of `page`, in order."""
    found, lines, i = [], page.read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, info = opening.groups()
        words, start = info.split(), i + 1
        body, i = [], i + 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        options = dict(word.split("=", 1) for word in words[1:] if "=" in word)
        found.append(Block(words[0] if words else "", options, "\n".join(body) + "\n", start))
        i += 1
    return found


def commands(text: str) -> list[str]:
    """The commands of an ``sh`` block: comments and blank lines dropped, ``\\`` continuations joined."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.strip())
    return out


def transcript(text: str) -> list[tuple[str, str]]:
    """The ``(command, expected output)`` pairs of a ``console`` block."""
    pairs: list[tuple[str, str]] = []
    continuing = False
    for line in text.splitlines():
        if continuing:
            pairs[-1] = (pairs[-1][0][:-1] + " " + line.strip(), "")
        elif line.startswith("$ "):
            pairs.append((line[2:].strip(), ""))
        elif pairs:
            pairs[-1] = (pairs[-1][0], pairs[-1][1] + line + "\n")
        continuing = bool(pairs) and pairs[-1][0].endswith("\\") and not pairs[-1][1]
    return pairs


def matches(want: str, got: str) -> bool:
    """`got` is `want`, where ``...`` in `want` matches anything (trailing spaces ignored)."""
    def tidy(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"

    return doctest.OutputChecker().check_output(tidy(want), tidy(got), doctest.ELLIPSIS)


class Session:
    """The work folder, environment and servers of one page while its blocks run."""

    def __init__(self, page: Path, workdir: Path) -> None:
        self.page, self.workdir = page, workdir
        self.ports: dict[str, str] = {}
        self.servers: list[subprocess.Popen[bytes]] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FEDFLOW_")}
        self.env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                        PYTHONUNBUFFERED="1", GRPC_VERBOSITY="ERROR")
        for name in ("peers", "proto"):
            (workdir / name).symlink_to(REPO / name)
        (workdir / ".venv").symlink_to(sys.prefix)
        self.last_output = ""

    # ---------------------------------------------------------------- addresses

    def mapped(self, text: str) -> str:
        """`text` with every documented 127.0.0.1:5xxxx address replaced by this session's free port."""
        def swap(match: re.Match[str]) -> str:
            if match.group(0) not in self.ports:
                self.ports[match.group(0)] = f"127.0.0.1:{free_ports(1)[0]}"
            return self.ports[match.group(0)]

        return _ADDRESS.sub(swap, text)

    # ------------------------------------------------------------------- blocks

    def run_block(self, block: Block) -> None:
        """Run, write or check `block` as its info string says."""
        where = block.where(self.page)
        if "file" in block.options:
            (self.workdir / block.options["file"]).write_text(self.mapped(block.text), encoding="utf-8")
        elif block.lang == "python":
            for _ in range(int(block.options.get("repeat", "1"))):
                self.run_python(block, where)
        elif block.lang == "sh":
            for command in commands(block.text):
                rc, out = self.run_command(command)
                assert rc == 0, f"{where}: `{command}` exited {rc}:\n{out}"
        elif block.lang == "console":
            for command, want in transcript(block.text):
                self.check_command(command, want, where)
        elif block.lang == "output":
            want = self.mapped(block.text)
            assert matches(want, self.last_output), f"{where}: expected\n{want}\ngot\n{self.last_output}"
        else:
            assert block.lang in SHOWN, (f"{where}: a ```{block.lang or '(no language)'} block is neither run nor "
                                         f"shown; tag it with one of {sorted(RUN | SHOWN)} (see tests/docblocks.py)")

    def run_python(self, block: Block, where: str) -> None:
        """Run a python block in the work folder; it must exit 0."""
        script = self.workdir / f"block_{block.line}.py"
        script.write_text(self.mapped(block.text), encoding="utf-8")
        cp = subprocess.run([sys.executable, script.name], cwd=self.workdir, env=self.env, capture_output=True,
                            text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, f"{where}: python exited {cp.returncode}:\n{cp.stdout}{cp.stderr}"
        self.last_output = cp.stdout

    def check_command(self, command: str, want: str, where: str) -> None:
        """Run one console command: its output must match `want`, its exit status its ``# exit N``."""
        rc, got = self.run_command(command)
        want = self.mapped(want)
        expected_rc = int(_EXIT.search(command).group(1)) if _EXIT.search(command) else 0
        if command.startswith("grpcurl"):
            expected_rc = 1 if want.startswith(("ERROR:", "Error invoking")) else 0
        assert rc == expected_rc, f"{where}: `{command}` exited {rc}, not {expected_rc}:\n{got}"
        assert matches(want, got), f"{where}: `{command}`: expected\n{want}\ngot\n{got}"

    # ----------------------------------------------------------------- commands

    def run_command(self, command: str) -> tuple[int, str]:
        """Run one documented command (or the harness's stand-in for it): exit status and output."""
        command = self.mapped(command)
        words = shlex.split(command, comments=True)
        if " ".join(words) in RUN_ELSEWHERE:
            return 0, ""
        if words[:2] == ["fedflow", "serve"] and not _EXIT.search(command):
            return self.serve([w for w in words if w != "&"])
        if words[0] == "export":
            for assignment in words[1:]:
                name, _, value = assignment.partition("=")
                self.env[name] = value
            return 0, ""
        if words[:2] == ["npm", "install"]:
            return self.npm_install(words[2:])
        if words[0] == "grpcurl":
            return grpcurl(words[1:])
        cp = subprocess.run(["bash", "-c", command], cwd=self.workdir, env=self.env, capture_output=True,
                            text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
        self.last_output = cp.stdout
        return cp.returncode, cp.stdout + cp.stderr

    def serve(self, words: list[str]) -> tuple[int, str]:
        """Start `fedflow serve` in the background and wait (bounded) until its health check answers."""
        address = _flag(words, "--listen")
        if address is None and _flag(words, "--config"):
            config = tomllib.loads((self.workdir / _flag(words, "--config")).read_text(encoding="utf-8"))
            address = config.get("listen")
        assert address, f"`{' '.join(words)}`: the harness finds the address in --listen or the config's listen"
        log = self.workdir / f"serve-{len(self.servers)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(words, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.servers.append(proc)
        end = time.monotonic() + 20.0
        tls = None
        if _flag(words, "--tls-cert"):  # a served certificate is also a client certificate (fedflow.cli.certs)
            from fedflow.grpc.security import TlsConfig

            tls = TlsConfig.from_files(*(str(self.workdir / _flag(words, f"--tls-{f}")) for f in ("cert", "key", "ca")))
        with ControlClient(address, deadline=1.0, tls=tls) as client:
            while not client.health():
                if proc.poll() is not None or time.monotonic() > end:
                    return proc.poll() or 1, log.read_text(errors="replace")
                time.sleep(0.05)
        if proc.poll() is not None:  # another server answered at that address
            return proc.returncode, log.read_text(errors="replace")
        return 0, ""

    def npm_install(self, packages: list[str]) -> tuple[int, str]:
        """Install `packages` once into NODE_CACHE (bounded) and link its node_modules here."""
        wanted = NODE_CACHE / "-".join(p.replace("/", "_").replace("@", "") for p in sorted(packages))
        if not (wanted / "node_modules").is_dir():
            staging = wanted.with_name(wanted.name + f".{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            cp = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", *packages], cwd=staging,
                                capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
            if cp.returncode != 0:
                return cp.returncode, cp.stdout + cp.stderr
            with contextlib.suppress(OSError):
                staging.rename(wanted)
            shutil.rmtree(staging, ignore_errors=True)
        (self.workdir / "node_modules").symlink_to(wanted / "node_modules")
        return 0, ""

    def close(self) -> None:
        """Stop every server the page started: SIGTERM, then SIGKILL of its process group."""
        for proc in self.servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _flag(words: list[str], name: str) -> str | None:
    for i, word in enumerate(words):
        if word == name and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None
