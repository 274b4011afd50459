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

pytestmark = pytest.mark.slow

MODULE = textwrap.dedent('''
    import fedflow

    def register(engine):
        fedflow.defflow("fence-wait", fedflow.sequence(
            fedflow.step(lambda x: {"prepared": x}),
            fedflow.node(lambda p: {"p": p, "go": fedflow.suspend("go")})))
''')


def test_a_restarted_instance_fences_flows_restored_elsewhere(fedflow_serve, tmp_path: Path):
    module = tmp_path / "fence_wf.py"
    module.write_text(MODULE)
    b = fedflow_serve("b", load=[module])
    a = fedflow_serve("a", load=[module], peers={"b": b.address})
    waiting = a.client.start("fence-wait", 7, flow_id="job-1")
    other = a.client.start("fence-wait", 8, flow_id="job-2")
    assert waiting["status"] == other["status"] == "suspended"
    assert a.client.replicate("b") == {"to": "b", "flows": 2}
    a.kill()
    assert sorted(b.client.restore("b", source="a")["ids"]) == ["job-1", "job-2"]

    a.restart()
    assert a.client.status("job-1") == {"id": "job-1", "status": "moved"}
    with pytest.raises(fedflow.FlowMoved) as ei:
        a.client.resume("job-1", "stale")
    assert ei.value.owner == "b" and ei.value.id == "job-1"
    assert "job-1 is owned by b now" in a.log()
    done = b.client.resume("job-1", "fresh")
    assert done == {"id": "job-1", "status": "done", "result": {"p": {"prepared": 7}, "go": "fresh"}}


def test_fencing_is_best_effort_when_the_peer_is_down(fedflow_serve, tmp_path: Path):
    module = tmp_path / "fence_wf2.py"
    module.write_text(MODULE)
    b = fedflow_serve("b2", load=[module])
    a = fedflow_serve("a2", load=[module], peers={"b2": b.address})
    a.client.start("fence-wait", 1, flow_id="solo")
    a.stop()
    b.stop()
    a.restart()
    assert a.client.status("solo") == {"id": "solo", "status": "suspended"}
    assert a.client.resume("solo", "go")["status"] == "done"
    assert "could not check peer b2" in a.log()
