"""The replica slots one instance holds for its peers: who may write which, and how many
and how large they may be in all.

A peer writes only the slot named after it (`fedflow.grpc.identity.Caller`); a new slot
past `max_slots`, or a replica that would take the slots past `max_total_bytes` in all,
is refused with `LimitExceeded` and changes nothing. `slots()` lists them for
`fedflow replicas`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from .errors import LimitExceeded, ReplicaError
from .store.base import Store

__all__ = ["SlotLimits", "check_write", "slots"]

GIB = 1024 ** 3


@dataclasses.dataclass(frozen=True)
class SlotLimits:
    """At most `max_slots` replica slots, holding at most `max_total_bytes` in all."""

    max_slots: int = 64
    max_total_bytes: int = GIB

    def __post_init__(self) -> None:
        for field, value in (("max_slots", self.max_slots), ("max_total_bytes", self.max_total_bytes)):
            if type(value) is not int or value < 1:
                raise ValueError(f"{field} must be an int of at least 1, got {value!r}")


def check_write(store: Store, limits: SlotLimits, source: str, size: int, sender: str | None,
                may_write: bool) -> None:
    """Raise unless `sender` (allowed to write slot `source`: `may_write`) may store `size`
    bytes there without passing `limits`."""
    if not may_write:
        raise ReplicaError(f"peer {sender!r} may write only its own replica slot, not {source!r}; "
                           f"a replica is pushed by the instance it comes from")
    held = {slot: nbytes for slot, nbytes, _at, _sender in store.replica_slots()}
    if source not in held and len(held) >= limits.max_slots:
        raise LimitExceeded(f"this instance holds {len(held)} replica slots, the most it keeps "
                            f"(--max-replica-slots {limits.max_slots}); drop one or raise the limit",
                            None, "max_replica_slots")
    total = sum(held.values()) - held.get(source, 0) + size
    if total > limits.max_total_bytes:
        raise LimitExceeded(f"replica slots would hold {total} bytes, over the {limits.max_total_bytes}-byte "
                            f"total (--max-replica-total-bytes); raise it or hold fewer replicas here",
                            None, "max_replica_total_bytes")


def slots(store: Store) -> list[dict[str, Any]]:
    """Each replica slot: its source, flow count, bytes, when it was stored and who sent it."""
    out = []
    for source, nbytes, at, sender in store.replica_slots():
        text = store.get_replica(source) or "{}"
        try:
            flows = len(json.loads(text).get("flows", []))
        except (ValueError, AttributeError):
            flows = None
        out.append({"source": source, "flows": flows, "bytes": nbytes, "updated": at, "sender": sender})
    return out
