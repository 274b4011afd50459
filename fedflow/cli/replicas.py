"""`fedflow replicas --db FILE`: the replica slots a store holds for its peers.

Reads the store file (beside a running `serve` too; nothing is written) and prints
one JSON object: ``{"replicas": [{"source", "flows", "bytes", "updated", "sender"}, ...]}``
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

__all__ = ["add_replicas_parser", "run_replicas"]


def add_replicas_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `replicas` verb's parser to `sub`."""
    p = sub.add_parser("replicas", help="list the replica slots a store holds for its peers",
                       description="List the replica slots held in a store file: source, flows, bytes, "
                                   "when and from whom.")
    p.add_argument("--db", metavar="FILE", required=True, help="the SQLite store file `fedflow serve` uses")
    return p


def run_replicas(ns: argparse.Namespace) -> int:
    """Print the slots of `ns.db`; the exit status."""
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
