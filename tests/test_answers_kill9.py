"""A retried peer call is not run twice after the callee is killed with `kill -9`.

The callee (a real `fedflow serve`) records each answer in its store before sending it.
A fault proxy drops the answers on the way back, so the caller never hears one; the
callee is SIGKILLed once the answer is on disk, restarted on the same address and
store, and the caller retries with the same idempotency key: it gets the first answer,
and the function's effect is in the effects file once.
"""

from __future__ import annotations

import sqlite3
import textwrap
import time
from pathlib import Path

import pytest

from fedflow.errors import PeerError
from fedflow.transport.grpc import GrpcTransport

try:
    from chaos.proxy import DROP_REPLIES, PASS, FaultProxy
except ImportError:  # tests/ imported as a package
    from tests.chaos.proxy import DROP_REPLIES, PASS, FaultProxy

pytestmark = pytest.mark.slow

MODULE = textwrap.dedent('''
    import os

    def register(engine):
        def effect(payload):
            path = os.environ["EFFECTS_FILE"]
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (payload["key"] + "\\n").encode())
            finally:
                os.close(fd)
            with open(path) as fh:
                return {"key": payload["key"], "lines": len(fh.read().splitlines())}
        engine.expose("effect", effect)
''')


def _recorded(db: Path) -> int:
    """How many answers the callee's store holds (read beside the running serve)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return conn.execute("SELECT COUNT(*) FROM call_answers").fetchone()[0]


def _wait_for(what: str, check, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_retry_after_the_callee_was_killed_gets_the_recorded_answer(tmp_path: Path, fedflow_serve) -> None:
    # Given a callee whose answers never reach the caller (the proxy drops them)
    module = tmp_path / "effects_peer.py"
    module.write_text(MODULE)
    effects = tmp_path / "effects"
    callee = fedflow_serve("callee", load=[module], env={"EFFECTS_FILE": str(effects)})
    host, port = callee.address.rsplit(":", 1)
    with FaultProxy((host, int(port))) as proxy:
        caller = GrpcTransport("callee", proxy.address)
        try:
            assert caller.health(deadline=10), "the connection is up before the answers are dropped"
            proxy.set(DROP_REPLIES)
            with pytest.raises(PeerError):
                caller.call("effect", {"key": "k1"}, deadline=1.5, call_id="flow-1/0")
            # When the answer is on disk, the callee is killed and comes back on the same store
            _wait_for("the callee to record the answer", lambda: _recorded(callee.db) == 1)
            callee.kill()
            callee.start()
            proxy.set(PASS)
            # Then the retry (same key) gets the first answer, and the effect happened once
            again = caller.call("effect", {"key": "k1"}, deadline=10, call_id="flow-1/0")
            fresh = caller.call("effect", {"key": "k2"}, deadline=10, call_id="flow-2/0")
        finally:
            caller.close()
    assert again == {"key": "k1", "lines": 1}
    assert fresh == {"key": "k2", "lines": 2}
    assert effects.read_text().splitlines() == ["k1", "k2"]
