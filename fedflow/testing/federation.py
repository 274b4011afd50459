"""In-process federations: engines in one process that know each other as peers."""

from __future__ import annotations

from ..engine import Engine

__all__ = ["local_federation"]


def local_federation(*names: str) -> dict[str, Engine]:
    """One in-memory `Engine` per name, each registered as an in-process peer of every
    other under that name: `{name: Engine}`, in the order given. Close them when done.

    >>> peers = local_federation("shop", "bank")
    >>> peers["bank"].expose("charge", lambda order: {"charged": order["total"]})
    >>> from fedflow import remote_node
    >>> peers["shop"].start(remote_node("bank", "charge"), {"total": 12})
    {'charged': 12}
    >>> for engine in peers.values():
    ...     engine.close()
    """
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a federation member needs a non-empty text name, got {name!r}")
    if not names:
        raise ValueError('name the members of the federation, e.g. fedflow_federation("a", "b")')
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"federation members need distinct names; {', '.join(map(repr, twice))} given twice")
    engines = {name: Engine(name=name) for name in names}
    for name, engine in engines.items():
        for other, peer in engines.items():
            if other != name:
                engine.peers.register(other, peer)
    return engines
