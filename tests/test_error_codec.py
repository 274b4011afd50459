"""One codec for errors (`errors.to_data` / `errors.from_data`): for every fedflow error class,
what the first run sees is what a replay, a later read of the store and the far side of a
gRPC call see: the same class, message and fields."""

from __future__ import annotations

import inspect
import uuid
from typing import Any

import pytest

import fedflow
from fedflow import Engine, errors, node, suspend
from fedflow.replay import journaled

try:
    from test_grpc_support import over_the_wire
except ImportError:  # tests/ imported as a package
    from tests.test_grpc_support import over_the_wire

CLASSES = [cls for _name, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.FedflowError)]


def sample(cls: type[errors.FedflowError]) -> errors.FedflowError:
    """An instance of `cls` with every field it names set to a value of its own."""
    fields = {name: ValueError(f"why {cls.__name__}") if name == "cause" else f"{name} of {cls.__name__}"
              for name in cls.fields}
    return cls(f"a {cls.__name__}; do this about it", **fields)


def seen(exc: BaseException) -> tuple[str, str, dict[str, Any]]:
    """What code catching `exc` can look at: its class, its text and its fields."""
    def plain(value: Any) -> Any:
        return (type(value).__name__, str(value)) if isinstance(value, BaseException) else value
    return type(exc).__name__, str(exc), {name: plain(getattr(exc, name)) for name in getattr(exc, "fields", ())}


@pytest.fixture
def engine() -> Engine:
    with Engine(name=f"codec-{uuid.uuid4().hex[:8]}") as engine:
        yield engine


def test_every_class_names_exactly_its_constructor_arguments_as_fields() -> None:
    for cls in CLASSES:
        if cls.__init__ is Exception.__init__:
            assert cls.fields == (), cls
            continue
        params = list(inspect.signature(cls.__init__).parameters)[2:]  # after self and the message
        assert tuple(params) == cls.fields, cls


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_journaled_error_replays_with_the_same_fields(engine: Engine, cls: type) -> None:
    # Given a flow whose step raises `cls` and which catches it, then waits
    caught: list[tuple] = []

    def raise_it(_key: str) -> Any:
        raise sample(cls)

    def body(_value: Any) -> Any:
        try:
            journaled("boom", raise_it)
        except errors.FedflowError as exc:
            caught.append(seen(exc))
        return suspend("go")

    assert fedflow.is_suspended(engine.start(node(body), None, id="f"))
    # When a resume replays the journal
    engine.resume("f", "on")
    # Then the replayed error has what the first one had
    assert len(caught) == 2
    assert caught[1] == caught[0] == seen(sample(cls))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_stored_failure_reads_back_with_the_same_fields(engine: Engine, cls: type) -> None:
    def body(_value: Any) -> Any:
        raise sample(cls)

    with pytest.raises(fedflow.FlowFailed) as first:
        engine.start(node(body), None, id="f")
    with pytest.raises(fedflow.FlowFailed) as later:
        engine.result("f")
    assert seen(later.value.cause) == seen(first.value.cause) == seen(sample(cls))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_an_error_answered_over_grpc_arrives_with_the_same_fields(cls: type) -> None:
    exc = sample(cls)
    back = over_the_wire(exc, "the peer")
    kind, text, fields = seen(back)
    cause = fields.pop("cause", None)
    expected_kind, expected_text, expected = seen(exc)
    expected_cause = expected.pop("cause", None)
    assert (kind, text, fields) == (expected_kind, expected_text, expected)
    if expected_cause is not None:  # a failed flow's cause happened on the peer: a RemoteError from it
        assert cause == ("RemoteError", ": ".join(expected_cause))
        assert (back.cause.remote_type, back.cause.remote_message) == expected_cause


def test_a_cause_stored_as_text_by_an_older_release_still_reads_back() -> None:
    old = {"type": "FlowFailed", "module": "fedflow.errors", "message": "m",
           "attrs": {"id": "f", "cause": "ValueError: nope", "message": "m"}}
    back = errors.from_data(old)
    assert (type(back), back.id, back.cause) == (fedflow.FlowFailed, "f", "ValueError: nope")


def test_data_that_names_no_known_class_is_a_replayed_error() -> None:
    back = errors.from_data({"type": "os.system", "module": "evil", "message": "x"})
    assert isinstance(back, fedflow.ReplayedError) and back.type_name == "os.system"
    assert isinstance(errors.from_data("not a dict"), fedflow.ReplayedError)
