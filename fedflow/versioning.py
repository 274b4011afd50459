"""Changing flow code safely: `patched(patch_id)` and `Engine.check`.

`patched` journals its answer under the key ``patch:<id>`` (outside the
positional keys, so adding it moves no step): True when the run reaches it
with nothing older left to replay (new code, new territory), False when the
log still holds entries recorded past this point by code without the patch.

`check` replays each live flow's log against the code loaded now, read-only:
the replay stops at the first point that would need a new effect (a step,
a call, a timer, a patch marker) or at the wait it reaches, and reports a
flow whose journal the code asks for in a different order, whose log holds
entries the code never reads back, or that would wait on another tag.
"""

from __future__ import annotations

import json
from typing import Any

from . import errors, journal, replay, values
from .errors import FedflowError
from .replay import DivergedSignal, Run, SuspendSignal, run_flow
from .store.base import LIVE, RUNNING, SUSPENDED, FlowRecord, Store


def patched(patch_id: str) -> bool:
    """True when this run of the flow reached here with code that has patch `patch_id`;
    False when it replays a log recorded before the patch. Journaled: it never changes."""
    if not isinstance(patch_id, str) or not patch_id:
        raise TypeError("patched() takes a non-empty string id, e.g. patched('new-pricing')")
    run = replay.current_run()
    if run is None:
        raise errors.FlowError("patched() was called outside a running flow; call it inside a node")
    key = f"patch:{patch_id}"
    entry = run.journal.get(key)
    if entry is not None:
        run.consumed.add(key)
        return bool(values.decode(entry["v"]))
    answer = not run.unconsumed()
    try:
        run.before_effect()
    except _Frontier:
        return answer  # check(): the answer, left unrecorded
    run.record({"t": "j", "k": key, "n": "patched", "v": answer})
    return answer


class _Frontier(BaseException):
    """Unwinds a checked replay at the first point that would run something new."""


def _stop_at_frontier() -> None:
    raise _Frontier()


def _refuse_write(_entry: Any) -> None:
    raise AssertionError("check() never writes")  # pragma: no cover - _stop_at_frontier comes first


def check_record(engine: Any, rec: FlowRecord, log: list) -> str | None:
    """None when replaying `rec`'s `log` with today's code reaches the same place; else why not."""
    try:
        body = engine._resolve(rec)
    except FedflowError as exc:
        return str(exc)
    run = Run(rec.id, log, _refuse_write, engine, still_wanted=_stop_at_frontier, nonce=repr(rec.created))
    stopped_at = None
    try:
        run_flow(run, body, values.loads(rec.input))
        return (f"flow {rec.id} would now run to its end without waiting on {rec.waiting!r}"
                if rec.status == SUSPENDED else None) or _leftovers(run)
    except _Frontier:
        pass
    except SuspendSignal as sig:
        stopped_at = sig.tag
    except DivergedSignal as sig:
        return (f"flow {rec.id}: replay asks for {sig.expected!r} at journal position {sig.key} but the log "
                f"recorded {sig.recorded!r}")
    except Exception as exc:
        return f"flow {rec.id}: replay raised {type(exc).__name__}: {exc}"
    left = _leftovers(run)
    if left:
        return left
    if stopped_at is not None and rec.status == SUSPENDED and stopped_at != rec.waiting:
        return f"flow {rec.id} waits on {rec.waiting!r} but the new code would wait on {stopped_at!r}"
    return None


def _leftovers(run: Run) -> str | None:
    left = run.unconsumed()
    if not left:
        return None
    shown = ", ".join(_describe(run, item) for item in left[:3])
    return f"flow {run.flow_id}: the log recorded {shown} that the new code never asks for"


def _describe(run: Run, item: str) -> str:
    if item.startswith("s:"):
        return f"a resume of {item[2:]!r}"
    return f"{run.journal[item]['n']!r} at journal position {item}"


class Checking:
    """`Engine.check`: replay live flows against the code loaded now, writing nothing."""

    store: Store

    def check(self, ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Replay every live flow (or `ids`) against the code loaded now, without running any
        step, call or timer and without writing: ``[{"id", "flow", "ok", "error"}, ...]``."""
        wanted = ids if ids is not None else [fid for status in (RUNNING, SUSPENDED)
                                              for fid in self.store.ids(status)]
        report = []
        for flow_id in wanted:
            rec = self.store.get(flow_id)
            if rec is None:
                error: str | None = f"no flow {flow_id!r} in this store"
            elif rec.status not in LIVE:
                error = None  # a finished flow never replays again
            else:
                error = check_record(self, rec, journal.load_all(self.store.load_log(flow_id), flow_id))
            report.append({"id": flow_id, "flow": rec.name if rec else None, "ok": error is None,
                           "error": error})
        return report


def check_report_text(report: list[dict[str, Any]]) -> str:
    """`report` as one JSON object: every flow checked, and whether all are ok."""
    return json.dumps({"ok": all(r["ok"] for r in report), "flows": report}, separators=(",", ":"))

