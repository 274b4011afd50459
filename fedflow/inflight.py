"""The flows this process is working on, which the store cannot tell yet.

A flow is `running` here from the moment start/resume/recover takes it until its run
ends (its record may not say so yet), `stopped` when it was cancelled while it ran, and
`held` while a handoff moves it to a peer (its record still says suspended). Each flow
is in at most one of running and held; `lock` makes a check and a change one step for
callers that also read the store.
"""

from __future__ import annotations

import threading

from .errors import FlowError


def running_error(flow_id: str) -> FlowError:
    """The refusal for a verb that needs a flow that is running to wait or end first."""
    return FlowError(f"flow {flow_id} is running, not waiting; wait for it to suspend or finish, then "
                     f"resume it or read its result", flow_id)


class InFlight:
    """Running, stopped and held flows of one engine, under one re-entrant lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._running: set[str] = set()
        self._stopped: set[str] = set()
        self._held: dict[str, str] = {}  # flow id -> the peer it is being handed to

    def refuse_if_busy(self, flow_id: str) -> None:
        """FlowError when `flow_id` is running or held here."""
        if flow_id in self._running:
            raise running_error(flow_id)
        self.refuse_if_held(flow_id)

    def refuse_if_held(self, flow_id: str) -> None:
        """FlowError when `flow_id` is held for a handoff."""
        peer = self._held.get(flow_id)
        if peer is not None:
            raise FlowError(f"flow {flow_id} is being handed off to {peer!r}; once the handoff returns, "
                            f"use it there (status() here says moved) or here if the handoff failed", flow_id)

    def begin(self, flow_id: str) -> None:
        """Mark `flow_id` running; FlowError if it is running or held already."""
        with self.lock:
            self.refuse_if_busy(flow_id)
            self._running.add(flow_id)

    def end(self, flow_id: str) -> None:
        """The run of `flow_id` is over."""
        with self.lock:
            self._running.discard(flow_id)
            self._stopped.discard(flow_id)

    def is_running(self, flow_id: str) -> bool:
        """Whether a run of `flow_id` is under way here."""
        return flow_id in self._running

    def is_busy(self, flow_id: str) -> bool:
        """Whether `flow_id` is running or held here."""
        return flow_id in self._running or flow_id in self._held

    def running(self) -> set[str]:
        """A snapshot of the running flows."""
        with self.lock:
            return set(self._running)

    def stop(self, flow_id: str) -> None:
        """A running flow was cancelled: it starts no new step."""
        with self.lock:
            if flow_id in self._running:
                self._stopped.add(flow_id)

    def is_stopped(self, flow_id: str) -> bool:
        """Whether `flow_id` was cancelled while it ran."""
        return flow_id in self._stopped

    def hold(self, flow_id: str, peer: str) -> bool:
        """Hold `flow_id` for a handoff to `peer`; False when it is running or held already."""
        with self.lock:
            if self.is_busy(flow_id):
                return False
            self._held[flow_id] = peer
            return True

    def release(self, flow_ids: list[str]) -> None:
        """The handoff of `flow_ids` is over, moved or not."""
        with self.lock:
            for flow_id in flow_ids:
                self._held.pop(flow_id, None)
