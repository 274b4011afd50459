"""Every error fedflow raises, in one small tree.

    FedflowError
    ├── FlowError                  a flow cannot do what was asked
    │   ├── UnknownFlow            (also a KeyError)
    │   ├── FlowExists             the id is taken by a flow of another name
    │   ├── FlowCancelled
    │   ├── FlowFailed             .id, .cause
    │   │   └── NonDeterminism     .expected, .recorded
    │   ├── FlowMoved              .owner
    │   └── FlowNotDone
    ├── FlowTimeout                a timeout() step budget ran out
    ├── ReplayedError              a journaled step's error of a class fedflow cannot rebuild
    ├── UnsupportedValue           .path
    ├── ReplicaError               a store export/replica is malformed
    └── PeerError                  .peer
        ├── UnknownPeer
        ├── PeerUnavailable        unreachable, deadline exceeded, draining
        ├── RemoteError            .remote_type, .remote_message
        ├── UnknownFunction
        └── LimitExceeded          .limit (a message, replica or call count past a limit)

Every message says what to do about it.

Errors become plain data, and back, through one pair: `to_data(exc)` and
`from_data(data)`, used by the journal, the store and the wire alike. Each class
names in `fields` the attributes it carries (its constructor's keyword arguments),
so a rebuilt error has the same attributes as the one first raised.

>>> back = from_data(to_data(LimitExceeded("too big", "b", limit="max_message_bytes")))
>>> type(back).__name__, back.peer, back.limit
('LimitExceeded', 'b', 'max_message_bytes')
>>> from_data(to_data(KeyError("k")))
KeyError('k')
"""

from __future__ import annotations

import builtins
import math
from typing import Any


class FedflowError(Exception):
    """Raised for anything fedflow refuses or cannot do; the root of the tree."""

    #: The attributes this class carries through `to_data` / `from_data`.
    fields: tuple[str, ...] = ()


class FlowError(FedflowError):
    """Raised when a flow cannot do what was asked (resume, result, forget...)."""

    fields = ("id",)

    def __init__(self, message: str, id: str | None = None) -> None:
        super().__init__(message)
        self.id = id


class UnknownFlow(FlowError, KeyError):
    """Raised when no flow with that id is in this engine's store, or no flow is registered
    under that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class FlowExists(FlowError):
    """Raised when start() is given the id of an existing flow of another name: the id is
    taken, and the other flow's outcome is not this start's."""


class FlowCancelled(FlowError):
    """Raised when a cancelled flow is resumed or its result asked for."""


class FlowFailed(FlowError):
    """Raised when a flow's body raised an uncaught exception; `.cause` is that exception."""

    fields = ("id", "cause")

    def __init__(self, message: str, id: str | None = None, cause: Any = None) -> None:
        super().__init__(message, id)
        self.cause = cause


class NonDeterminism(FlowFailed):
    """Raised when a replay asks for a different journaled step than the log recorded."""

    fields = ("id", "expected", "recorded")

    def __init__(self, message: str, id: str | None = None, expected: str = "", recorded: str = "") -> None:
        super().__init__(message, id)
        self.expected = expected
        self.recorded = recorded


class FlowMoved(FlowError):
    """Raised when a flow was handed off; `.owner` names the instance that has it now."""

    fields = ("id", "owner")

    def __init__(self, message: str, id: str | None = None, owner: str | None = None) -> None:
        super().__init__(message, id)
        self.owner = owner


class FlowNotDone(FlowError):
    """Raised when the result of a flow that has not finished is asked for."""


class FlowTimeout(FedflowError):
    """Raised by tick() when a timeout() step budget is exhausted."""


class ReplayedError(FedflowError):
    """Raised on replay in place of a journaled step's exception whose class is not a
    builtin or fedflow error; `.type_name` and `.message` describe the original."""

    fields = ("type_name", "message")

    def __init__(self, text: str, type_name: str = "", message: str = "") -> None:
        super().__init__(text)
        self.type_name = type_name
        self.message = message


class UnsupportedValue(FedflowError, TypeError):
    """Raised when a value crossing a boundary is not plain data; `.path` names where."""

    fields = ("path",)

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ReplicaError(FedflowError):
    """Raised when a store export or replica is malformed; nothing is changed."""


class PeerError(FedflowError):
    """Raised when a call to a peer fails; `.peer` names the peer."""

    fields = ("peer",)

    def __init__(self, message: str, peer: str | None = None) -> None:
        super().__init__(message)
        self.peer = peer


class UnknownPeer(PeerError):
    """Raised when a peer name is not registered or connected on this engine."""


class PeerUnavailable(PeerError):
    """Raised when a peer cannot be reached within the deadline."""


class RemoteError(PeerError):
    """Raised when the peer's function itself raised; carries its type and message."""

    fields = ("peer", "remote_type", "remote_message")

    def __init__(self, message: str, peer: str | None = None, remote_type: str = "",
                 remote_message: str = "") -> None:
        super().__init__(message, peer)
        self.remote_type = remote_type
        self.remote_message = remote_message


class UnknownFunction(PeerError):
    """Raised when the peer exposes no function of that name."""


class LimitExceeded(PeerError):
    """Raised when a message, a replica or the number of calls goes past a configured limit;
    `.limit` names the `fedflow.limits.Limits` field, the message says how to raise it."""

    fields = ("peer", "limit")

    def __init__(self, message: str, peer: str | None = None, limit: str = "") -> None:
        super().__init__(message, peer)
        self.limit = limit


# ------------------------------------------------------------------ errors as plain data
def _plain(value: Any) -> bool:
    if type(value) is float:
        return math.isfinite(value)
    return value is None or type(value) in (str, int, bool)


def _field_data(value: Any) -> Any:
    """A field's value as plain data: an exception (a cause) becomes its own `to_data`."""
    if isinstance(value, BaseException):
        return to_data(value)
    return value if _plain(value) else str(value)


def to_data(exc: BaseException) -> dict[str, Any]:
    """`exc` as plain, JSON-ready data: its class, message, and the fields its class names
    (a builtin exception also keeps its arguments, when they are plain)."""
    kind = type(exc)
    out: dict[str, Any] = {"type": kind.__name__, "module": kind.__module__, "message": str(exc)}
    if kind.__module__ == "builtins" and all(_plain(arg) for arg in exc.args):
        out["args"] = list(exc.args)
    fields = getattr(kind, "fields", ()) if isinstance(exc, FedflowError) else ()
    attrs = {name: _field_data(getattr(exc, name, None)) for name in fields}
    if attrs:
        out["attrs"] = attrs
    return out


def from_data(data: Any) -> Exception:
    """The exception `to_data` described, rebuilt without importing or evaluating anything.

    Builtin and fedflow exception classes come back as themselves, with the same fields;
    any other class comes back as `ReplayedError` carrying its type name and message."""
    data = data if isinstance(data, dict) else {}
    kind, module, message = str(data.get("type", "")), str(data.get("module", "")), str(data.get("message", ""))
    exc: Exception | None = None
    found = getattr(builtins, kind, None) if module == "builtins" else globals().get(kind)
    if module == "builtins" and isinstance(found, type) and issubclass(found, Exception):
        exc = _builtin(found, data.get("args"), message)
    elif module.startswith("fedflow") and isinstance(found, type) and issubclass(found, FedflowError):
        exc = _fedflow(found, message, data.get("attrs"))
    return exc if exc is not None else ReplayedError(f"{kind}: {message}", type_name=kind, message=message)


def _builtin(cls: type[Exception], args: Any, message: str) -> Exception | None:
    """`cls(*args)`, else `cls(message)`, else None: stored data never breaks a rebuild."""
    plain_args = isinstance(args, list) and all(_plain(arg) for arg in args)
    try:
        return cls(*args) if plain_args else cls(message)
    except Exception:
        try:
            return cls(message)
        except Exception:
            return None


def _fedflow(cls: type[FedflowError], message: str, attrs: Any) -> FedflowError:
    """`cls(message, **fields)`; a cause comes back as an exception (older stores kept its text)."""
    given = attrs if isinstance(attrs, dict) else {}
    kwargs = {}
    for name in cls.fields:
        value = given.get(name)
        if isinstance(value, dict) and name == "cause":
            kwargs[name] = from_data(value)
        elif name in given and _plain(value):
            kwargs[name] = value
    return cls(message, **kwargs)
