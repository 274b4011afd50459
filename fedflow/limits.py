"""What one instance accepts over gRPC, and the error for going past it.

Three limits, explicit on both ends of every channel:

- `max_message_bytes`: the largest single gRPC message sent or received
  (default 8 MiB; gRPC's own default receive limit is 4 MiB). Replicas are
  streamed in chunks that always fit under it.
- `max_concurrent_rpcs`: calls a server runs at once (default 256); one more
  gets RESOURCE_EXHAUSTED, which callers retry within their deadline.
- `max_replica_bytes`: the largest replica a server holds for a peer, or a
  client fetches (default 256 MiB).

Past a limit the caller gets `LimitExceeded`, a `PeerError` that names the
limit and how to raise it (the `fedflow serve` flag, or the `Limits` field).

>>> Limits(max_message_bytes=256 * 1024).chunk_bytes
245760
>>> Limits(max_concurrent_rpcs=0)
Traceback (most recent call last):
...
ValueError: max_concurrent_rpcs must be an int of at least 1, got 0
"""

from __future__ import annotations

import dataclasses

from .errors import LimitExceeded

__all__ = ["DEFAULT_LIMITS", "FLAGS", "LimitExceeded", "Limits"]

MIB = 1024 * 1024
#: The `fedflow serve` flag (and client flag) that raises each limit.
FLAGS = {"max_message_bytes": "--max-message-bytes", "max_concurrent_rpcs": "--max-concurrent-rpcs",
         "max_replica_bytes": "--max-replica-bytes"}
_MINIMUM = {"max_message_bytes": 64 * 1024, "max_concurrent_rpcs": 1, "max_replica_bytes": 1024}
#: Room left in a message for everything but the payload bytes (field tags, names, call id).
ENVELOPE_BYTES = 16 * 1024


@dataclasses.dataclass(frozen=True)
class Limits:
    """The limits of one server or client; every field is a positive int."""

    max_message_bytes: int = 8 * MIB
    max_concurrent_rpcs: int = 256
    max_replica_bytes: int = 256 * MIB

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            least = _MINIMUM[field.name]
            if type(value) is not int or value < least:
                raise ValueError(f"{field.name} must be an int of at least {least}, got {value!r}")

    @property
    def chunk_bytes(self) -> int:
        """Bytes of replica per streamed message: 1 MiB, or less to fit the message limit."""
        return min(MIB, self.max_message_bytes - ENVELOPE_BYTES)

    def exceeded(self, limit: str, size: int, what: str, peer: str | None = None) -> LimitExceeded:
        """The error for `what` (`size` bytes) going past `limit` (a field name)."""
        return LimitExceeded(f"{what} is {size} bytes, over the {getattr(self, limit)}-byte {_words(limit)}; "
                             f"send less, or raise it on both ends ({FLAGS[limit]}, or "
                             f"Limits({limit}=...))", peer, limit)


def _words(limit: str) -> str:
    return limit.removeprefix("max_").replace("_bytes", "").replace("_", " ") + " limit"


DEFAULT_LIMITS = Limits()
