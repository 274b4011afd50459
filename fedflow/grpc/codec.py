"""Plain data and flow statuses in fedflow.v1 messages.

- `pack` / `unpack`: plain data <-> the `bytes` fields of fedflow.v1 (UTF-8
  tagged JSON from `fedflow.values`; empty bytes read as None).
- `pack_call_value` / `unpack_call_value`: a call's payload or answer, long
  texts and bytes lifted out as raw blobs.
- `status_to_proto` / `status_from_proto`: a flow status string <-> `FlowStatus`.
"""

from __future__ import annotations

from typing import Any

from .. import errors as E
from ..v1 import fedflow_pb2 as pb
from ..values import dumps, dumps_lifting, loads, loads_lifted

__all__ = ["pack", "pack_call_value", "status_from_proto", "status_to_proto", "unpack", "unpack_call_value"]

#: A str or bytes in a call's payload or answer at least this long travels as a raw blob.
BLOB_MIN_BYTES = 4096


def pack(value: Any, path: str = "value") -> bytes:
    """Encode plain data for a `bytes` value field; raises UnsupportedValue."""
    return _utf8(dumps(value, path))


def _utf8(text: str) -> bytes:
    """JSON text as UTF-8; a lone surrogate (which UTF-8 cannot hold) is written as its JSON
    escape, which decodes back to the same str. Surrogates only occur inside JSON strings,
    after any complete escape, so the escape lands where JSON reads it."""
    return text.encode("utf-8", "backslashreplace")


def pack_call_value(value: Any, path: str) -> tuple[bytes, list[bytes]]:
    """Encode a call's payload or answer: tagged JSON with every str or bytes of at least
    `BLOB_MIN_BYTES` lifted out as a raw blob (sent in the message's `blobs`)."""
    text, blobs = dumps_lifting(value, path, BLOB_MIN_BYTES)
    return _utf8(text), blobs


def unpack_call_value(data: bytes, blobs: Any, what: str) -> Any:
    """Decode what `pack_call_value` made (`blobs` as received); raises UnsupportedValue."""
    if not blobs:
        return unpack(data, what)
    if not data:
        raise E.UnsupportedValue(f"{what} came with {len(blobs)} blob(s) but no value naming them", path=what)
    return loads_lifted(data, list(blobs), what)


def unpack(data: bytes, what: str = "value") -> Any:
    """Decode a `bytes` value field (empty means None); raises UnsupportedValue."""
    if not data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise E.UnsupportedValue(f"{what} is not UTF-8 text: {exc}; send fedflow tagged JSON",
                                 path=what) from exc
    return loads(text, what)


_STATUS_NAMES = ("running", "suspended", "done", "failed", "cancelled", "moved", "unknown")


def status_to_proto(status: str) -> int:
    """A flow status string -> `fedflow.v1.FlowStatus` value."""
    if status not in _STATUS_NAMES:
        return pb.FLOW_STATUS_UNSPECIFIED
    return pb.FlowStatus.Value(f"FLOW_STATUS_{status.upper()}")


def status_from_proto(value: int) -> str:
    """A `fedflow.v1.FlowStatus` value -> the flow status string ("unknown" if unset)."""
    name = pb.FlowStatus.Name(value) if value in pb.FlowStatus.values() else ""
    status = name.removeprefix("FLOW_STATUS_").lower()
    return status if status in _STATUS_NAMES else "unknown"

