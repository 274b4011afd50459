"""Flows that run on peers: `remote_node` and `remote_failover`, both journaled.

A completed call is logged with its answer, so replay, a restart or a handoff
never makes it again. Each call carries an idempotency key (flow id + journal
key) that stays the same if a crash forces the call to be made a second time,
so a peer can drop the duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from . import replay
from .combinators import Flow
from .errors import FlowError, PeerError

log = logging.getLogger("fedflow.remote")


#: Seconds a failover walk keeps retrying one unreachable peer before moving on.
FAILOVER_RETRY_WINDOW = 1.0


def _services(what: str) -> Any:
    run = replay.current_run()
    if run is None:
        raise FlowError(f"{what} runs only inside a flow started with Engine.start()")
    return run.services


def remote_node(addr: str, fn: str, deadline: float | None = None) -> Flow:
    """A flow that runs exposed function `fn` on peer `addr` with its input as payload.

    `deadline` (seconds) bounds the whole call, retries included; default: the engine's."""
    label = f"remote {addr}.{fn}"

    def run(x: Any) -> Any:
        engine = _services(label)
        return replay.journaled(label, lambda call_id: engine.call_peer(
            addr, fn, x, deadline=deadline, call_id=call_id))
    run.__qualname__ = run.__name__ = f"remote_node({addr}, {fn})"
    return run


def remote_failover(addrs: Sequence[str], fn: str, local: Flow, deadline: float | None = None) -> Flow:
    """Try `fn` on each peer in `addrs` in order; if every one raises a PeerError, run `local`.

    A `Fail` answered by a peer is a result, not a failure: it does not move on. The local
    fallback's answer is journaled like a peer's (in its own scope, under the walk's key), so a
    replay after it ran does not run it again."""
    peers = list(addrs)
    label = f"failover {','.join(peers)}.{fn}"

    def walk(engine: Any, x: Any, call_id: str) -> list[Any]:
        for addr in peers:
            try:
                answer = engine.call_peer(addr, fn, x, deadline=deadline, call_id=call_id,
                                          retry_window=FAILOVER_RETRY_WINDOW)
                return ["peer", addr, answer]
            except PeerError as exc:
                log.info("failover %s: peer %s failed (%s: %s); trying the next", fn, addr,
                         type(exc).__name__, exc)
        return ["local"]

    def run(x: Any) -> Any:
        engine = _services(label)
        key = replay.next_key()
        outcome = replay.journaled(label, lambda call_id: walk(engine, x, call_id), key)
        if outcome[0] != "local":
            return outcome[2]
        return replay.in_child_scope(key, 0, lambda: replay.journaled(f"{label} local", lambda _id: local(x)))()
    run.__qualname__ = run.__name__ = f"remote_failover({peers}, {fn})"
    return run
