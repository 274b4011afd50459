"""The chaos checker: reads every store and effects file once the instances are stopped."""

from __future__ import annotations

import collections
import sqlite3
from pathlib import Path
from typing import Any

LIVE = ("running", "suspended")


def _statuses(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT id, status FROM flows"))
    finally:
        conn.close()


def check(work: Path, names: tuple[str, ...], acked: dict[str, str]) -> dict[str, Any]:
    """Per acknowledged flow: on how many stores it is done and live, and its effect count."""
    stores = {name: _statuses(work / f"{name}.db") for name in names}
    effects = collections.Counter(line for name in names if (work / f"effects-{name}").exists()
                                  for line in (work / f"effects-{name}").read_text().splitlines())
    flows = {}
    for flow_id in acked:
        found = [stores[name].get(flow_id) for name in names]
        flows[flow_id] = {"done": found.count("done"), "live": sum(s in LIVE for s in found),
                          "effects": effects[f"{flow_id}/call"]}
    return flows


def _figures(flows: dict[str, Any]) -> dict[str, int]:
    return {"acknowledged": len(flows), "done once": sum(f["done"] == 1 for f in flows.values()),
            "lost": sum(f["done"] == 0 for f in flows.values()),
            "doubled": sum(f["done"] > 1 or f["effects"] > 1 for f in flows.values()),
            "live on two": sum(f["live"] > 1 for f in flows.values())}


def round_line(report: dict[str, Any], n: int, fault: str) -> str:
    """One round's figures."""
    mine = {k: v for k, v in report.items() if k.startswith(f"r{n}-")}
    return f"round {n:2d} ({fault}): " + ", ".join(f"{k} {v}" for k, v in _figures(mine).items())


def total_line(report: dict[str, Any]) -> str:
    """The whole run's figures."""
    return "total: " + ", ".join(f"{k} {v}" for k, v in _figures(report).items())


def clean(report: dict[str, Any]) -> bool:
    """No loss, no doubling, no flow live on two instances."""
    figures = _figures(report)
    return figures["lost"] == figures["doubled"] == figures["live on two"] == 0
