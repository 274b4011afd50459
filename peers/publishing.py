"""The publishing peer: the seed's `publish` flow, ready to serve.

`publish` appends "!" to its input text, then branches on length: a text of
3 characters or more goes to the `publish` function of the peer named `fed`
(a journaled remote call, made once even across replays and restarts); a
shorter one becomes ``"rejected"``.

Serve it next to a `fed` peer (peers/fed.py)::

    fedflow serve --name fed --listen 127.0.0.1:50052 --load peers/fed.py
    fedflow serve --name pub --listen 127.0.0.1:50051 --load peers/publishing.py \\
        --peer fed=127.0.0.1:50052
    fedflow start --at 127.0.0.1:50051 publish '"hello"'
    # {"id": "pub-...", "status": "done", "result": {"published": "hello!", "by": "fed", ...}}
    fedflow start --at 127.0.0.1:50051 publish '"x"'
    # {"id": "pub-...", "status": "done", "result": "rejected"}

With no `fed` peer configured, this instance stands in for it (an
in-process peer), so ``make serve`` works on its own.
"""

from __future__ import annotations

import logging
from typing import Any

from fedflow import Engine, branch, const, defflow, node, remote_node, sequence

log = logging.getLogger("peers.publishing")


def exclaim(text: str) -> str:
    """Append "!" to the text."""
    return f"{text}!"


def long_enough(text: str) -> bool:
    """True for a text worth publishing (3 characters or more)."""
    return len(text) >= 3


#: The seed's flow: exclaim, then publish on `fed` or reject.
publish = sequence(node(exclaim), branch(long_enough, remote_node("fed", "publish"), const("rejected")))


def register(engine: Engine) -> None:
    """Define the `publish` flow; stand in for a missing `fed` peer."""
    defflow("publish", publish)
    if "fed" not in engine.peers.names():
        def publish_here(text: Any) -> dict[str, Any]:
            return {"published": text, "by": engine.name}

        engine.peers.register("fed", {"publish": publish_here})
        log.info("no peer named fed: %s publishes by itself (add --peer fed=HOST:PORT)", engine.name)
