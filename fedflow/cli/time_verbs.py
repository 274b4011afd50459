"""The time verbs of the command line: `fedflow timers`, `fedflow wake ID` and
`fedflow schedule add|list|rm`. Each action takes a `ControlClient` and the parsed
arguments and returns the JSON object to print (see `fedflow.cli.verbs`)."""

from __future__ import annotations

import argparse
from typing import Any

from ..schedules import CATCHUP, OVERLAP, make_spec
from .config import UsageError

__all__ = ["SCHEDULE_ARGS", "schedule_verb", "timers_verb", "wake_verb"]

#: The arguments of `fedflow schedule`.
SCHEDULE_ARGS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("op",), {"choices": ("add", "list", "rm"), "help": "add (or replace) a schedule, list them, or rm one"}),
    (("name",), {"metavar": "NAME", "nargs": "?", "help": "the schedule's name (add, rm)"}),
    (("flow",), {"metavar": "FLOW", "nargs": "?", "help": "the registered flow each tick starts (add)"}),
    (("--cron",), {"metavar": "EXPR", "help": "five-field cron expression in UTC, e.g. '0 3 * * *'"}),
    (("--every",), {"metavar": "S", "type": float, "help": "seconds between ticks"}),
    (("--input",), {"metavar": "JSON", "help": "the input every tick's flow gets under \"input\""}),
    (("--catchup",), {"choices": CATCHUP, "default": "latest",
                      "help": "ticks missed while down: none, latest (default) or all"}),
    (("--overlap",), {"choices": OVERLAP, "default": "skip",
                      "help": "a tick while the previous tick's flow is live: skip (default) or allow"}),
    (("--paused",), {"action": "store_true", "help": "store it paused: no tick runs"}),
)


def timers_verb(client: Any, ns: argparse.Namespace) -> dict[str, Any]:
    """`fedflow timers`: `{"timers": [{"id", "tag", "wake_at"}, ...]}`."""
    return client.timers()


def wake_verb(client: Any, ns: argparse.Namespace) -> dict[str, Any]:
    """`fedflow wake ID`: the flow's outcome, as `resume` prints it."""
    return client.wake(ns.flow_id)


def schedule_verb(client: Any, ns: argparse.Namespace) -> dict[str, Any]:
    """`fedflow schedule add|list|rm`; bad arguments are a UsageError (exit 2), checked before any call."""
    if ns.op == "list":
        return client.schedules()
    if not ns.name:
        raise UsageError(f"schedule {ns.op} needs the schedule's NAME")
    if ns.op == "rm":
        return client.unschedule(ns.name)
    if not ns.flow:
        raise UsageError("schedule add needs NAME and FLOW, e.g. "
                         "fedflow schedule add nightly report --cron '0 3 * * *'")
    from .verbs import parse_json_arg

    value = parse_json_arg(ns.input)
    when = {"cron": ns.cron, "every": ns.every, "catchup": ns.catchup, "overlap": ns.overlap, "paused": ns.paused}
    try:
        make_spec(ns.flow, value, registered=False, **when)
    except ValueError as exc:
        raise UsageError(str(exc).replace("cron=", "--cron").replace("every=", "--every")) from exc
    return client.schedule(ns.name, ns.flow, value, **when)
