"""The `fed` peer: publishes what the publishing peers send it.

Exposes `publish(text)`, which the `publish` flow of peers/publishing.py
calls as ``remote_node("fed", "publish")``, and `published()`, the texts
published so far by this process::

    fedflow serve --name fed --listen 127.0.0.1:50052 --load peers/fed.py
    fedflow call --at 127.0.0.1:50052 publish '"hello!"'
    # {"result": {"published": "hello!", "by": "fed", "count": 1}}
"""

from __future__ import annotations

import threading
from typing import Any

from fedflow import Engine


def register(engine: Engine) -> None:
    """Expose `publish` and `published` on `engine`."""
    lock = threading.Lock()
    texts: list[Any] = []

    def publish(text: Any) -> dict[str, Any]:
        with lock:
            texts.append(text)
            count = len(texts)
        return {"published": text, "by": engine.name, "count": count}

    def published(_payload: Any = None) -> list[Any]:
        with lock:
            return list(texts)

    engine.expose("publish", publish)
    engine.expose("published", published)
