"""fedflow: durable Python workflows that suspend, survive crashes and federate over gRPC.

>>> import fedflow
>>> engine = fedflow.Engine(name="hello")
>>> waiting = engine.start(fedflow.node(lambda x: {"draft": x, "ok": fedflow.suspend("review")}), "post")
>>> fedflow.is_suspended(waiting), waiting.tag
(True, 'review')
>>> engine.resume(waiting.id, True)
{'draft': 'post', 'ok': True}
"""

from .combinators import (
                          attempt,
                          branch,
                          const,
                          identity,
                          loop_until,
                          loop_while,
                          map_flow,
                          node,
                          parallel,
                          recover,
                          retry,
                          sequence,
                          step,
                          tap,
                          timeout,
                          try_catch,
)
from .engine import Engine
from .errors import (
                          FedflowError,
                          FlowCancelled,
                          FlowError,
                          FlowExists,
                          FlowFailed,
                          FlowMoved,
                          FlowNotDone,
                          FlowTimeout,
                          LimitExceeded,
                          NonDeterminism,
                          PeerError,
                          PeerUnavailable,
                          RemoteError,
                          ReplayedError,
                          ReplicaError,
                          UnknownFlow,
                          UnknownFunction,
                          UnknownPeer,
                          UnsupportedValue,
)
from .host import NOT_READY
from .outcomes import Suspended, is_suspended
from .railway import Fail, fail, fail_reason, is_failed
from .registry import defflow, flow
from .remote import remote_failover, remote_node
from .replay import request, suspend, tick
from .versioning import patched
from .waits import sleep, sleep_until

__version__ = "0.1.0"

__all__ = [
    "NOT_READY",
    "Engine",
    "Fail",
    "FedflowError",
    "FlowCancelled",
    "FlowError",
    "FlowExists",
    "FlowFailed",
    "FlowMoved",
    "FlowNotDone",
    "FlowTimeout",
    "LimitExceeded",
    "NonDeterminism",
    "PeerError",
    "PeerUnavailable",
    "RemoteError",
    "ReplayedError",
    "ReplicaError",
    "Suspended",
    "UnknownFlow",
    "UnknownFunction",
    "UnknownPeer",
    "UnsupportedValue",
    "attempt",
    "branch",
    "const",
    "defflow",
    "fail",
    "fail_reason",
    "flow",
    "identity",
    "is_failed",
    "is_suspended",
    "loop_until",
    "loop_while",
    "map_flow",
    "node",
    "parallel",
    "patched",
    "recover",
    "remote_failover",
    "remote_node",
    "request",
    "retry",
    "sequence",
    "sleep",
    "sleep_until",
    "step",
    "suspend",
    "tap",
    "tick",
    "timeout",
    "try_catch",
]
