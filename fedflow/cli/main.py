"""The `fedflow` command line: `fedflow serve` and the client verbs.

Client verbs print ONE JSON object on stdout (values in the tagged form of
`fedflow.values`: ``{"$bytes": b64}``, ``{"$fail": reason}``, ``{"$map": [[k, v]]}``;
ints exact) and, on failure, one line on stderr that names the fix.

Exit codes: 0 success; 1 a flow or peer error (unknown flow, failed flow,
unreachable instance, port in use, a file that is not a fedflow store);
2 bad usage (unknown verb or flag, invalid JSON argument, bad config, a
`--load` that fails); 130 interrupted.

>>> build_parser()[0].prog
'fedflow'
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

# grpc's C core prints INFO lines (a failed TLS handshake...) to stderr unless told otherwise before it
# loads; client verbs promise one line on stderr. GRPC_VERBOSITY=INFO in the environment shows them again.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from .. import __version__
from ..errors import FedflowError
from .check import add_check_parser, run_check
from .config import LOG_LEVELS, UsageError
from .federation_settings import add_federation_flags
from .loader import LoadError
from .replicas import add_replicas_parser, run_replicas
from .verbs import CLIENT_VERBS, run_client
from .wording import for_the_cli

__all__ = ["build_parser", "main"]

_MAIN_EPILOG = """\
examples:
  fedflow serve --name a --listen 127.0.0.1:50051 --load peers/publishing.py
  fedflow start --at 127.0.0.1:50051 publish '"hello"' --id post-1
  fedflow status --at 127.0.0.1:50051 post-1

Client commands print one JSON object; bytes and Fail values use the tagged
forms {"$bytes": "<base64>"} and {"$fail": reason}. Exit codes: 0 ok,
1 flow or peer error, 2 bad usage. `fedflow VERB --help` shows each verb.
Environment: FEDFLOW_AT (default --at), FEDFLOW_TOKEN (default token)."""

_SERVE_EPILOG = """\
example:
  fedflow serve --name a --listen 127.0.0.1:50051 --db a.db \\
      --load peers/publishing.py --peer fed=127.0.0.1:50052
  fedflow serve --config peers/federation/a.toml      # the same settings in TOML

Loads each --load module (dotted name or .py path) and calls its
register(engine), re-runs flows a crash left running, then serves until
SIGTERM/SIGINT. Flags override the --config file."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print `prog: error: message` and a pointer to --help, then exit 2."""
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _serve_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="serve one fedflow instance over gRPC", epilog=_SERVE_EPILOG,
                       description="Run one fedflow instance: its store, its peers and the modules it loads.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", help="this instance's name (peers know it by this name)")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to serve on, e.g. 127.0.0.1:50051")
    p.add_argument("--db", metavar="PATH", help="SQLite store file (default: NAME.db in the working directory), "
                   "or postgresql://USER:PASSWORD@HOST:PORT/DBNAME to share a PostgreSQL store with other serves")
    p.add_argument("--lease", metavar="S", type=float,
                   help="PostgreSQL store: seconds after this serve's death before another takes its flows over (5)")
    p.add_argument("--load", metavar="MODULE_OR_FILE", action="append",
                   help="module whose register(engine) exposes functions and defines flows (repeatable)")
    p.add_argument("--peer", metavar="NAME=HOST:PORT", action="append", help="a peer to connect to (repeatable)")
    p.add_argument("--config", metavar="FILE.toml", help="read these settings from a TOML file")
    p.add_argument("--token-file", metavar="F", help="require this shared token on every RPC (and send it to peers)")
    p.add_argument("--deadline", metavar="S", type=float, help="default deadline of remote calls, in seconds (10)")
    p.add_argument("--log-level", metavar="LEVEL", type=str.upper, choices=LOG_LEVELS,
                   help=f"one of {', '.join(LOG_LEVELS)} (INFO)")
    for flag, what in (("cert", "this server's certificate"), ("key", "its private key"),
                       ("ca", "the CA that signs client certificates")):
        p.add_argument(f"--tls-{flag}", metavar="F", help=f"PEM file: {what}")
    p.add_argument("--http", metavar="HOST:PORT", help="also serve the web console, /metrics and /healthz here")
    p.add_argument("--http-insecure", action="store_true",
                   help="allow --http off loopback without --token-file (a trusted network only)")
    for flag, what in (("message-bytes", "largest gRPC message, both ways (8 MiB)"),
                       ("concurrent-rpcs", "calls served at once; more get RESOURCE_EXHAUSTED (256)"),
                       ("replica-bytes", "largest replica held for a peer (256 MiB)")):
        p.add_argument(f"--max-{flag}", metavar="N", type=int, help=what)
    add_federation_flags(p)
    return p


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and, by verb, each verb's own parser."""
    parser = Parser(prog="fedflow", epilog=_MAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                    description="Durable Python workflows that suspend, survive crashes and federate over gRPC.")
    parser.add_argument("--version", action="version", version=f"fedflow {__version__}")
    sub = parser.add_subparsers(dest="verb", title="commands", metavar="COMMAND", parser_class=Parser)
    verbs = {"serve": _serve_parser(sub), "check": add_check_parser(sub), "replicas": add_replicas_parser(sub)}
    for name, verb in CLIENT_VERBS.items():
        verbs[name] = verb.add_to(sub, name)
    return parser, verbs


def _parse(argv: list[str]) -> argparse.Namespace:
    parser, verbs = build_parser()
    if argv and argv[0] in verbs:
        ns = verbs[argv[0]].parse_intermixed_args(argv[1:])
        ns.verb = argv[0]
        return ns
    parser.parse_args(argv)  # --help, --version, or an unknown verb: exits
    parser.error("choose a command, e.g. `fedflow serve` or `fedflow status`")


def _fail(code: int, message: str) -> int:
    sys.stderr.write("fedflow: " + " ".join(str(message).split()) + "\n")
    sys.stderr.flush()
    return code


def _dispatch(ns: argparse.Namespace) -> int:
    if ns.verb == "serve":
        from .serve import serve  # grpc and the server load only for serve

        return serve(ns)
    if ns.verb == "check":
        return run_check(ns)
    if ns.verb == "replicas":
        return run_replicas(ns)
    text = run_client(ns)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on `argv` (default: sys.argv[1:]); the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")
    ns = _parse(args)
    try:
        return _dispatch(ns)
    except (UsageError, LoadError) as exc:
        return _fail(2, str(exc))
    except NotImplementedError as exc:
        return _fail(2, f"{exc}")
    except FedflowError as exc:
        kind = "" if type(exc) is FedflowError else f"{type(exc).__name__}: "
        flow_id = getattr(exc, "id", None)
        return _fail(1, kind + for_the_cli(str(exc), flow_id if isinstance(flow_id, str) else None))
    except OSError as exc:
        return _fail(1, str(exc))
    except KeyboardInterrupt:
        return _fail(130, "interrupted")
    except Exception as exc:  # the one place a surprise becomes a line instead of a traceback
        if os.environ.get("FEDFLOW_DEBUG"):
            raise
        return _fail(1, f"internal error: {type(exc).__name__}: {exc}; set FEDFLOW_DEBUG=1 for a "
                        f"traceback and report it")


if __name__ == "__main__":
    raise SystemExit(main())
