"""A flow's journal as a timeline: one event per log entry, in order, said in words.

Log entries are the store's (see `fedflow.store.base`): a resolved suspend
(``t: s``) or a journaled step (``t: j``) whose name says what it was:
``step NAME``, ``remote PEER.FN``, ``failover PEER,PEER.FN``, or a name
another part of fedflow chose (shown as it is). How long a step took is
known only for steps this process ran (`durations`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

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


def _step(n: int, entry: LogEntry, seconds: float | None) -> Event:
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
        peers, fn = _split_call(rest)
        if isinstance(tree, list) and len(tree) == 3 and tree[0] == "peer":
            title, value = f"failover {fn} over {peers}: answered by {tree[1]}", value_text(tree[2])
        elif isinstance(tree, list) and tree[:1] == ["local"]:
            title, value = f"failover {fn} over {peers}: no peer answered, ran locally", None
        else:
            title = f"failover {fn} over {peers}"
        return Event(n, "failover", title, value, error, seconds)
    if word == "step":
        return Event(n, "step", f"step {rest}", value, error, seconds)
    return Event(n, word or "entry", name, value, error, seconds)


def timeline(log: list[LogEntry], durations: dict[str, float] | None = None) -> list[Event]:
    """The events of journal `log`; `durations` maps a step's journal key to its seconds."""
    durations = durations or {}
    events = []
    for n, entry in enumerate(log):
        if entry.get("t") == "s":
            tag = str(entry.get("tag", ""))
            kind = "request" if tag.startswith("request:") else "resume"
            title = f"host answered request {tag}" if kind == "request" else f"resumed at tag {tag}"
            events.append(Event(n, kind, title, value_text(entry.get("v")), None, None))
        else:
            events.append(_step(n, entry, durations.get(str(entry.get("k")))))
    return events
