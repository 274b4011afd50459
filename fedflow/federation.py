"""Moving flows between instances: export/import, replicate, restore, handoff.

Mixed into `Engine`. A replica is an export held in a peer's slot for the
engine it came from; restoring imports it into the live store. A handoff is
replicate + mark the local suspended flows `moved` + have the peer restore
exactly those, so the replay log (resolved suspends, journaled steps) moves
with every flow.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any

from . import replica
from .errors import ReplicaError
from .store.base import LIVE, MOVED, RUNNING, SUSPENDED, FlowRecord, LogEntry, Store

log = logging.getLogger("fedflow.federation")

Row = tuple[FlowRecord, list[LogEntry]]


def _same_flow(mine: Row, theirs: Row) -> bool:
    """True when both copies hold the same state (ownership aside): importing is a no-op."""
    (a, a_log), (b, b_log) = mine, theirs
    return (a.status, a.result, a.waiting) == (b.status, b.result, b.waiting) and a_log == b_log


def _supersedes(mine: Row, theirs: Row) -> bool:
    """True when the incoming copy is a newer state of the same flow than ours."""
    (a, a_log), (b, b_log) = mine, theirs
    if a.status == MOVED or b.epoch > a.epoch:
        return True
    same_flow = (a.name, a.input) == (b.name, b.input)
    return same_flow and a.status in LIVE and len(b_log) > len(a_log) and b_log[:len(a_log)] == a_log


def _older(mine: Row, theirs: Row) -> bool:
    """True when the incoming copy is an earlier state of the flow we hold: nothing to import."""
    (a, a_log), (b, b_log) = mine, theirs
    return (a.name, a.input) == (b.name, b.input) and b.epoch <= a.epoch and a_log[:len(b_log)] == b_log


class Federation:
    """Replica and handoff verbs of an Engine (which provides name, store, peers, deadline)."""

    name: str
    store: Store
    peers: Any
    deadline: float
    _active: set[str]  # flows running in this process (a resume may not have written yet)

    @property
    def _replica_deadline(self) -> float:
        return max(60.0, self.deadline)

    def export(self) -> dict[str, Any]:
        """The whole store as plain, JSON-serialisable data."""
        return replica.build_export(self.name, self.store.records())

    def import_store(self, data: Any) -> list[str]:
        """Merge an export in; malformed data or a clashing flow raises ReplicaError, changing nothing."""
        return self._merge(replica.parse_export(data))

    def _merge(self, rows: list[Row]) -> list[str]:
        writes, clashes = [], []
        for rec, log_entries in rows:
            existing = self.store.get(rec.id)
            if existing is None:
                writes.append((rec, log_entries))
                continue
            mine = (existing, self.store.load_log(rec.id))
            if _same_flow(mine, (rec, log_entries)):
                continue
            if _supersedes(mine, (rec, log_entries)):
                writes.append((rec, log_entries))
            elif not _older(mine, (rec, log_entries)):
                clashes.append(rec.id)
        if clashes:
            raise ReplicaError(f"{len(clashes)} flow(s) in the replica clash with different flows here "
                               f"({', '.join(clashes[:5])}); forget them here first, or restore into "
                               f"an instance that does not have them")
        self.store.put_flows(writes)
        return [rec.id for rec, _log in writes]

    # ------------------------------------------------------------ serving side
    def accept_replica(self, source: str, export_text: str) -> int:
        """Keep a validated replica of engine `source` in its slot; the count of flows in it."""
        rows = replica.parse_text(export_text)
        self.store.put_replica(source, export_text if isinstance(export_text, str) else export_text.decode())
        log.info("holding a replica of %s (%d flows)", source, len(rows))
        return len(rows)

    def replica_text(self, source: str) -> str:
        """The replica this engine holds of `source`; ReplicaError when it holds none."""
        text = self.store.get_replica(source)
        if text is None:
            raise ReplicaError(f"engine {self.name!r} holds no replica of {source!r}; "
                               f"run replicate_to({self.name!r}) on {source!r} first")
        return text

    def restore_local(self, source: str, ids: list[str] | None = None) -> list[str]:
        """Import the replica this engine holds of `source` (only `ids`, when given)."""
        return self._restore_rows(replica.parse_text(self.replica_text(source)), ids)

    def _restore_rows(self, rows: list[Row], ids: list[str] | None) -> list[str]:
        """Import rows as this engine's own: a handoff (`ids`) arrives with its epoch already
        bumped; a plain restore claims each flow with the next epoch and leaves out flows
        that were moved or that belong to another instance."""
        if ids is not None:
            wanted = set(ids)
            claimed = [(dataclasses.replace(rec, owner=self.name), log_entries)
                       for rec, log_entries in rows if rec.id in wanted]
        else:
            claimed = [(dataclasses.replace(rec, owner=self.name, epoch=rec.epoch + 1), log_entries)
                       for rec, log_entries in rows
                       if rec.status != MOVED and rec.owner in (None, self.name)]
        return self._merge(claimed)

    # ------------------------------------------------------------ ownership fencing
    def claims(self, ids: list[str]) -> list[tuple[str, int]]:
        """Of `ids`, the flows this engine holds (not as `moved`), with their epochs."""
        held = []
        for flow_id in ids:
            rec = self.store.get(flow_id)
            if rec is not None and rec.status != MOVED:
                held.append((flow_id, rec.epoch))
        return held

    def fence(self, peer: str) -> list[str]:
        """Mark `moved` every live flow here (suspended, or left running by a crash) that `peer`
        holds at a newer epoch: it was restored or handed off there while this copy was away.
        Call it before `recover()`. The ids fenced."""
        live = [fid for status in (SUSPENDED, RUNNING) for fid in self.store.ids(status)]
        local = {fid: self.store.get(fid) for fid in live}
        if not local:
            return []
        fenced = []
        for flow_id, epoch in self.peers.get(peer).claims(sorted(local), deadline=self.deadline):
            rec = local.get(flow_id)
            if rec is not None and epoch > rec.epoch and self.store.transition(
                    flow_id, [rec.status], {"status": MOVED, "owner": peer, "waiting": None, "request": None,
                                            "updated": time.time()}):
                fenced.append(flow_id)
        if fenced:
            log.warning("%d stale flow(s) now owned by %s marked moved: %s", len(fenced), peer, fenced[:5])
        return fenced

    # ------------------------------------------------------------ calling side
    def replicate_to(self, peer: str) -> int:
        """Push this store's snapshot into `peer`'s replica slot for this engine; the flow count."""
        transport = self.peers.get(peer)
        text = json.dumps(self.export(), separators=(",", ":"))
        return transport.push_replica(self.name, text, deadline=self._replica_deadline)

    def restore_from(self, peer: str, source: str | None = None) -> list[str]:
        """Import the replica `peer` holds of `source` (default: this engine); the imported ids."""
        source = source or self.name
        if peer == self.name and peer not in self.peers.names():
            return self.restore_local(source)
        text = self.peers.get(peer).fetch_replica(source, deadline=self._replica_deadline)
        return self._restore_rows(replica.parse_text(text), None)

    def handoff_to(self, peer: str) -> list[str]:
        """Move every suspended flow to `peer`: they become `moved` here; the moved ids."""
        transport = self.peers.get(peer)
        moved = self._mark_moved(peer)
        if not moved:
            return []
        snapshot = []
        for rec, log_entries in self.store.records():
            if rec.id in moved:
                rec = dataclasses.replace(rec, status=SUSPENDED)
            snapshot.append((rec, log_entries))
        text = json.dumps(replica.build_export(self.name, snapshot), separators=(",", ":"))
        try:
            transport.push_replica(self.name, text, deadline=self._replica_deadline)
            transport.restore(self.name, sorted(moved), deadline=self._replica_deadline)
        except Exception:
            for flow_id in moved:
                self.store.transition(flow_id, [MOVED], {"status": SUSPENDED, "owner": None})
            raise
        log.info("handed off %d flow(s) to %s", len(moved), peer)
        return [fid for fid in self.store.ids(MOVED) if fid in moved]

    def _mark_moved(self, peer: str) -> set[str]:
        moved = set()
        for flow_id in self.store.ids(SUSPENDED):
            rec = self.store.get(flow_id)
            if rec is not None and flow_id not in self._active and self.store.transition(
                    flow_id, [SUSPENDED], {"status": MOVED, "owner": peer, "epoch": rec.epoch + 1,
                                           "updated": time.time()}):
                moved.add(flow_id)
        return moved
