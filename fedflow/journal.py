"""Log entries as the store keeps them: compact JSON text, written and read here, above the store.

An entry is a small dict:
    {"t": "s", "tag": str, "v": tree}                         a resolved suspend
    {"t": "j", "k": str, "n": str, "v": tree}                 a journaled step result
    {"t": "j", "k": str, "n": str, "e": {"type", "message"}}  a journaled step error
(a tree is a value encoded by `fedflow.values`). The store sees only the text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from . import values
from .errors import FedflowError

Entry = dict[str, Any]


def dump(entry: Entry) -> str:
    """`entry` as the text a store keeps (compact, ASCII)."""
    return values.dump_tree(entry)


def load(text: str, flow_id: str, n: int) -> Entry:
    """Entry `n` of flow `flow_id` from its stored text; FedflowError if it is not one."""
    try:
        entry = json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise _corrupt(flow_id, n, str(exc)) from exc
    if type(entry) is not dict or entry.get("t") not in ("s", "j"):
        raise _corrupt(flow_id, n, "not a suspend or step entry")
    return entry


def load_all(texts: Iterable[str], flow_id: str) -> list[Entry]:
    """A whole stored log of flow `flow_id`, in order."""
    return [load(text, flow_id, n) for n, text in enumerate(texts)]


def _corrupt(flow_id: str, n: int, why: str) -> FedflowError:
    return FedflowError(f"log entry {n} of flow {flow_id!r} is corrupt ({why}); restore the flow from a replica")
