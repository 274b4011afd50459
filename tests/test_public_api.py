"""The public face: `fedflow.__all__` pinned, sorted, importable, and documented."""

from __future__ import annotations

import inspect

import fedflow

PINNED = [
    "NOT_READY",
    "Engine",
    "Fail",
    "FedflowError",
    "FlowCancelled",
    "FlowError",
    "FlowExists",
    "FlowFailed",
    "FlowMoved",
    "FlowNotDone",
    "FlowTimeout",
    "LimitExceeded",
    "NonDeterminism",
    "PeerError",
    "PeerUnavailable",
    "RemoteError",
    "ReplayedError",
    "ReplicaError",
    "Suspended",
    "UnknownFlow",
    "UnknownFunction",
    "UnknownPeer",
    "UnsupportedValue",
    "attempt",
    "branch",
    "const",
    "defflow",
    "fail",
    "fail_reason",
    "flow",
    "identity",
    "is_failed",
    "is_suspended",
    "loop_until",
    "loop_while",
    "map_flow",
    "node",
    "parallel",
    "patched",
    "recover",
    "remote_failover",
    "remote_node",
    "request",
    "retry",
    "sequence",
    "sleep",
    "sleep_until",
    "step",
    "suspend",
    "tap",
    "tick",
    "timeout",
    "try_catch",
]


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps `__all__` in: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


def test_all_is_exactly_the_pinned_list() -> None:
    assert fedflow.__all__ == PINNED


def test_all_is_sorted() -> None:
    assert fedflow.__all__ == sorted(fedflow.__all__, key=isort_key)
    assert len(set(fedflow.__all__)) == len(fedflow.__all__)


def test_spec_combinators_and_verbs_are_all_public() -> None:
    spec = {"node", "identity", "const", "sequence", "parallel", "map_flow", "loop_while", "loop_until",
            "defflow", "flow", "branch", "retry", "timeout", "tick", "try_catch", "fail", "is_failed",
            "fail_reason", "recover", "attempt", "tap", "suspend", "step", "remote_node", "remote_failover",
            "request", "Engine", "Suspended", "is_suspended", "NOT_READY", "Fail"}
    assert spec <= set(fedflow.__all__)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from fedflow import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(PINNED)


def test_every_public_name_is_documented() -> None:
    for name in fedflow.__all__:
        obj = getattr(fedflow, name)
        target = obj if inspect.isclass(obj) or inspect.isroutine(obj) else type(obj)
        doc = inspect.getdoc(target)
        assert doc and doc.strip(), f"fedflow.{name} has no docstring"


def test_every_public_method_of_engine_is_documented() -> None:
    for name, member in inspect.getmembers(fedflow.Engine, inspect.isfunction):
        if not name.startswith("_"):
            assert inspect.getdoc(member), f"Engine.{name} has no docstring"


def test_the_package_documents_itself_and_has_a_version() -> None:
    assert inspect.getdoc(fedflow)
    assert isinstance(fedflow.__version__, str) and fedflow.__version__.count(".") == 2


def test_not_ready_is_a_singleton_with_a_readable_repr() -> None:
    assert type(fedflow.NOT_READY)() is fedflow.NOT_READY
    assert repr(fedflow.NOT_READY) == "fedflow.NOT_READY"
