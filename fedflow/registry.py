"""Named flows, registered process-wide so a flow can be found again after a restart."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import UnknownFlow

F = TypeVar("F", bound=Callable[[Any], Any])

_lock = threading.Lock()
_by_name: dict[str, Callable[[Any], Any]] = {}
_by_identity: dict[int, str] = {}


def defflow(name: str, body: F) -> F:
    """Bind `body` to `name` so the engine can start it by name and resume it after a restart."""
    if not isinstance(name, str) or not name:
        raise TypeError("a flow name is a non-empty str")
    if not callable(body):
        raise TypeError(f"defflow({name!r}, ...) needs a callable flow, got {type(body).__name__}")
    with _lock:
        old = _by_name.get(name)
        if old is not None and _by_identity.get(id(old)) == name:
            del _by_identity[id(old)]
        _by_name[name] = body
        _by_identity[id(body)] = name
    return body


def flow(name: str) -> Callable[[F], F]:
    """Decorator form of `defflow`: ``@flow("signup")`` above a one-argument function."""
    def register(body: F) -> F:
        return defflow(name, body)
    return register


def lookup(name: str) -> Callable[[Any], Any]:
    """The flow registered as `name`; UnknownFlow (a FlowError) saying how to register it otherwise."""
    with _lock:
        found = _by_name.get(name)
    if found is None:
        raise UnknownFlow(f"no flow named {name!r} is registered in this process; define it with "
                          f"defflow({name!r}, ...) or load the module that does (fedflow serve --load)")
    return found


def name_of(body: Callable[[Any], Any]) -> str | None:
    """The name `body` is registered under, or None for an anonymous flow."""
    with _lock:
        return _by_identity.get(id(body))


def names() -> list[str]:
    """Every registered flow name, sorted."""
    with _lock:
        return sorted(_by_name)
