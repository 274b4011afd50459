"""What `Engine.start` and `Engine.resume` return when a flow stops to wait."""

from __future__ import annotations

from typing import Any


class Suspended:
    """A flow stopped at `suspend(tag)`: its `.id` and the `.tag` it waits on."""

    __slots__ = ("id", "tag")

    def __init__(self, id: str, tag: str) -> None:
        self.id = id
        self.tag = tag

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Suspended) and (self.id, self.tag) == (other.id, other.tag)

    def __hash__(self) -> int:
        return hash((self.id, self.tag))

    def __repr__(self) -> str:
        return f"Suspended(id={self.id!r}, tag={self.tag!r})"


def is_suspended(value: Any) -> bool:
    """True when `value` is a `Suspended` outcome rather than a flow's result."""
    return isinstance(value, Suspended)
