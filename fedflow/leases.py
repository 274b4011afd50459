"""Leases on a shared store: an instance keeps its running flows, and takes over a dead one's.

On a store several instances share (PostgreSQL), each running flow belongs to
the instance that runs it for as long as that instance renews its lease (a
heartbeat every third of the lease). When an instance dies, its heartbeat
stops; once its lease has run out, another instance claims its running flows
and re-runs them by replay, so journaled steps do not run again. Claims are
row locks in the store (``FOR UPDATE SKIP LOCKED``): each flow is taken over
by one instance. Stores only one process uses (memory, SQLite) have no
leases: every flow left running there was left by a crash.

An engine takes flows over only once it has recovered at least once (its
flows and peers are registered by then; `fedflow serve` recovers after
loading its modules).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .store.base import RUNNING, Store

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["LeaseKeeper", "LeasedStore", "keep", "recoverable"]

log = logging.getLogger("fedflow.leases")


@runtime_checkable
class LeasedStore(Protocol):
    """A store whose running flows are held under leases by the instances sharing it."""

    lease: float

    def heartbeat(self) -> None:
        """Renew this instance's lease."""

    def orphans_waiting(self) -> bool:
        """Whether another instance's lease ran out with flows still running."""

    def claim_running(self) -> list[str]:
        """Claim the running flows whose instance's lease ran out (and this instance's own)."""

    def retire(self) -> None:
        """End this instance's lease at once."""


def recoverable(store: Store) -> list[str]:
    """Ids of the running flows this instance should re-run: on a leased store those it has just
    claimed, elsewhere every running flow (only a crash leaves one running there)."""
    if isinstance(store, LeasedStore):
        return store.claim_running()
    return store.ids(RUNNING)


class LeaseKeeper:
    """Renews an engine's lease on its shared store and takes over the flows of dead instances."""

    def __init__(self, engine: Engine, store: LeasedStore) -> None:
        self._engine = engine
        self._store = store
        self._stopping = threading.Event()
        self._armed = threading.Event()
        self._orphans = threading.Event()
        self._beat = threading.Thread(target=self._beat_loop, name=f"fedflow-lease-{engine.name}", daemon=True)
        self._taker = threading.Thread(target=self._takeover_loop, name=f"fedflow-takeover-{engine.name}",
                                       daemon=True)
        self._beat.start()
        self._taker.start()

    def arm(self) -> None:
        """Start taking over other instances' flows (called by the engine's first recovery)."""
        self._armed.set()

    def stop(self, *, retire: bool = True) -> None:
        """Stop renewing and, with `retire`, end the lease now, so other instances take this one's
        flows at once (without, they wait for the lease to run out, as after a crash)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._orphans.set()
        self._beat.join(timeout=10)
        if self._taker is not threading.current_thread():
            self._taker.join(timeout=1)  # a long replay in progress is left to finish or fail alone
        if not retire:
            return
        try:
            self._store.retire()
        except Exception as exc:  # the lease then runs out by itself
            log.warning("could not end the lease on close: %s", exc)

    def _beat_loop(self) -> None:
        interval = self._store.lease / 3
        while not self._stopping.wait(interval):
            try:
                self._store.heartbeat()
                if self._armed.is_set() and self._store.orphans_waiting():
                    self._orphans.set()
            except Exception as exc:  # the store is unreachable: try again, the lease may still hold
                log.warning("could not renew the lease of %s: %s", self._engine.name, exc)

    def _takeover_loop(self) -> None:
        while True:
            self._orphans.wait()
            if self._stopping.is_set():
                return
            self._orphans.clear()
            try:
                for flow_id in self._engine.recover():
                    log.info("took over flow %s: now %s", flow_id, self._engine.status(flow_id))
            except Exception as exc:
                if self._stopping.is_set():
                    return
                log.warning("could not take over flows: %s", exc)


class _NoLeases:
    """The keeper of a store without leases: nothing to renew or take over."""

    def arm(self) -> None:
        """Nothing to arm."""

    def stop(self, *, retire: bool = True) -> None:
        """Nothing to stop."""


def keep(engine: Engine) -> LeaseKeeper | _NoLeases:
    """Start keeping `engine`'s lease when its store has leases (a no-op keeper otherwise)."""
    store = engine.store
    return LeaseKeeper(engine, store) if isinstance(store, LeasedStore) else _NoLeases()
