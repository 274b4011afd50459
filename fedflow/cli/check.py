"""`fedflow check --db FILE --load MODULE...`: would new flow code diverge from the flows in a store?

Opens the store file read-only in effect (no recovery, no timers, nothing
written), loads the modules the way `serve` does, and replays every live
flow with `Engine.check`. Prints one JSON object (``{"ok", "flows"}``) and,
for each flow that would diverge, one line on stderr naming it and the first
difference. Exit 0 when every flow replays, 1 when one would diverge (or the
store cannot be read), 2 on bad usage. Run it before deploying flow code.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..engine import Engine
from ..versioning import check_report_text
from .config import UsageError
from .loader import import_target, load_into

__all__ = ["add_check_parser", "run_check"]

_EPILOG = """\
example:
  fedflow check --db shop.db --load shop_flows.py

Prints {"ok": true|false, "flows": [{"id", "flow", "ok", "error"}, ...]}; exit 0 when every
live flow replays under the loaded code, 1 when one would diverge, 2 on bad usage."""


def add_check_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `check` verb's parser to `sub`."""
    p = sub.add_parser("check", help="replay a store's live flows against new flow code, writing nothing",
                       description="Replay every live flow in a store file against the flow code of the "
                                   "--load modules, without running any step, call or timer and without "
                                   "writing: run it before deploying new flow code.",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", metavar="FILE", required=True, help="the SQLite store file to check")
    p.add_argument("--load", metavar="MODULE_OR_FILE", action="append", required=True,
                   help="module whose register(engine) defines the flows (repeatable)")
    p.add_argument("--id", metavar="ID", action="append", dest="ids", help="check only this flow (repeatable)")
    return p


def run_check(ns: argparse.Namespace) -> int:
    """Run `fedflow check`; print the report; the exit status (0 all ok, 1 a flow would diverge)."""
    if not os.path.isfile(ns.db):
        raise UsageError(f"--db {ns.db}: no such store file; point --db at the store `fedflow serve` uses")
    modules = [(target, import_target(target)) for target in ns.load]
    with Engine("check", store=ns.db, recover=False, run_timers=False) as engine:
        for target, module in modules:
            load_into(engine, target, module)
        report = engine.check(ns.ids)
    for entry in report:
        if not entry["ok"]:
            sys.stderr.write(f"fedflow check: flow {entry['id']} ({entry['flow']}) would diverge: "
                             f"{entry['error']}\n")
    sys.stdout.write(check_report_text(report) + "\n")
    sys.stdout.flush()
    return 0 if all(entry["ok"] for entry in report) else 1
