"""An approval flow: a check on a peer, with failover, then a human's answer.

`approval` sends its input to the `check` function of the peer named
`checker`; when that peer is down (or fails) it tries `backup`, and when
both fail it checks locally. The answer is journaled, so replays, restarts
and handoffs never check again. Then the flow suspends on the tag
``approve`` until someone resumes it::

    fedflow serve --config peers/federation/a.toml     # and b.toml, c.toml
    fedflow start  --at 127.0.0.1:50061 approval '"invoice 42"' --id inv-42
    # {"id": "inv-42", "status": "suspended", "tag": "approve"}
    fedflow resume --at 127.0.0.1:50061 inv-42 true
    # {"id": "inv-42", "status": "done",
    #  "result": {"item": "invoice 42", "checked_by": "b", "approved": true}}

In peers/federation, `checker` points at a port nobody listens on, so the
check fails over to `backup`.
"""

from __future__ import annotations

from typing import Any

from fedflow import Engine, defflow, node, remote_failover, sequence, suspend


def check_locally(item: Any) -> dict[str, Any]:
    """The fallback check, run here when no peer can check."""
    return {"item": item, "checked_by": "local"}


def wait_for_approval(checked: dict[str, Any]) -> dict[str, Any]:
    """Suspend on "approve"; the resume value is the human's answer."""
    return {**checked, "approved": suspend("approve")}


#: check on `checker`, else `backup`, else here; then wait for "approve".
approval = sequence(remote_failover(["checker", "backup"], "check", node(check_locally)), node(wait_for_approval))


def register(engine: Engine) -> None:
    """Expose `check` and define the `approval` flow."""
    engine.expose("check", lambda item: {"item": item, "checked_by": engine.name})
    defflow("approval", approval)
