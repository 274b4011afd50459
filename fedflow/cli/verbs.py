"""The client verbs of the command line: one RPC each, one JSON object printed.

Each verb is a `Verb`: its arguments, an example for `--help`, and the
`ControlClient` call that does it. `run_client(ns)` checks the arguments
(bad ones raise `UsageError`, exit 2), makes the call (fedflow errors,
exit 1) and returns the JSON text to print.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

import grpc

from ..client import ControlClient
from ..errors import PeerUnavailable
from ..grpc import security
from ..limits import Limits
from ..store.base import DEFAULT_PAGE, MAX_PAGE, STATUSES
from . import time_verbs
from .config import TlsFiles, UsageError, parse_address, read_secret
from .json_args import parse_json_arg, to_json
from .watch import watching

__all__ = ["CLIENT_VERBS", "DEFAULT_DEADLINE", "Verb", "add_client_options", "parse_json_arg", "run_client",
           "to_json"]

DEFAULT_DEADLINE = 30.0
_AT = "127.0.0.1:50051"
_JSON_HELP = "a JSON value (default null); bytes as {\"$bytes\": \"<base64>\"}, a Fail as {\"$fail\": reason}"


@dataclasses.dataclass(frozen=True)
class Verb:
    """One client verb: its help line, its arguments, an example, and what it calls."""

    help: str
    example: str
    action: Callable[[Any, argparse.Namespace], dict[str, Any]]
    args: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = ()

    def add_to(self, sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
        """Add this verb's parser, called `name`, with the common client options, to `sub`."""
        p = sub.add_parser(name, help=self.help, description=self.help[:1].upper() + self.help[1:] + ".",
                           epilog=f"example:\n  {self.example}\n\n{_COMMON_EPILOG}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        for flags, options in self.args:
            p.add_argument(*flags, **options)
        add_client_options(p)
        return p


_COMMON_EPILOG = ("Prints one JSON object; exit 0 ok, 1 flow or peer error, 2 bad usage.\n"
                  "--at defaults to $FEDFLOW_AT; the token to $FEDFLOW_TOKEN.")


def add_client_options(p: argparse.ArgumentParser) -> None:
    """Add the options every client verb takes (--at, --token-file, --tls-*, --deadline, ...) to `p`."""
    p.add_argument("--at", metavar="HOST:PORT", default=os.environ.get("FEDFLOW_AT"),
                   help="the instance to talk to (default: $FEDFLOW_AT)")
    p.add_argument("--token-file", metavar="F", help="file holding the shared token (default: $FEDFLOW_TOKEN)")
    p.add_argument("--tls-ca", metavar="F", help="PEM file: the CA that signs the server's certificate")
    p.add_argument("--tls-cert", metavar="F", help="PEM file: this client's certificate")
    p.add_argument("--tls-key", metavar="F", help="PEM file: this client's private key")
    p.add_argument("--deadline", metavar="S", type=float, default=DEFAULT_DEADLINE,
                   help=f"give up after S seconds ({DEFAULT_DEADLINE:g})")
    p.add_argument("--max-message-bytes", metavar="N", type=int, help="largest gRPC message, both ways (8 MiB)")


_ID = (("flow_id",), {"metavar": "ID", "help": "the flow's id"})
_VALUE = (("value",), {"metavar": "JSON", "nargs": "?", "help": _JSON_HELP})
_RESUME_VALUE = (("value",), {"metavar": "JSON", "help": "the value to deliver, as JSON (required: write null "
                                                          "for none); bytes as {\"$bytes\": \"<base64>\"}"})
_TAG = (("--tag",), {"metavar": "TAG", "help": "refuse (exit 1, nothing changes) unless the flow waits on exactly "
                                               "TAG, so a retried resume never feeds its next wait; "
                                               "`fedflow pending` shows the tag"})

_LIST_ARGS = (
    (("--status",), {"choices": sorted(STATUSES), "help": "only flows in this status"}),
    (("--flow",), {"metavar": "NAME", "help": "only runs of this registered flow"}),
    (("--id-prefix",), {"metavar": "TEXT", "help": "only flows whose id starts with TEXT"}),
    (("--limit",), {"metavar": "N", "type": int, "default": DEFAULT_PAGE,
                    "help": f"flows per page, 1 to {MAX_PAGE} ({DEFAULT_PAGE})"}),
    (("--page-token",), {"metavar": "T", "help": "the next_page_token a previous page printed"}),
)

CLIENT_VERBS: dict[str, Verb] = {
    "call": Verb("run an exposed function on the instance", f"fedflow call --at {_AT} inc 41",
                 lambda c, ns: c.call(ns.fn, ns.value),
                 ((("fn",), {"metavar": "FN", "help": "the exposed function's name"}), _VALUE)),
    "start": Verb("start a registered flow", f"fedflow start --at {_AT} publish '\"hello\"' --id post-1",
                  lambda c, ns: c.start(ns.flow, ns.value, flow_id=ns.id),
                  ((("flow",), {"metavar": "FLOW", "help": "the registered flow's name"}), _VALUE,
                   (("--id",), {"metavar": "ID", "help": "flow id; an existing id of the same flow prints that "
                                                         "flow's outcome"}))),
    "resume": Verb("resume a suspended flow with a value",
                   f"fedflow resume --at {_AT} post-1 '\"approved\"' --tag approve",
                   lambda c, ns: c.resume(ns.flow_id, ns.value, tag=ns.tag), (_ID, _RESUME_VALUE, _TAG)),
    "cancel": Verb("cancel a live flow", f"fedflow cancel --at {_AT} post-1",
                   lambda c, ns: c.cancel(ns.flow_id), (_ID,)),
    "status": Verb("show a flow's status", f"fedflow status --at {_AT} post-1",
                   lambda c, ns: c.status(ns.flow_id), (_ID,)),
    "result": Verb("show a done flow's result", f"fedflow result --at {_AT} post-1",
                   lambda c, ns: c.result(ns.flow_id), (_ID,)),
    "forget": Verb("drop a finished flow's record", f"fedflow forget --at {_AT} post-1",
                   lambda c, ns: c.forget(ns.flow_id), (_ID,)),
    "list": Verb("list flows, newest first, one page at a time",
                 f"fedflow list --at {_AT} --status suspended --limit 50",
                 lambda c, ns: c.list(ns.status, ns.flow, ns.limit, ns.page_token, ns.id_prefix), _LIST_ARGS),
    "pending": Verb("list suspended flows, the tag each waits on, and what each host request asks "
                    "(kind, payload)", f"fedflow pending --at {_AT}",
                    lambda c, ns: c.pending()),
    "gc": Verb("drop every done, failed, cancelled and moved record", f"fedflow gc --at {_AT}",
               lambda c, ns: c.gc()),
    "peers": Verb("list the instance's peers with address and health", f"fedflow peers --at {_AT}",
                  lambda c, ns: c.peers()),
    "replicate": Verb("push the instance's store into a peer's replica slot",
                      f"fedflow replicate --at {_AT} --to b",
                      lambda c, ns: watching("fedflow replicate", lambda report: c.replicate(ns.to, report)),
                      ((("--to",), {"metavar": "PEER", "required": True, "help": "the peer to push to"}),)),
    "restore": Verb("import a replica a peer holds", f"fedflow restore --at {_AT} --from b --source a",
                    lambda c, ns: watching("fedflow restore",
                                           lambda report: c.restore(ns.from_peer, ns.source, report)),
                    ((("--from",), {"metavar": "PEER", "dest": "from_peer", "required": True,
                                    "help": "the peer holding the replica"}),
                     (("--source",), {"metavar": "NAME",
                                      "help": "whose replica (default: the instance's own name)"}))),
    "handoff": Verb("move every suspended flow to a peer", f"fedflow handoff --at {_AT} --to c",
                    lambda c, ns: watching("fedflow handoff", lambda report: c.handoff(ns.to, report)),
                    ((("--to",), {"metavar": "PEER", "required": True, "help": "the peer taking the flows"}),)),
    "timers": Verb("list the flows waiting on a timer, earliest first", f"fedflow timers --at {_AT}",
                   time_verbs.timers_verb),
    "wake": Verb("fire a flow's timer now (end its sleep or time out its wait)", f"fedflow wake --at {_AT} nap-1",
                 time_verbs.wake_verb, (_ID,)),
    "schedule": Verb("add, list or remove schedules", f"fedflow schedule --at {_AT} add nightly report "
                     f"--cron '0 3 * * *'", time_verbs.schedule_verb, time_verbs.SCHEDULE_ARGS),
}


def _token(ns: argparse.Namespace) -> str | None:
    if ns.token_file:
        return read_secret(ns.token_file)
    return security.token_from_env()


def _tls(ns: argparse.Namespace) -> TlsFiles | None:
    files = TlsFiles(ns.tls_cert, ns.tls_key, ns.tls_ca)
    if not (files.cert or files.key or files.ca):
        return None
    if bool(files.cert) != bool(files.key):
        raise UsageError("--tls-cert and --tls-key go together (a client certificate and its key)")
    return files


def _limits(ns: argparse.Namespace) -> Limits | None:
    if ns.max_message_bytes is None:
        return None
    try:
        return Limits(max_message_bytes=ns.max_message_bytes)
    except ValueError as exc:
        raise UsageError(f"--max-message-bytes: {exc}") from None


def run_client(ns: argparse.Namespace, action: Callable[[Any, argparse.Namespace], dict[str, Any]] | None = None
               ) -> str:
    """Run client verb `ns.verb` (or `action`, given the client and `ns`) and return the JSON
    text to print; raises fedflow errors."""
    if not ns.at:
        raise UsageError(f"{ns.verb} needs --at HOST:PORT (or FEDFLOW_AT in the environment)")
    parse_address(ns.at)
    if ns.deadline is None or not math.isfinite(ns.deadline) or ns.deadline <= 0:
        raise UsageError("--deadline must be a number of seconds above 0")
    if hasattr(ns, "value"):
        ns.value = parse_json_arg(ns.value)
    if getattr(ns, "limit", None) is not None and not 1 <= ns.limit <= MAX_PAGE:
        raise UsageError(f"--limit must be 1 to {MAX_PAGE}, not {ns.limit}")
    token, tls, limits = _token(ns), _tls(ns), _limits(ns)
    try:
        with ControlClient(ns.at, token=token, tls=tls, limits=limits, deadline=ns.deadline) as client:
            return to_json((action or CLIENT_VERBS[ns.verb].action)(client, ns))
    except PeerUnavailable as exc:
        raise _about_the_instance(exc, ns) from exc.__cause__


def _about_the_instance(exc: PeerUnavailable, ns: argparse.Namespace) -> PeerUnavailable:
    """Reword the client's own "peer unavailable" (the --at instance, not one of its peers)."""
    code = getattr(exc.__cause__, "code", None)
    trailers = getattr(exc.__cause__, "trailing_metadata", lambda: None)() or ()
    if exc.peer != ns.at or not callable(code) or any(key == "fedflow-error" for key, _ in trailers):
        return exc  # the instance answered: one of ITS peers is unavailable
    details = getattr(exc.__cause__, "details", lambda: "")() or "no details"
    if code() is grpc.StatusCode.DEADLINE_EXCEEDED:
        return PeerUnavailable(f"the instance at {ns.at} did not answer within {ns.deadline:g}s; "
                               f"raise --deadline or check its log", ns.at)
    tls = ("it may serve TLS: pass --tls-ca/--tls-cert/--tls-key" if not ns.tls_ca else
           "if it serves TLS, check its CA signed --tls-cert")
    return PeerUnavailable(f"no fedflow instance answered at {ns.at} ({details}); check `fedflow serve` "
                           f"runs there and --at (or FEDFLOW_AT) is right ({tls})", ns.at)
