"""Moving flows between instances: export/import, replicate, restore, handoff.

The engine's collaborator for everything that crosses instances. A replica is an export held in a peer's slot for the
engine it came from; restoring imports it into the live store. A handoff is
replicate + mark the local suspended flows `moved` + have the peer restore
exactly those, so the replay log (resolved suspends, journaled steps) moves
with every flow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from . import journal, replica, slots, values
from .errors import FlowMoved, ReplicaError
from .inflight import InFlight
from .ownership import OwnerCheck, is_stale, mark_moved
from .peers import PeerTable
from .progress import Report, counted
from .store.base import LIVE, MOVED, RUNNING, SUSPENDED, FlowRecord, LogEntry, Store

log = logging.getLogger("fedflow.federation")

Row = tuple[FlowRecord, list[LogEntry]]
Parsed = tuple[FlowRecord, list[journal.Entry]]  # a row with its log read


SKIP, WRITE, CLASH = "skip", "write", "clash"


def _same_json(a: str | None, b: str | None) -> bool:
    """Whether two stored JSON texts hold the same value, however each was written (an older
    fedflow stored inputs with non-ASCII characters raw, the import path escaped)."""
    if a == b or a is None or b is None:
        return a == b
    return values.dump_tree(json.loads(a)) == values.dump_tree(json.loads(b))


def _merge_decision(mine: Parsed, theirs: Parsed) -> str:
    """What importing `theirs` over our copy `mine` of the same id should do.

    Never roll back: a flow that ended here stays ended, and a live flow only takes
    a copy whose log extends ours. A `moved` tombstone takes the flow back when the
    copy is at least as new as when it left. Copies of different flows clash."""
    (a, a_log), (b, b_log) = mine, theirs
    if a.name != b.name or not _same_json(a.input, b.input):
        return CLASH
    if ((a.status, a.waiting) == (b.status, b.waiting) and _same_json(a.result, b.result)
            and a_log == b_log):
        return SKIP
    if a.status == MOVED:
        return WRITE if b.status != MOVED and b.epoch >= a.epoch else SKIP
    if b.status == MOVED:
        return SKIP
    ours_extends = a_log[:len(b_log)] == b_log
    if a.status not in LIVE:  # ours ended: an older live copy is nothing new
        return SKIP if ours_extends and b.status in LIVE else CLASH
    if len(b_log) > len(a_log) and b_log[:len(a_log)] == a_log:
        return WRITE
    return SKIP if ours_extends else CLASH


class Federation:
    """Replica, restore, fencing and handoff for the engine named `name`: its store and peers,
    the flows it is working on (`inflight`), and `recover`, which re-runs flows left running."""

    def __init__(self, name: str, store: Store, peers: PeerTable, deadline: float, inflight: InFlight,
                 recover: Callable[[], list[str]], timers_changed: Callable[[], None]) -> None:
        self.name = name
        self.store = store
        self.peers = peers
        self.deadline = deadline
        self.inflight = inflight
        self.recover = recover
        self.timers_changed = timers_changed
        self._replica_deadline = max(60.0, deadline)
        self.owner_check = OwnerCheck(name, store, peers)
        self.slot_limits = slots.SlotLimits()

    def export(self, report: Report | None = None) -> dict[str, Any]:
        """The whole store as plain, JSON-serialisable data (flows read told to `report`)."""
        return replica.build_export(self.name, self._records(report))

    def _records(self, report: Report | None) -> Any:
        """Every flow with its log, each one read told to `report` (phase "exporting")."""
        total = sum(self.store.count_by_status().values()) if report is not None else None
        return counted(self.store.records(), "exporting", total, report)

    def import_store(self, data: Any) -> list[str]:
        """Merge an export in; malformed data or a clashing flow raises ReplicaError, changing nothing."""
        return self._merge(replica.parse_export(data))

    def _merge(self, rows: list[Row], claim: bool = False, report: Report | None = None) -> list[str]:
        """Write the rows that bring something new (see `_merge_decision`), all in one
        transaction; ReplicaError naming the clashes, writing nothing, if any clash.
        With `claim`, written flows become this engine's at the next epoch."""
        writes, clashes = [], []
        with self.inflight.lock:
            for rec, log_entries in counted(rows, "restoring", len(rows), report):
                existing = self.store.get(rec.id)
                if existing is None:
                    decision = WRITE
                elif self.inflight.is_busy(rec.id):
                    decision = CLASH
                else:
                    decision = _merge_decision((existing, journal.load_all(self.store.load_log(rec.id), rec.id)),
                                               (rec, journal.load_all(log_entries, rec.id)))
                if decision == WRITE:
                    if claim:
                        rec = dataclasses.replace(rec, owner=self.name, epoch=max(rec.epoch, existing.epoch
                                                  if existing else 0) + 1)
                    writes.append((rec, log_entries))
                elif decision == CLASH:
                    clashes.append(rec.id)
            if clashes:
                raise ReplicaError(f"{len(clashes)} flow(s) in the replica clash with different or newer flows "
                                   f"here ({', '.join(clashes[:5])}); forget them here first, or restore into "
                                   f"an instance that does not have them")
            self.store.put_flows(writes)
        if any(rec.wake_at is not None for rec, _log in writes):
            self.timers_changed()  # they brought their timers
        return [rec.id for rec, _log in writes]

    # ------------------------------------------------------------ serving side
    def accept_replica(self, source: str, export_text: str, sender: str | None = None,
                       may_write: bool = True) -> int:
        """Keep a validated replica of engine `source` in its slot, sent by `sender` (allowed to
        write that slot: `may_write`), within `slot_limits`; the count of flows in it."""
        rows = replica.parse_text(export_text)
        size = len(export_text.encode("utf-8", "surrogatepass"))
        slots.check_write(self.store, self.slot_limits, source, size, sender, may_write)
        self.store.put_replica(source, export_text, sender)
        log.info("holding a replica of %s (%d flows)", source, len(rows))
        return len(rows)

    def replica_text(self, source: str) -> str:
        """The replica this engine holds of `source`; ReplicaError when it holds none."""
        text = self.store.get_replica(source)
        if text is None:
            raise ReplicaError(f"engine {self.name!r} holds no replica of {source!r}; "
                               f"run replicate_to({self.name!r}) on {source!r} first")
        return text

    def restore_local(self, source: str, ids: list[str] | None = None, report: Report | None = None) -> list[str]:
        """Import the replica this engine holds of `source` (only `ids`, when given)."""
        return self._restore_rows(replica.parse_text(self.replica_text(source)), ids, source, report)

    def _restore_rows(self, rows: list[Row], ids: list[str] | None, source: str,
                      report: Report | None = None) -> list[str]:
        """Import rows of engine `source` as this engine's own: a handoff (`ids`) arrives with
        its epoch already bumped; a plain restore claims each flow at the next epoch and leaves
        out flows that were moved or that belong to an instance other than `source`."""
        if ids is not None:
            wanted = set(ids)
            return self._merge([(dataclasses.replace(rec, owner=self.name), log_entries)
                                for rec, log_entries in rows if rec.id in wanted], report=report)
        restored = self._merge([(rec, log_entries) for rec, log_entries in rows
                                if rec.status != MOVED and rec.owner in (None, source, self.name)], claim=True,
                               report=report)
        self.owner_check.restored(restored)
        brought = set(restored)
        running = [rec.id for rec, _log in rows if rec.id in brought and rec.status == RUNNING]
        for flow_id in running:
            with contextlib.suppress(FlowMoved):  # a peer holds a newer copy: it was marked moved
                self.owner_check.confirm(flow_id)
        if running:
            self.recover()  # a flow the source was running when it went away: finish it here
        return restored

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
        holds at a newer epoch (or the same one under a greater name, see `fedflow.ownership`):
        it was restored or handed off there while this copy was away. Call it before
        `recover()`. The ids fenced."""
        live = [fid for status in (SUSPENDED, RUNNING) for fid in self.store.ids(status)]
        if not live:
            return []
        fenced = []
        for flow_id, epoch in self.peers.get(peer).claims(sorted(live), deadline=self.deadline):
            rec = self.store.get(flow_id)  # a run under way here stops at its next write
            if rec is not None and is_stale(self.name, rec.epoch, peer, epoch) \
                    and mark_moved(self.store, flow_id, peer, rec.epoch):
                fenced.append(flow_id)
        if fenced:
            log.warning("%d stale flow(s) now owned by %s marked moved: %s", len(fenced), peer, fenced[:5])
        return fenced

    # ------------------------------------------------------------ calling side
    def replicate_to(self, peer: str, report: Report | None = None) -> int:
        """Push this store's snapshot into `peer`'s replica slot for this engine; the flow count.
        `report` is told how far the export and the sending are."""
        transport = self.peers.get(peer)
        text = json.dumps(self.export(report), separators=(",", ":"))
        return transport.push_replica(self.name, text, deadline=self._replica_deadline,
                                      **_bytes_told("sending", report))

    def restore_from(self, peer: str, source: str | None = None, report: Report | None = None) -> list[str]:
        """Import the replica `peer` holds of `source` (default: this engine); the imported ids.
        `report` is told how far the receiving and the restoring are."""
        source = source or self.name
        if peer == self.name and peer not in self.peers.names():
            return self.restore_local(source, report=report)
        text = self.peers.get(peer).fetch_replica(source, deadline=self._replica_deadline,
                                                  **_bytes_told("receiving", report))
        return self._restore_rows(replica.parse_text(text), None, source, report)

    def handoff_to(self, peer: str, report: Report | None = None) -> list[str]:
        """Move every suspended flow to `peer`; they become `moved` here. The moved ids.

        Crash-safe order: the flows are held (not resumable) while the peer receives and
        restores them at the next epoch; only then are they marked moved here. A crash in
        between leaves them suspended here at the older epoch, which the start-up fence
        resolves; a failure asks the peer which flows it took before giving any back.
        `report` is told how far the export and the sending are."""
        transport = self.peers.get(peer)
        held = self._hold_suspended(peer)
        if not held:
            return []
        try:
            epochs = {rec.id: rec.epoch for rec in held}
            snapshot = [(dataclasses.replace(rec, owner=peer, epoch=rec.epoch + 1) if rec.id in epochs else rec,
                         log_entries) for rec, log_entries in self._records(report)]
            text = json.dumps(replica.build_export(self.name, snapshot), separators=(",", ":"))
            try:
                transport.push_replica(self.name, text, deadline=self._replica_deadline,
                                       **_bytes_told("sending", report))
                transport.restore(self.name, sorted(epochs), deadline=self._replica_deadline)
                taken = sorted(epochs)
            except Exception:
                self._mark_moved(self._taken_by(transport, epochs), peer)
                raise
            self._mark_moved(taken, peer)
        finally:
            self.inflight.release([rec.id for rec in held])
        log.info("handed off %d flow(s) to %s", len(taken), peer)
        return taken

    def _hold_suspended(self, peer: str) -> list[FlowRecord]:
        """Hold every suspended flow not running here for the handoff to `peer`, so nothing
        resumes it meanwhile."""
        held = []
        with self.inflight.lock:
            for flow_id in self.store.ids(SUSPENDED):
                rec = self.store.get(flow_id)
                if rec is not None and rec.status == SUSPENDED and self.inflight.hold(flow_id, peer):
                    held.append(rec)
        return held

    def _taken_by(self, transport: Any, epochs: dict[str, int]) -> list[str]:
        """After a failed handoff: the flows the peer holds at a newer epoch (it did take them)."""
        try:
            claimed = transport.claims(sorted(epochs), deadline=self.deadline)
        except Exception as exc:  # the peer is gone: keep them; the start-up fence settles it later
            log.warning("handoff failed and the peer cannot say what it took (%s); flows stay here", exc)
            return []
        return sorted(fid for fid, epoch in claimed if fid in epochs and epoch > epochs[fid])

    def _mark_moved(self, ids: list[str], peer: str) -> None:
        """Mark `ids` moved to `peer` (one fsync for the lot: the last write is acknowledged)."""
        present = [rec for rec in map(self.store.get, ids) if rec is not None]
        for n, rec in enumerate(present):
            self.store.transition(rec.id, [SUSPENDED], {"status": MOVED, "owner": peer, "epoch": rec.epoch + 1,
                                                        "wake_at": None, "updated": time.time()},
                                  version=rec.version, acknowledge=n == len(present) - 1)


def _bytes_told(phase: str, report: Report | None) -> dict[str, Any]:
    """The `on_bytes` argument of a replica push or fetch telling `report` about `phase`; none
    without a report (so a transport that takes no `on_bytes` still works)."""
    if report is None:
        return {}
    return {"on_bytes": lambda done, total: report(phase, done, total, "bytes")}
