"""Timers: the store keeps them, one service per engine fires them.

A timer is a suspended flow's ``wake_at`` in the store (see `fedflow.waits`),
so 100,000 sleeping flows cost rows, not threads. `TimerService` fires what
is due: on a clock that can jump (`FakeClock`), synchronously inside every
`advance`; otherwise in one thread that sleeps until the store's next due
time (or a poke: a new timer, a new schedule, `close`), and looks again at
least every `POLL_SECONDS` for timers another process wrote to a shared store.

Firing is a resume: the wake entry is committed with the flow's next state
(or with its running state, before its first new step), only if the flow
still waits on that tag, so a timer fires once; a crash while the woken flow
runs leaves it `running` with the wake in its log, and recovery replays it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .clock import Clock
from .errors import FedflowError, FlowError, UnknownFlow
from .schedules import Scheduler
from .store.base import SUSPENDED, Store

log = logging.getLogger("fedflow.timers")

#: Longest the timer thread sleeps without looking at the store (timers written by other processes).
POLL_SECONDS = 1.0
#: Due timers read from the store at a time.
_BATCH = 256
#: Most timers one pass fires before it lets `close` or the next pass in.
_MOST_PER_PASS = 100_000


#: How the engine fires a timer by its run path: (flow id, tag, due by, strict) -> the outcome.
FireTimer = Callable[[str, str, float | None, bool], Any]


class Timekeeper:
    """An engine's timers: the verbs on them, and the one service that fires them and ticks
    `schedules` until `stop`.

    It fires a timer through `fire`, the engine's run path (the wake is a resume), and asks
    `status` whether a flow that could not fire is still waiting."""

    def __init__(self, name: str, store: Store, clock: Clock, *, fire: FireTimer,
                 status: Callable[[str], str], schedules: Scheduler) -> None:
        self.name = name
        self.store = store
        self.clock = clock
        self.fire = fire
        self.status = status
        self.schedules = schedules
        self.service: TimerService | None = None

    def timers(self) -> list[tuple[str, str, float]]:
        """[(id, tag, wake_at), ...] for every flow waiting on a timer or a timed suspend."""
        return [tuple(t) for t in self.store.timers()]  # type: ignore[misc]

    def wake(self, id: str) -> Any:
        """Fire the timer of flow `id` now (end its sleep, or time out its timed suspend):
        the flow's outcome, as `resume` returns it. FlowError when it waits on no timer."""
        rec = self.store.get(id)
        if rec is None:
            raise UnknownFlow(f"no flow {id!r} on engine {self.name!r}; timers() shows the flows that wait "
                              f"on a timer", id)
        if rec.status != SUSPENDED or rec.wake_at is None:
            raise FlowError(f"flow {id} waits on no timer (it is {rec.status}"
                            f"{', waiting on ' + repr(rec.waiting) if rec.waiting else ''}); timers() shows "
                            f"the flows that do", id)
        return self.fire(id, rec.waiting or "", None, True)

    def start(self) -> None:
        """Start firing due timers and schedule ticks (a second call changes nothing)."""
        if self.service is None:
            self.service = TimerService(self)

    def poke(self) -> None:
        """Tell the timer service that a timer or a schedule changed."""
        service = self.service
        if service is not None:
            service.poke()

    def stop(self) -> None:
        """Stop firing: no timer fires after this returns."""
        service, self.service = self.service, None
        if service is not None:
            service.close()


class TimerService:
    """Fires an engine's due timers and schedule ticks; see the module docstring."""

    def __init__(self, keeper: Timekeeper) -> None:
        """Serve `keeper`: a listener on a clock with `on_advance`, else a thread (started at once
        when the store may hold timers or schedules, else at the first poke)."""
        self.keeper = keeper
        self.clock = keeper.clock
        self.opened_at = self.clock.time()  # ticks before this were missed while no engine ran
        self._poked = threading.Event()
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stuck: set[str] = set()  # due timers whose flow cannot run here yet, this pass
        self._warned: set[str] = set()  # ... of which the log has said so once
        self._listener: Callable[[], None] | None = None
        if callable(getattr(self.clock, "on_advance", None)):
            self._listener = self._on_advance
            self.clock.on_advance(self._listener)
        elif keeper.store.next_wake() is not None or keeper.store.schedules():
            self._start_thread()

    def poke(self) -> None:
        """Something changed: look at the store again now."""
        if self._listener is None and self._thread is None:
            self._start_thread()
        self._poked.set()

    def close(self, timeout: float = 30.0) -> None:
        """Stop: no timer fires after this returns (a wake in progress finishes first)."""
        self._stop.set()
        self._poked.set()
        if self._listener is not None:
            self.clock.off_advance(self._listener)
        with self._guard:
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("engine %s: a flow woken by its timer is still running after %gs; closing anyway",
                            self.keeper.name, timeout)

    def _start_thread(self) -> None:
        with self._guard:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._loop, name=f"fedflow-timers-{self.keeper.name}",
                                            daemon=True)
            self._thread.start()

    def _on_advance(self) -> None:
        if not self._stop.is_set():
            self.run_due()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._poked.clear()
            try:
                next_at = self.run_due()
            except Exception:  # the service must outlive one bad pass (a store hiccup)
                log.exception("engine %s: firing due timers failed; trying again shortly", self.keeper.name)
                next_at = None
            delay = POLL_SECONDS if next_at is None else min(POLL_SECONDS, max(0.0, next_at - self.clock.time()))
            self._poked.wait(delay)

    def run_due(self) -> float | None:
        """Fire every timer and schedule tick due now; when the next one falls due (None: none known)."""
        fired = 0
        self._stuck.clear()  # try them again: their module may be loaded by now
        while not self._stop.is_set() and fired < _MOST_PER_PASS:
            now = self.clock.time()
            batch = [t for t in self.keeper.store.due(now, _BATCH) if t[0] not in self._stuck]
            if not batch:
                break
            for flow_id, tag, _wake_at in batch:
                if self._stop.is_set():
                    break
                self._fire_one(flow_id, tag, now)
                fired += 1
        if not self._stop.is_set():
            self.keeper.schedules.tick(self.clock.time(), self.opened_at)
        return self._next_due()

    def _fire_one(self, flow_id: str, tag: str, now: float) -> None:
        try:
            self.keeper.fire(flow_id, tag, now, False)
        except FlowError as exc:
            rec = self.keeper.store.get(flow_id)
            if rec is not None and rec.status == SUSPENDED and rec.waiting == tag:  # else it was fired elsewhere
                if flow_id not in self._warned:  # e.g. its flow is not registered yet: try again later
                    self._warned.add(flow_id)
                    log.warning("engine %s: timer %r of flow %s cannot fire yet: %s", self.keeper.name, tag,
                                flow_id, exc)
                self._stuck.add(flow_id)
            else:
                log.info("engine %s: flow %s woken by timer %r: %s", self.keeper.name, flow_id, tag, exc)
        except FedflowError as exc:
            log.warning("engine %s: flow %s woken by timer %r: %s", self.keeper.name, flow_id, tag, exc)

    def _next_due(self) -> float | None:
        """The earliest of the next timer (that can fire here) and the next schedule tick."""
        candidates = [t[2] for t in self.keeper.store.timers()[:len(self._stuck) + 1]
                      if t[0] not in self._stuck] if self._stuck else [self.keeper.store.next_wake()]
        candidates.append(self.keeper.schedules.next_tick())
        known = [c for c in candidates if c is not None]
        return min(known) if known else None
