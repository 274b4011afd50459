"""Ownership checked when it matters: which copy of a flow is stale, a restored flow confirmed
against the peers before its first resume or timer, and peers fenced again whenever they
become reachable.

A flow's copies carry an ownership epoch, raised by every restore and handoff. A live
copy is stale when a peer holds the same flow at a newer epoch, or at the same epoch
under a greater name (two instances that restored one replica: the greater name keeps
it, decided the same way on both sides). A stale copy is marked `moved`, naming the
peer, before it can be resumed or woken.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .errors import FedflowError, FlowMoved, PeerError
from .peers import PeerTable
from .store.base import LIVE, MOVED, Store

log = logging.getLogger("fedflow.ownership")

#: Seconds one peer may take to say which of a flow's copies it holds.
CONFIRM_DEADLINE = 2.0
#: Seconds between two rounds of health checks of the peers (`PeerWatch`).
WATCH_INTERVAL = 2.0


def is_stale(name: str, epoch: int, peer: str, peer_epoch: int) -> bool:
    """Whether this instance's (`name`) live copy at `epoch` gives way to `peer`'s at `peer_epoch`."""
    return peer_epoch > epoch or (peer_epoch == epoch and peer > name)


def mark_moved(store: Store, flow_id: str, peer: str, epoch: int) -> bool:
    """Mark the live copy of `flow_id` (if its epoch is still `epoch`) moved to `peer`."""
    rec = store.get(flow_id)
    if rec is None or rec.status not in LIVE or rec.epoch != epoch:
        return False
    return store.transition(flow_id, [rec.status], {"status": MOVED, "owner": peer, "waiting": None,
                                                    "request": None, "wake_at": None, "updated": time.time()},
                            version=rec.version)


class OwnerCheck:
    """The flows restored here that no peer has yet confirmed are ours (kept in memory: after a
    restart, `fedflow serve` fences against every peer before anything resumes)."""

    def __init__(self, name: str, store: Store, peers: PeerTable) -> None:
        self.name = name
        self.store = store
        self.peers = peers
        self._lock = threading.Lock()
        self._unconfirmed: set[str] = set()

    def restored(self, ids: list[str]) -> None:
        """`ids` were just restored here from a replica: confirm each before it first moves on."""
        with self._lock:
            self._unconfirmed.update(ids)

    def confirm(self, flow_id: str) -> None:
        """Before a restored flow's first resume or timer: ask every peer about it. A peer that
        holds it at a newer epoch (see `is_stale`) gets it: ours is marked moved and FlowMoved
        raised. Once every peer answered, the flow is confirmed; an unreachable peer is asked
        again next time (and fences it when it is back, see `PeerWatch`)."""
        with self._lock:
            if flow_id not in self._unconfirmed:
                return
        asked_all = True
        for peer in self.peers.names():
            if peer == self.name:
                continue
            rec = self.store.get(flow_id)
            if rec is None or rec.status not in LIVE:
                break
            try:
                claims = self.peers.get(peer).claims([flow_id], deadline=CONFIRM_DEADLINE)
            except PeerError as exc:
                log.info("cannot confirm flow %s with peer %s yet (%s)", flow_id, peer, exc)
                asked_all = False
                continue
            for _id, epoch in claims:
                if is_stale(self.name, rec.epoch, peer, epoch) and mark_moved(self.store, flow_id, peer, rec.epoch):
                    log.warning("restored flow %s is held by %s at epoch %d: marked moved", flow_id, peer, epoch)
                    self._done(flow_id)
                    raise FlowMoved(f"flow {flow_id} is owned by {peer!r} now (it holds a newer copy); "
                                    f"resume it there", flow_id, owner=peer)
        if asked_all:
            self._done(flow_id)

    def _done(self, flow_id: str) -> None:
        with self._lock:
            self._unconfirmed.discard(flow_id)


class PeerWatch:
    """Fence against each peer whenever it becomes reachable: checks every peer's health each
    `interval` seconds on a daemon thread, and runs `fence(peer)` for a peer that answers
    and has not been fenced since it was last unreachable. `close()` stops it."""

    def __init__(self, peers: PeerTable, fence: Callable[[str], list[str]], fenced: set[str],
                 interval: float = WATCH_INTERVAL) -> None:
        """`fenced`: the peers fenced already (at start-up)."""
        self.peers = peers
        self.fence = fence
        self.interval = interval
        self._fenced = set(fenced)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="fedflow-peer-watch")
        self._thread.start()

    def close(self) -> None:
        """Stop watching (waits for a round under way)."""
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            for peer in self.peers.names():
                if self._stop.is_set():
                    return
                self.check(peer)

    def check(self, peer: str) -> None:
        """One look at `peer`: fence against it if it is reachable and not fenced since it was away."""
        try:
            transport = self.peers.get(peer)
        except PeerError:
            return
        if not transport.health(deadline=min(self.interval, CONFIRM_DEADLINE)):
            self._fenced.discard(peer)
            return
        if peer in self._fenced:
            return
        try:
            moved = self.fence(peer)
        except FedflowError as exc:  # a peer error, or a store closing under us: try again next round
            log.info("peer %s is back but could not be asked for the flows it owns (%s)", peer, exc)
            return
        self._fenced.add(peer)
        log.info("peer %s is reachable: fenced, %d flow(s) it owns now marked moved", peer, len(moved))
