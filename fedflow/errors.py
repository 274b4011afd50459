"""Every error fedflow raises, in one small tree.

    FedflowError
    ├── FlowError                  a flow cannot do what was asked
    │   ├── UnknownFlow            (also a KeyError)
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
"""

from __future__ import annotations

from typing import Any


class FedflowError(Exception):
    """Raised for anything fedflow refuses or cannot do; the root of the tree."""


class FlowError(FedflowError):
    """Raised when a flow cannot do what was asked (resume, result, forget...)."""

    def __init__(self, message: str, id: str | None = None) -> None:
        super().__init__(message)
        self.id = id


class UnknownFlow(FlowError, KeyError):
    """Raised when no flow with that id is in this engine's store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class FlowCancelled(FlowError):
    """Raised when a cancelled flow is resumed or its result asked for."""


class FlowFailed(FlowError):
    """Raised when a flow's body raised an uncaught exception; `.cause` is that exception."""

    def __init__(self, message: str, id: str | None = None, cause: Any = None) -> None:
        super().__init__(message, id)
        self.cause = cause


class NonDeterminism(FlowFailed):
    """Raised when a replay asks for a different journaled step than the log recorded."""

    def __init__(self, message: str, id: str | None = None, expected: str = "", recorded: str = "") -> None:
        super().__init__(message, id)
        self.expected = expected
        self.recorded = recorded


class FlowMoved(FlowError):
    """Raised when a flow was handed off; `.owner` names the instance that has it now."""

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

    def __init__(self, text: str, type_name: str = "", message: str = "") -> None:
        super().__init__(text)
        self.type_name = type_name
        self.message = message


class UnsupportedValue(FedflowError, TypeError):
    """Raised when a value crossing a boundary is not plain data; `.path` names where."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ReplicaError(FedflowError):
    """Raised when a store export or replica is malformed; nothing is changed."""


class PeerError(FedflowError):
    """Raised when a call to a peer fails; `.peer` names the peer."""

    def __init__(self, message: str, peer: str | None = None) -> None:
        super().__init__(message)
        self.peer = peer


class UnknownPeer(PeerError):
    """Raised when a peer name is not registered or connected on this engine."""


class PeerUnavailable(PeerError):
    """Raised when a peer cannot be reached within the deadline."""


class RemoteError(PeerError):
    """Raised when the peer's function itself raised; carries its type and message."""

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

    def __init__(self, message: str, peer: str | None = None, limit: str = "") -> None:
        super().__init__(message, peer)
        self.limit = limit
