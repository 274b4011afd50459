"""The error tree: exact hierarchy, docstrings, attributes, and messages
that say what to do, taken from errors the engine really raises."""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import fedflow
from fedflow import (
    Engine,
    FedflowError,
    FlowCancelled,
    FlowError,
    FlowExists,
    FlowFailed,
    FlowMoved,
    FlowNotDone,
    FlowTimeout,
    LimitExceeded,
    NonDeterminism,
    PeerError,
    PeerUnavailable,
    RemoteError,
    ReplayedError,
    ReplicaError,
    UnknownFlow,
    UnknownFunction,
    UnknownPeer,
    UnsupportedValue,
    node,
    remote_node,
    sequence,
    step,
    suspend,
    tick,
    timeout,
    try_catch,
    values,
)

# child -> its exact bases
TREE: dict[type[BaseException], tuple[type, ...]] = {
    FedflowError: (Exception,),
    FlowError: (FedflowError,),
    UnknownFlow: (FlowError, KeyError),
    FlowExists: (FlowError,),
    FlowCancelled: (FlowError,),
    FlowFailed: (FlowError,),
    NonDeterminism: (FlowFailed,),
    FlowMoved: (FlowError,),
    FlowNotDone: (FlowError,),
    FlowTimeout: (FedflowError,),
    ReplayedError: (FedflowError,),
    UnsupportedValue: (FedflowError, TypeError),
    ReplicaError: (FedflowError,),
    PeerError: (FedflowError,),
    UnknownPeer: (PeerError,),
    PeerUnavailable: (PeerError,),
    RemoteError: (PeerError,),
    UnknownFunction: (PeerError,),
    LimitExceeded: (PeerError,),
}


def test_the_error_tree_is_exactly_as_specified() -> None:
    for cls, bases in TREE.items():
        assert cls.__bases__ == bases, cls


def test_every_fedflow_error_class_is_in_the_tree() -> None:
    exported = {obj for name in fedflow.__all__ if isinstance(obj := getattr(fedflow, name), type)
                and issubclass(obj, BaseException)}
    module = {obj for _n, obj in inspect.getmembers(fedflow.errors, inspect.isclass)
              if issubclass(obj, FedflowError)}
    assert exported == module == set(TREE)


@pytest.mark.parametrize("cls", list(TREE), ids=lambda c: c.__name__)
def test_every_error_class_has_a_raised_when_docstring(cls: type) -> None:
    doc = cls.__dict__.get("__doc__") or ""
    assert doc.strip().startswith("Raised"), cls


def test_the_errors_module_draws_the_tree() -> None:
    doc = fedflow.errors.__doc__ or ""
    for cls in TREE:
        assert cls.__name__ in doc


# -- attributes -------------------------------------------------------------------------------------

def test_attributes_are_kept() -> None:
    assert FlowError("m", id="f").id == "f"
    assert FlowError("m").id is None
    failed = FlowFailed("m", id="f", cause=ValueError("v"))
    assert (failed.id, type(failed.cause)) == ("f", ValueError)
    nd = NonDeterminism("m", id="f", expected="step a", recorded="step b")
    assert (nd.id, nd.expected, nd.recorded, nd.cause) == ("f", "step a", "step b", None)
    assert FlowMoved("m", id="f", owner="b").owner == "b"
    assert UnsupportedValue("m", path="input[0]").path == "input[0]"
    assert PeerError("m", peer="p").peer == "p"
    remote = RemoteError("m", peer="p", remote_type="KeyError", remote_message="k")
    assert (remote.peer, remote.remote_type, remote.remote_message) == ("p", "KeyError", "k")
    assert UnknownPeer("m", peer="x").peer == "x"
    assert UnknownFunction("m", peer="x").peer == "x"
    assert PeerUnavailable("m", peer="x").peer == "x"
    replayed = ReplayedError("T: m", type_name="T", message="m")
    assert (replayed.type_name, replayed.message) == ("T", "m")


def test_unknown_flow_is_a_key_error_whose_text_is_not_quoted() -> None:
    err = UnknownFlow("no flow 'x'; list() shows the flows", id="x")
    assert isinstance(err, KeyError)
    assert str(err) == "no flow 'x'; list() shows the flows"
    with pytest.raises(KeyError):
        raise err


def test_the_errors_are_catchable_as_fedflow_error() -> None:
    for cls in TREE:
        with pytest.raises(FedflowError):
            raise cls("m")


# -- real errors, real messages ---------------------------------------------------------------------

def raised(fn: Callable[[], Any]) -> BaseException:
    try:
        fn()
    except BaseException as exc:
        return exc
    raise AssertionError("expected an exception")


def cause(fn: Callable[[], Any]) -> BaseException:
    err = raised(fn)
    assert isinstance(err, FlowFailed), err
    return err.cause


def scenarios(engine: Engine) -> dict[str, tuple[type, BaseException]]:
    """Each scenario: the error class expected and the error really raised."""
    done = engine.start(node(lambda x: x), 1, id="done")
    assert done == 1
    engine.start(node(lambda x: suspend("t")), None, id="live")
    engine.start(node(lambda x: suspend("t")), None, id="cancelled")
    engine.cancel("cancelled")
    engine.store.create(fedflow.store.FlowRecord(id="moved", name=None, status="moved", input="null", owner="b"))
    which = {"name": "a"}
    nd = engine.start(sequence(node(lambda x: step(lambda y: y, name=which["name"])(x)),
                               node(lambda x: suspend("t"))), None)
    which["name"] = "b"
    engine.peers.register("tbl", {"raises": lambda x: 1 / 0, "weird": lambda x: {1}})
    return {
        "unknown flow": (UnknownFlow, raised(lambda: engine.resume("ghost", 1))),
        "resume done": (FlowError, raised(lambda: engine.resume("done", 1))),
        "resume cancelled": (FlowCancelled, raised(lambda: engine.resume("cancelled", 1))),
        "resume moved": (FlowMoved, raised(lambda: engine.resume("moved", 1))),
        "result not done": (FlowNotDone, raised(lambda: engine.result("live"))),
        "forget live": (FlowError, raised(lambda: engine.forget("live"))),
        "cancel done": (FlowError, raised(lambda: engine.cancel("done"))),
        "unregistered name": (UnknownFlow, raised(lambda: engine.start("never-registered-" + uuid.uuid4().hex))),
        "failed": (FlowFailed, raised(lambda: engine.start(node(lambda x: 1 / 0), None))),
        "non-determinism": (NonDeterminism, raised(lambda: engine.resume(nd.id, 1))),
        "suspend outside": (FlowError, raised(lambda: suspend("t"))),
        "timeout": (FlowTimeout, cause(lambda: engine.start(timeout(0, node(lambda x: tick())), None))),
        "unsupported": (UnsupportedValue, raised(lambda: values.encode({"a": {1}}))),
        "bad tagged json": (UnsupportedValue, raised(lambda: values.loads('{"$bytes": "!"}'))),
        "bad import": (ReplicaError, raised(lambda: engine.import_store({"format": "nope"}))),
        "newer import": (ReplicaError, raised(lambda: engine.import_store(
            {"format": "fedflow-store", "version": 99, "flows": []}))),
        "no replica": (ReplicaError, raised(lambda: engine.replica_text("nobody"))),
        "unknown peer": (UnknownPeer, cause(lambda: engine.start(remote_node("ghost", "fn"), None))),
        "unknown function": (UnknownFunction, cause(lambda: engine.start(remote_node("tbl", "nope"), None))),
        "remote error": (RemoteError, cause(lambda: engine.start(remote_node("tbl", "raises"), None))),
        "bad answer": (RemoteError, cause(lambda: engine.start(remote_node("tbl", "weird"), None))),
        "dict peer replica": (PeerError, raised(lambda: engine.replicate_to("tbl"))),
    }


# an instruction: an imperative verb, "must", or the alternatives to pick from
FIX = re.compile(r"\b(use|call|register|resume|start|cancel|forget|check|define|list|raise|read|wait|run|"
                 r"upgrade|restore|expose|load|fix|retry|shows|replicate|must|it has)\b", re.I)

LABELS = ["unknown flow", "resume done", "resume cancelled", "resume moved", "result not done", "forget live",
          "cancel done", "unregistered name", "failed", "non-determinism", "suspend outside", "timeout",
          "unsupported", "bad tagged json", "bad import", "newer import", "no replica", "unknown peer",
          "unknown function", "remote error", "bad answer", "dict peer replica"]


@pytest.fixture(scope="module")
def found() -> Iterator[dict[str, tuple[type, BaseException]]]:
    with Engine(name=f"err-{uuid.uuid4().hex[:8]}") as made:
        yield scenarios(made)


def test_the_scenarios_cover_every_label(found: dict[str, tuple[type, BaseException]]) -> None:
    assert sorted(found) == sorted(LABELS)


@pytest.mark.parametrize("label", LABELS)
def test_a_real_error_has_the_right_type(found: dict[str, tuple[type, BaseException]], label: str) -> None:
    expected, err = found[label]
    assert type(err) is expected, err


@pytest.mark.parametrize("label", LABELS)
def test_a_real_error_message_says_what_to_do(found: dict[str, tuple[type, BaseException]], label: str) -> None:
    text = str(found[label][1])
    assert text.strip()
    assert FIX.search(text), f"{label}: {text!r} does not say what to do"


def test_real_errors_carry_their_attributes(found: dict[str, tuple[type, BaseException]]) -> None:
    assert found["unknown flow"][1].id == "ghost"
    assert found["resume moved"][1].owner == "b"
    assert "b" in str(found["resume moved"][1])
    assert found["unsupported"][1].path == "value['a']"
    assert found["unknown peer"][1].peer == "ghost"
    assert found["unknown function"][1].peer == "tbl"
    remote = found["remote error"][1]
    assert (remote.peer, remote.remote_type) == ("tbl", "ZeroDivisionError")
    assert "division" in remote.remote_message
    assert found["bad answer"][1].remote_type == "UnsupportedValue"
    failed = found["failed"][1]
    assert isinstance(failed.cause, ZeroDivisionError) and failed.__cause__ is failed.cause
    nd = found["non-determinism"][1]
    assert (nd.expected, nd.recorded) == ("step b", "step a")


def test_a_flow_failed_read_back_later_still_names_the_original_error(engine: Engine) -> None:
    with pytest.raises(FlowFailed):
        engine.start(node(lambda x: {}["missing"]), None, id="kf")
    with pytest.raises(FlowFailed) as ei:
        engine.result("kf")
    assert ei.value.id == "kf"
    assert "KeyError" in str(ei.value)


def test_try_catch_sees_fedflow_errors_as_exceptions(engine: Engine) -> None:
    flow = try_catch(timeout(1, node(lambda x: [tick(), tick()])), lambda e: isinstance(e, FedflowError))
    assert engine.start(flow, None) is True
