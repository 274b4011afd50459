"""The module every chaos instance loads: an exposed `effect` that writes one line keyed by
its idempotency key (from the payload), and flows `job_to_<peer>` that call it on a peer,
then wait for a resume."""

from __future__ import annotations

import os

import fedflow
from fedflow import node, remote_node, sequence, suspend

HOSTS = ("a", "b", "c")


def _effect(payload: dict) -> str:
    fd = os.open(os.environ["CHAOS_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{payload['key']}\n".encode())
    finally:
        os.close(fd)
    return payload["key"]


def register(engine: fedflow.Engine) -> None:
    """Expose `effect` and define one job flow per peer."""
    engine.expose("effect", _effect)
    for host in HOSTS:
        fedflow.defflow(f"job_to_{host}", sequence(remote_node(host, "effect"),
                                                   node(lambda key: [key, suspend("go")])))
