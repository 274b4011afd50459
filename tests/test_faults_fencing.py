"""Ownership fencing across processes: an instance that comes back with a stale copy
of a flow another instance restored does not resume it; it reports it `moved`.

A replicates to B; A is killed; B restores A's replica (claiming the flows at
the next epoch); A restarts on its --db, fences against B at start (the Claims
RPC), reports the flow moved with owner B and refuses to resume it; B resumes it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import fedflow
from fedflow.client import ControlClient

try:
    from test_cli_support import ServerPool
except ImportError:  # tests/ imported as a package
    from tests.test_cli_support import ServerPool

pytestmark = pytest.mark.slow

MODULE = textwrap.dedent('''
    import fedflow

    def register(engine):
        fedflow.defflow("fence-wait", fedflow.sequence(
            fedflow.step(lambda x: {"prepared": x}),
            fedflow.node(lambda p: {"p": p, "go": fedflow.suspend("go")})))
''')


def test_a_restarted_instance_fences_flows_restored_elsewhere(pool: ServerPool, tmp_path: Path):
    module = tmp_path / "fence_wf.py"
    module.write_text(MODULE)
    b = pool.start("b", load=(module,))
    a_db = tmp_path / "a.db"
    a = pool.start("a", db=a_db, load=(module,), peers={"b": b.addr})
    with ControlClient(a.addr, deadline=10) as client:
        waiting = client.start("fence-wait", 7, flow_id="job-1")
        other = client.start("fence-wait", 8, flow_id="job-2")
        assert waiting["status"] == other["status"] == "suspended"
        assert client.replicate("b") == {"to": "b", "flows": 2}
    pool.kill9(a)
    with ControlClient(b.addr, deadline=10) as client:
        assert sorted(client.restore("b", source="a")["ids"]) == ["job-1", "job-2"]

    a = pool.start("a", db=a_db, load=(module,), peers={"b": b.addr})
    with ControlClient(a.addr, deadline=10) as client:
        assert client.status("job-1") == {"id": "job-1", "status": "moved"}
        with pytest.raises(fedflow.FlowMoved) as ei:
            client.resume("job-1", "stale")
        assert ei.value.owner == "b" and ei.value.id == "job-1"
    assert "job-1 is owned by b now" in a.log()
    with ControlClient(b.addr, deadline=10) as client:
        done = client.resume("job-1", "fresh")
        assert done == {"id": "job-1", "status": "done", "result": {"p": {"prepared": 7}, "go": "fresh"}}


def test_fencing_is_best_effort_when_the_peer_is_down(pool: ServerPool, tmp_path: Path):
    module = tmp_path / "fence_wf2.py"
    module.write_text(MODULE)
    b = pool.start("b2", load=(module,))
    a_db = tmp_path / "a2.db"
    a = pool.start("a2", db=a_db, load=(module,), peers={"b2": b.addr})
    with ControlClient(a.addr, deadline=10) as client:
        client.start("fence-wait", 1, flow_id="solo")
    pool.stop(a)
    pool.stop(b)
    a = pool.start("a2", db=a_db, load=(module,), peers={"b2": b.addr})
    with ControlClient(a.addr, deadline=10) as client:
        assert client.status("solo") == {"id": "solo", "status": "suspended"}
        assert client.resume("solo", "go")["status"] == "done"
    assert "could not check peer b2" in a.log()
