"""Ownership checked when it matters: a restored flow is confirmed against the peers before
its first resume or timer, copies at the same epoch are settled by name, and an instance
fences again when a peer it could not reach becomes reachable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

import fedflow
from fedflow import node, sequence, suspend
from fedflow.ownership import PeerWatch, is_stale
from fedflow.store.base import MOVED, SUSPENDED
from fedflow.transport.local import LocalTransport


class Switchable(LocalTransport):
    """An in-process peer whose health check can be made to fail, as a cut link would."""

    up = True

    def health(self, *, deadline: float) -> bool:
        return self.up


@pytest.fixture
def flow() -> str:
    name = f"approve-{uuid.uuid4().hex[:8]}"
    fedflow.defflow(name, sequence(node(lambda x: [x, suspend("ok")])))
    return name


@pytest.fixture
def trio() -> Iterator[dict[str, fedflow.Engine]]:
    engines = {name: fedflow.Engine(name=name) for name in ("a", "b", "c")}
    for name, engine in engines.items():
        for other, peer in engines.items():
            if other != name:
                engine.peers.add(Switchable(other, peer))
    try:
        yield engines
    finally:
        for engine in engines.values():
            engine.close()


def test_a_copy_is_stale_behind_a_newer_epoch_or_the_same_epoch_under_a_greater_name() -> None:
    assert is_stale("a", 1, "b", 2)
    assert not is_stale("a", 2, "b", 1)
    assert is_stale("b", 1, "c", 1) and not is_stale("c", 1, "b", 1), "one of two equal copies keeps it"


def test_a_restored_flow_is_confirmed_before_its_first_resume(trio: dict[str, fedflow.Engine], flow: str) -> None:
    # Given a's suspended flow restored from the same replica on both b and c (epoch 1 each)
    a, b, c = trio["a"], trio["b"], trio["c"]
    a.start(flow, "doc", id="f-1")
    a.replicate_to("b")
    assert b.restore_from("b", source="a") == ["f-1"]
    assert c.restore_from("b", source="a") == ["f-1"]
    # When b resumes it first, then c
    with pytest.raises(fedflow.FlowMoved) as moved:
        b.resume("f-1", True)
    # Then b's copy gives way to c's (same epoch, greater name) before anything ran on b
    assert moved.value.owner == "c" and b.status("f-1") == MOVED
    assert c.resume("f-1", True) == ["doc", True]
    # and a, fenced against c, has no live copy left
    assert a.fence("c") == ["f-1"] and a.status("f-1") == MOVED


def test_a_restored_flow_is_confirmed_before_its_timer_fires(trio: dict[str, fedflow.Engine]) -> None:
    name = f"nap-{uuid.uuid4().hex[:8]}"
    fedflow.defflow(name, node(lambda x: fedflow.sleep(3600) or x))
    a, b, c = trio["a"], trio["b"], trio["c"]
    a.start(name, 1, id="t-1")
    a.replicate_to("c")
    assert b.restore_from("c", source="a") == ["t-1"]
    assert c.restore_from("c", source="a") == ["t-1"]
    with pytest.raises(fedflow.FlowMoved):
        b.wake("t-1")
    assert b.status("t-1") == MOVED and c.wake("t-1") == 1


def test_a_peer_that_comes_back_is_fenced_again(trio: dict[str, fedflow.Engine], flow: str) -> None:
    # Given a cannot reach b, and b restored a's flow meanwhile
    a, b = trio["a"], trio["b"]
    link = a.peers.get("b")
    a.start(flow, "doc", id="f-2")
    a.replicate_to("b")
    b.restore_from("b", source="a")
    link.up = False
    watch = PeerWatch(a.peers, a.fence, fenced={"b", "c"}, interval=3600)
    try:
        watch.check("b")
        assert a.status("f-2") == SUSPENDED, "nothing is decided while b is away"
        # When b is reachable again
        link.up = True
        watch.check("b")
        # Then a asked b, and its stale copy is marked moved
        assert a.status("f-2") == MOVED
        with pytest.raises(fedflow.FlowMoved):
            a.resume("f-2", True)
    finally:
        watch.close()
    assert b.resume("f-2", True) == ["doc", True]
