"""What the console's browser tests and its screenshots share: a demo engine with a console, and Chromium.

Chromium is Debian's (`/usr/bin/chromium`, installed by `make chromium`):
Playwright's own browser download cannot work on these machines.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import fedflow
from fedflow import Engine, node, remote_node, sequence, step, suspend
from fedflow.console import Console

CHROMIUM = os.environ.get("FEDFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCRIPT = "<script>alert(1)</script>"


def _boom(x: Any) -> Any:
    raise ValueError(f"cannot publish {x!r}: the title is missing")


def define_flows(prefix: str) -> dict[str, str]:
    """Register the demo flows under names starting with `prefix`; their names by role."""
    names = {role: f"{prefix}_{role}" for role in ("review", "echo", "boom", "priced")}
    fedflow.defflow(names["review"], node(lambda x: {"draft": x, "verdict": suspend("review")}))
    fedflow.defflow(names["echo"], node(lambda x: {"echo": x}))
    fedflow.defflow(names["boom"], step(_boom, "publish"))
    fedflow.defflow(names["priced"], sequence(step(lambda x: {"sku": x, "qty": 2}, "order"),
                                              remote_node("pricing", "quote"),
                                              node(lambda q: {"quote": q, "ok": suspend("approve")})))
    return names


def demo_engine(name: str, names: dict[str, str]) -> Engine:
    """An in-memory engine with a peer ("pricing", in-process) and a few flows in each status."""
    engine = Engine(name=name)
    engine.peers.register("pricing", {"quote": lambda order: {"sku": order["sku"], "total": 19.5 * order["qty"]}})
    return engine


def fill(engine: Engine, names: dict[str, str]) -> None:
    """Flows in each status: waiting, done, failed, cancelled, one with a remote call in its journal."""
    for i in range(3):
        engine.start(names["review"], {"title": f"Post {i}", "body": "Hello"}, id=f"post-{i}")
    engine.start(names["echo"], {"n": 1}, id="echo-1")
    engine.start(names["priced"], "sku-42", id="order-1")
    with contextlib.suppress(fedflow.FlowFailed):
        engine.start(names["boom"], {"title": None}, id="publish-1")
    engine.start(names["review"], {"title": "Dropped"}, id="post-dropped")
    engine.cancel("post-dropped")


@contextlib.contextmanager
def console_on(engine: Engine, token: str | None = None) -> Iterator[str]:
    """Serve `engine`'s console on a free loopback port; yields its base URL."""
    console = Console("127.0.0.1:0", token)
    console.start(engine)
    try:
        yield f"http://127.0.0.1:{console.port}"
    finally:
        console.close()


def launch(playwright: Any) -> Any:
    """Headless Debian Chromium; a clear error naming `make chromium` when it is missing."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium) and try again")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
