"""A flow's journal as a timeline: one event per log entry, in order, said in words.

The store keeps each entry as text; `fedflow.journal` reads it back into a
resolved suspend (``t: s``, ended by its timer when it has ``w: 1``) or a
journaled step (``t: j``) whose name says what it was: ``step NAME``,
``remote PEER.FN``, ``failover PEER,PEER.FN`` (and its ``... local``
fallback), ``sleep``, ``timeout TAG``, ``patched``, or a name another part of fedflow
chose (shown as it is). How long a step took is known only for steps this
process ran (`durations`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .. import journal
from ..journal import Entry
from ..store.base import LogEntry

#: Characters of a value shown in a timeline row; longer values fold out.
PREVIEW_CHARS = 160


@dataclasses.dataclass(frozen=True)
class Event:
    """One timeline row."""

    n: int                  # position in the journal
    kind: str               # resume, request, step, remote, failover, or the entry name's first word
    title: str              # what happened, in words
    value: str | None       # the value it produced (tagged JSON text), if any
    error: str | None       # "Type: message" when the step raised
    seconds: float | None   # how long it ran, when this process ran it


def value_text(tree: Any) -> str:
    """A stored value (a tagged JSON tree) as one line of JSON text."""
    return json.dumps(tree, ensure_ascii=False, separators=(", ", ": "))


def _split_call(rest: str) -> tuple[str, str]:
    """"PEER.FN" -> (PEER, FN); a peer name may hold dots, a function name does not."""
    peer, _, fn = rest.rpartition(".")
    return (peer, fn) if peer else (rest, "")


def when_text(when: Any) -> str:
    """Seconds since the epoch as a UTC time in words ("?" when it is not a number)."""
    if isinstance(when, bool) or not isinstance(when, int | float):
        return "?"
    try:
        return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "?"


def _timer(n: int, word: str, rest: str, tree: Any, error: str | None, seconds: float | None) -> Event:
    """A `sleep` or `timeout TAG` entry: its value is [wake time, due already]."""
    when, due = (tree[0], tree[1]) if isinstance(tree, list) and len(tree) == 2 else (None, False)
    until = f"until {when_text(when)}" + (" (already past)" if due is True else "")
    title = f"sleep {until}" if word == "sleep" else f"timer on {rest}: wait {until}"
    return Event(n, "timer", title, None, error, seconds)


def _step(n: int, entry: Entry, seconds: float | None) -> Event:
    name = str(entry.get("n", ""))
    word, _, rest = name.partition(" ")
    err = entry.get("e")
    error = f"{err.get('type', 'Error')}: {err.get('message', '')}" if isinstance(err, dict) else None
    tree = entry.get("v")
    value = None if error is not None else value_text(tree)
    if word == "remote":
        peer, fn = _split_call(rest)
        return Event(n, "remote", f"remote call {fn} on peer {peer}", value, error, seconds)
    if word == "failover":
        rest, local = (rest[:-len(" local")], True) if rest.endswith(" local") else (rest, False)
        peers, fn = _split_call(rest)
        if local:
            title = f"failover {fn} over {peers}: the local fallback ran"
        elif isinstance(tree, list) and len(tree) == 3 and tree[0] == "peer":
            title, value = f"failover {fn} over {peers}: answered by {tree[1]}", value_text(tree[2])
        elif isinstance(tree, list) and tree[:1] == ["local"]:
            title, value = f"failover {fn} over {peers}: no peer answered, ran locally", None
        else:
            title = f"failover {fn} over {peers}"
        return Event(n, "failover", title, value, error, seconds)
    if name == "patched":
        patch = str(entry.get("k", "")).removeprefix("patch:")
        return Event(n, "patch", f"patch {patch}: {'new' if tree is True else 'old'} code path", None, error, seconds)
    if word in ("sleep", "timeout"):
        return _timer(n, word, rest, tree, error, seconds)
    if word == "step":
        return Event(n, "step", f"step {rest}", value, error, seconds)
    return Event(n, word or "entry", name, value, error, seconds)


def _suspend(n: int, entry: Entry) -> Event:
    tag = str(entry.get("tag", ""))
    if entry.get("w") == 1:
        woke = "woke from sleep" if tag.startswith("sleep:") else f"timed out waiting on {tag}"
        return Event(n, "timer", f"{woke} (its timer fired)", None, None, None)
    kind = "request" if tag.startswith("request:") else "resume"
    title = f"host answered request {tag}" if kind == "request" else f"resumed at tag {tag}"
    return Event(n, kind, title, value_text(entry.get("v")), None, None)


def timeline(log: Sequence[LogEntry], flow_id: str, durations: dict[str, float] | None = None) -> list[Event]:
    """The events of flow `flow_id`'s stored journal `log` (read by `fedflow.journal`; FedflowError
    when an entry is corrupt); `durations` maps a step's journal key to its seconds."""
    durations = durations or {}
    events = []
    for n, entry in enumerate(journal.load_all(log, flow_id)):
        if entry.get("t") == "s":
            events.append(_suspend(n, entry))
        else:
            events.append(_step(n, entry, durations.get(str(entry.get("k")))))
    return events
