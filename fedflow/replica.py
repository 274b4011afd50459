"""The export format: a whole store as plain, JSON-serialisable, versioned data.

    {"format": "fedflow-store", "version": 1, "engine": NAME,
     "flows": [{"id", "name", "status", "input", "log", "result"?, "error"?,
                "waiting", "request"?, "owner", "epoch", "created", "updated", "wake_at"?}, ...]}

Values inside are tagged JSON trees (see `fedflow.values`). `parse_export`
checks every field and value before anything is written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from . import journal, values
from .errors import ReplicaError, UnsupportedValue
from .store.base import STATUSES, FlowRecord, LogEntry

FORMAT = "fedflow-store"
VERSION = 1

Row = tuple[FlowRecord, list[LogEntry]]


def _tree(text: str) -> Any:
    return json.loads(text)


def flow_data(rec: FlowRecord, log: list[LogEntry]) -> dict[str, Any]:
    """One flow as export data."""
    out: dict[str, Any] = {
        "id": rec.id, "name": rec.name, "status": rec.status, "input": _tree(rec.input),
        "log": journal.load_all(log, rec.id),
        "waiting": rec.waiting, "owner": rec.owner, "epoch": rec.epoch,
        "created": rec.created, "updated": rec.updated,
    }
    if rec.result is not None:
        out["result"] = _tree(rec.result)
    if rec.error is not None:
        out["error"] = _tree(rec.error)
    if rec.request is not None:
        out["request"] = _tree(rec.request)
    if rec.wake_at is not None:
        out["wake_at"] = rec.wake_at
    return out


def build_export(engine: str, rows: Iterable[Row]) -> dict[str, Any]:
    """The export of `rows` made by engine `engine`."""
    return {"format": FORMAT, "version": VERSION, "engine": engine,
            "flows": [flow_data(rec, log) for rec, log in rows]}


def _text(tree: Any, where: str) -> str:
    try:
        return values.dump_tree(values.encode(values.decode(tree)))
    except (UnsupportedValue, RecursionError) as exc:
        raise ReplicaError(f"{where}: not plain data ({exc})") from exc


def _want(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise ReplicaError(f"{where}: {what}; this is not a fedflow export")


def _entry(entry: Any, where: str) -> journal.Entry:
    _want(isinstance(entry, dict) and entry.get("t") in ("s", "j"), where, "a log entry needs t 's' or 'j'")
    if entry["t"] == "s":
        _want(isinstance(entry.get("tag"), str) and "v" in entry, where, "a suspend entry needs tag and v")
        woken = {"w": 1} if entry.get("w") == 1 else {}  # ended by its timer
        return {"t": "s", "tag": entry["tag"], "v": json.loads(_text(entry["v"], where)), **woken}
    _want(isinstance(entry.get("k"), str) and isinstance(entry.get("n"), str), where, "a step entry needs k, n")
    if "e" in entry:
        err = entry["e"]
        _want(isinstance(err, dict) and all(isinstance(err.get(f), str) for f in ("type", "message")),
              where, "a step error needs type and message")
        return {"t": "j", "k": entry["k"], "n": entry["n"], "e": err}
    _want("v" in entry, where, "a step entry needs v or e")
    return {"t": "j", "k": entry["k"], "n": entry["n"], "v": json.loads(_text(entry["v"], where))}


def _optional_str(data: dict[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    _want(value is None or isinstance(value, str), where, f"{key} must be a string or null")
    return value


def parse_flow(data: Any, where: str) -> Row:
    """Validate one exported flow; its record and log."""
    _want(isinstance(data, dict), where, "a flow must be an object")
    _want(isinstance(data.get("id"), str) and data["id"] != "", where, "id must be a non-empty string")
    _want(data.get("status") in STATUSES, where, f"status must be one of {sorted(STATUSES)}")
    _want("input" in data and isinstance(data.get("log"), list), where, "input and log are required")
    epoch = data.get("epoch", 0)
    _want(type(epoch) is int and epoch >= 0, where, "epoch must be a non-negative int")
    stamps = [data.get(k, 0.0) for k in ("created", "updated")]
    _want(all(type(s) in (int, float) for s in stamps), where, "created/updated must be numbers")
    request = data.get("request")
    _want(request is None or (isinstance(request, list) and len(request) == 2 and isinstance(request[0], str)),
          where, "request must be [kind, payload]")
    _want(data["status"] != "suspended" or isinstance(data.get("waiting"), str), where,
          "a suspended flow must name the tag it waits on")
    error = data.get("error")
    _want(error is None or isinstance(error, dict), where, "error must be an object")
    wake_at = data.get("wake_at")
    _want(wake_at is None or (type(wake_at) in (int, float) and math.isfinite(wake_at)), where,
          "wake_at must be a number (seconds since the epoch) or null")
    rec = FlowRecord(
        id=data["id"], name=_optional_str(data, "name", where), status=data["status"],
        input=_text(data["input"], f"{where}.input"),
        result=_text(data["result"], f"{where}.result") if "result" in data else None,
        error=json.dumps(error) if error is not None else None,
        waiting=_optional_str(data, "waiting", where),
        request=json.dumps([request[0], json.loads(_text(request[1], where))]) if request else None,
        owner=_optional_str(data, "owner", where), epoch=epoch,
        created=float(stamps[0]), updated=float(stamps[1]),
        wake_at=None if wake_at is None else float(wake_at))
    log = [journal.dump(_entry(e, f"{where}.log[{i}]")) for i, e in enumerate(data["log"])]
    return rec, log


def parse_export(data: Any) -> list[Row]:
    """Validate a whole export; ReplicaError naming the first problem, else its rows."""
    _want(isinstance(data, dict), "export", f"expected an object, got {type(data).__name__}")
    _want(data.get("format") == FORMAT, "export", f"format must be {FORMAT!r}")
    version = data.get("version")
    _want(type(version) is int and version >= 1, "export", "version must be an int >= 1")
    if version > VERSION:
        raise ReplicaError(f"export version {version} is newer than this fedflow reads ({VERSION}); "
                           f"upgrade fedflow on this instance")
    _want(isinstance(data.get("flows"), list), "export", "flows must be a list")
    rows = [parse_flow(f, f"flows[{i}]") for i, f in enumerate(data["flows"])]
    seen: set[str] = set()
    for rec, _log in rows:
        _want(rec.id not in seen, "export", f"flow id {rec.id!r} appears twice")
        seen.add(rec.id)
    return rows


def parse_text(text: str | bytes) -> list[Row]:
    """Validate export JSON text; ReplicaError when it is not valid JSON or not an export."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ReplicaError(f"replica is not valid JSON ({exc}); it may be truncated") from exc
    return parse_export(data)
