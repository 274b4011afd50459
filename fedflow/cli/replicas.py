"""`fedflow replicas --at HOST:PORT` or `--db FILE`: the replica slots an instance holds
for its peers.

`--at` asks a running `serve` over the wire (ControlService `Replicas`, an operator
credential's verb; the client flags of the other verbs apply); `--db` reads the store
file itself (beside a running `serve` too; nothing is written). Either prints one JSON
object: ``{"replicas": [{"source", "flows", "bytes", "updated", "sender"}, ...]}``
(`updated`: when the slot was last written, seconds since the epoch; `sender`: the
peer whose token wrote it, null for the shared or operator token).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..slots import slots
from ..store.sqlite import SQLiteStore
from .config import UsageError
from .verbs import add_client_options, run_client

__all__ = ["add_replicas_parser", "run_replicas"]


def add_replicas_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `replicas` verb's parser to `sub`."""
    p = sub.add_parser("replicas", help="list the replica slots an instance holds for its peers",
                       description="List the replica slots an instance holds (--at) or a store file holds "
                                   "(--db): source, flows, bytes, when and from whom.",
                       epilog="examples:\n  fedflow replicas --at 127.0.0.1:50051\n  fedflow replicas --db a.db",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", metavar="FILE", help="read this SQLite store file instead of asking --at")
    add_client_options(p)
    return p


def run_replicas(ns: argparse.Namespace) -> int:
    """Print the slots of `ns.db`, else of the instance at `ns.at`; the exit status."""
    if ns.db is None:
        if not ns.at:
            raise UsageError("replicas needs --at HOST:PORT (a running serve; or FEDFLOW_AT in the environment) "
                             "or --db FILE (its store file)")
        text = run_client(ns, lambda client, _ns: client.replicas())
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return 0
    if not os.path.isfile(ns.db):
        raise UsageError(f"--db {ns.db}: no such store file; point --db at the store `fedflow serve` uses")
    store = SQLiteStore(ns.db, durability="process")
    try:
        held = slots(store)
    finally:
        store.close()
    sys.stdout.write(json.dumps({"replicas": held}) + "\n")
    sys.stdout.flush()
    return 0
