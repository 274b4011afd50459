"""Schedules: start a registered flow on every tick of a cron expression or an interval.

A schedule is a row in the store: its spec (flow, input, cron or every,
catchup, overlap, paused) and its next tick, so the next tick survives a
restart. The engine's timer service (`fedflow.timers`) starts each due tick's
flow with id ``NAME@ISO-TIME`` and input ``{"at": ISO-TIME, "input": ...}``,
then moves the next tick on with a compare-and-set: the id makes a tick start
at most once, whoever starts it and however often it is tried.

Cron expressions (five fields, UTC) are parsed and stepped by `cronsim`.
Ticks that fell due while no engine had the store open are "missed": the
schedule's `catchup` says which of them run (`none`, the `latest`, or `all`,
at most `MOST_MISSED`); a tick that falls due while the engine runs always
runs, unless `overlap="skip"` and the previous tick's flow is still live.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cronsim import CronSim, CronSimError

from . import registry, values
from .clock import Clock
from .errors import FedflowError
from .store.base import LIVE, Store

log = logging.getLogger("fedflow.schedules")

CATCHUP = ("none", "latest", "all")
OVERLAP = ("skip", "allow")
#: Most missed ticks `catchup="all"` runs after a long outage (the latest ones).
MOST_MISSED = 1000
_CRON_FIELDS = "minute hour day-of-month month day-of-week"


class ScheduleError(FedflowError, ValueError):
    """Raised for a schedule that cannot be (both or neither of cron and every, a bad cron...);
    nothing was stored."""


@dataclasses.dataclass(frozen=True)
class ScheduleSpec:
    """What a schedule starts and when; `input` is a tagged JSON tree (see `fedflow.values`)."""

    flow: str
    input: Any = None
    cron: str | None = None
    every: float | None = None
    catchup: str = "latest"
    overlap: str = "skip"
    paused: bool = False

    def text(self) -> str:
        """The spec as the JSON text the store keeps."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str) -> ScheduleSpec:
        """A spec read back from the store (FedflowError if it is not one)."""
        try:
            data = json.loads(text)
            return make_spec(data["flow"], values.decode(data.get("input")), cron=data.get("cron"),
                             every=data.get("every"), catchup=data.get("catchup", "latest"),
                             overlap=data.get("overlap", "skip"), paused=bool(data.get("paused")),
                             registered=False)
        except (ValueError, TypeError, KeyError, FedflowError) as exc:
            raise FedflowError(f"a stored schedule is damaged ({exc}); replace it with schedule()") from exc

    def first_tick(self, now: float) -> float:
        """The first tick of a schedule made at `now`: one interval later, or the next cron time."""
        return _ms(now + self.every) if self.every is not None else self.next_cron(now)

    def next_cron(self, after: float) -> float:
        """The first cron time strictly after `after` (UTC)."""
        start = datetime.fromtimestamp(after, tz=UTC)
        return next(CronSim(self.cron or "", start)).timestamp()

    def due(self, next_at: float, now: float) -> tuple[list[float], float]:
        """The ticks from `next_at` up to `now` (the last `MOST_MISSED` + 1 of them), and the tick after."""
        if self.every is not None:
            count = math.floor((now - next_at) / self.every) + 1 if now >= next_at else 0
            first = max(0, count - MOST_MISSED - 1)
            return [_ms(next_at + k * self.every) for k in range(first, count)], _ms(next_at + count * self.every)
        ticks, tick = [], next_at
        while tick <= now and len(ticks) < 100 * MOST_MISSED:
            ticks.append(tick)
            tick = self.next_cron(tick)
        if tick <= now:  # down for ages: go on from now
            tick = self.next_cron(now)
        return ticks[-MOST_MISSED - 1:], tick

    def iso(self, tick: float) -> str:
        """The tick's time in ISO 8601 UTC; with milliseconds for a sub-second interval."""
        whole = math.floor(tick)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        if self.every is not None and self.every != math.floor(self.every):
            text += f".{min(999, round((tick - whole) * 1000)):03d}"
        return text + "Z"


def _ms(t: float) -> float:
    """`t` rounded to the millisecond, so interval ticks do not drift with float sums."""
    return round(t, 3)


def make_spec(flow: Any, input: Any = None, *, cron: str | None = None, every: float | None = None,
              catchup: str = "latest", overlap: str = "skip", paused: bool = False,
              registered: bool = True) -> ScheduleSpec:
    """A checked spec; ScheduleError (a ValueError) or, for an unknown flow, FlowError naming the fix."""
    if isinstance(flow, str):
        name = flow
        if registered:
            registry.lookup(flow)
    else:
        name = registry.name_of(flow) if callable(flow) else None
        if name is None:
            raise ScheduleError("a schedule starts a registered flow: define it with defflow(name, flow) and "
                             "pass the flow or its name")
    if (cron is None) == (every is None):
        raise ScheduleError("a schedule needs exactly one of cron= (five-field cron, UTC, e.g. '0 3 * * *') "
                         "and every= (seconds, e.g. 3600)")
    if cron is not None:
        _check_cron(cron)
    if every is not None and (isinstance(every, bool) or not isinstance(every, int | float)
                              or not math.isfinite(every) or every <= 0):
        raise ScheduleError(f"every= takes a positive number of seconds, got {every!r}; e.g. every=3600")
    if catchup not in CATCHUP:
        raise ScheduleError(f"catchup must be one of {', '.join(map(repr, CATCHUP))}, got {catchup!r}")
    if overlap not in OVERLAP:
        raise ScheduleError(f"overlap must be one of {', '.join(map(repr, OVERLAP))}, got {overlap!r}")
    if not isinstance(paused, bool):
        raise ScheduleError(f"paused takes True or False, got {paused!r}")
    return ScheduleSpec(flow=name, input=values.encode(input, "schedule input"), cron=cron, every=every,
                        catchup=catchup, overlap=overlap, paused=paused)


def _check_cron(cron: Any) -> None:
    if not isinstance(cron, str) or len(cron.split()) != 5:
        raise ScheduleError(f"cron= takes five fields ({_CRON_FIELDS}), in UTC, e.g. '0 3 * * *' for 03:00 "
                         f"every day; got {cron!r}")
    try:
        CronSim(cron, datetime.now(UTC))
    except CronSimError as exc:
        raise ScheduleError(f"cron expression {cron!r} is not valid: {exc}; write five fields "
                         f"({_CRON_FIELDS}), e.g. '*/5 * * * *'") from exc


_TABLE_KEYS = frozenset({"name", "flow", "input", "cron", "every", "catchup", "overlap", "paused"})


def schedule_tables(tables: Any) -> list[dict[str, Any]]:
    """`[[schedules]]` tables of a config file, checked: each a dict of `Engine.schedule` arguments.
    ScheduleError naming the table and the fix (whether the flow is registered is checked later)."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ScheduleError("schedules must be [[schedules]] tables, each with name, flow and cron or every")
    out = []
    for n, table in enumerate(tables):
        where = f"[[schedules]] #{n + 1}"
        unknown = sorted(set(table) - _TABLE_KEYS)
        if unknown:
            raise ScheduleError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(_TABLE_KEYS)}")
        if not isinstance(table.get("name"), str) or not table["name"] or not isinstance(table.get("flow"), str):
            raise ScheduleError(f"{where}: needs name = \"...\" and flow = \"a registered flow\"")
        try:
            make_spec(table["flow"], table.get("input"), cron=table.get("cron"), every=table.get("every"),
                      catchup=table.get("catchup", "latest"), overlap=table.get("overlap", "skip"),
                      paused=table.get("paused", False), registered=False)
        except FedflowError as exc:
            raise ScheduleError(f"{where} ({table['name']}): {exc}") from None
        out.append(dict(table))
    return out


def _entry(name: str, spec: ScheduleSpec, next_at: float) -> dict[str, Any]:
    return {"name": name, "flow": spec.flow, "input": values.decode(spec.input), "cron": spec.cron,
            "every": spec.every, "catchup": spec.catchup, "overlap": spec.overlap, "paused": spec.paused,
            "next_at": next_at}


class Scheduler:
    """An engine's schedules: the verbs on them, and the ticks its timer service asks for.

    A tick starts its flow through `start` (the engine's `start`), asks `status` whether the
    previous tick's flow is still live, and `changed` tells the timer service of a new schedule."""

    def __init__(self, name: str, store: Store, clock: Clock, *, start: Callable[..., Any],
                 status: Callable[[str], str], changed: Callable[[], None]) -> None:
        self.name = name
        self.store = store
        self.clock = clock
        self.start = start
        self.status = status
        self.changed = changed

    def schedule(self, name: str, flow: Any, input: Any = None, *, cron: str | None = None,
                 every: float | None = None, catchup: str = "latest", overlap: str = "skip",
                 paused: bool = False) -> dict[str, Any]:
        """Start `flow` (registered) on every tick of `cron` (five fields, UTC) or `every` seconds,
        with id ``name@ISO-TIME``; replaces a schedule of the same name. The stored schedule."""
        if not isinstance(name, str) or not name:
            raise ScheduleError("a schedule's name is a non-empty string, e.g. 'nightly'")
        spec = make_spec(flow, input, cron=cron, every=every, catchup=catchup, overlap=overlap, paused=paused)
        for same, text, next_at, _last in self.store.schedules():
            if same == name and text == spec.text():  # as it is (a config applied at every start)
                return _entry(name, spec, next_at)
        next_at = spec.first_tick(self.clock.time())
        self.store.put_schedule(name, spec.text(), next_at)
        self.changed()
        return _entry(name, spec, next_at)

    def schedules(self) -> list[dict[str, Any]]:
        """Every schedule: name, flow, input, cron or every, catchup, overlap, paused, next_at."""
        return [_entry(name, ScheduleSpec.from_text(text), next_at)
                for name, text, next_at, _last in self.store.schedules()]

    def unschedule(self, name: str) -> None:
        """Drop schedule `name` (flows its ticks started go on); FedflowError if there is none."""
        if not self.store.delete_schedule(name):
            raise FedflowError(f"no schedule named {name!r} on engine {self.name!r}; schedules() lists them")

    def next_tick(self) -> float | None:
        """The earliest next tick of a schedule that is not paused, or None."""
        ticks = [next_at for _name, text, next_at, _last in self.store.schedules()
                 if not json.loads(text).get("paused")]
        return min(ticks) if ticks else None

    def tick(self, now: float, opened_at: float) -> None:
        """Start every due tick (see the module docstring) and move each schedule on."""
        for name, text, next_at, last_id in self.store.schedules():
            if next_at > now:
                continue
            try:
                spec = ScheduleSpec.from_text(text)
                registry.lookup(spec.flow)
            except FedflowError as exc:
                log.warning("engine %s: schedule %r cannot tick yet: %s", self.name, name, exc)
                continue
            if spec.paused:
                continue
            ticks, following = spec.due(next_at, now)
            missed = [t for t in ticks if t < opened_at]
            chosen = {"none": [], "latest": missed[-1:], "all": missed}[spec.catchup]
            for tick in [*chosen, *(t for t in ticks if t >= opened_at)]:
                last_id = self._start_tick(name, spec, tick, last_id)
            self.store.advance_schedule(name, text, next_at, following, last_id)

    def _start_tick(self, name: str, spec: ScheduleSpec, tick: float, last_id: str | None) -> str | None:
        """Start one tick's flow (unless overlap skips it); the id of the schedule's latest tick flow."""
        if spec.overlap == "skip" and last_id is not None and self.status(last_id) in LIVE:
            log.info("schedule %r: tick %s skipped, %s is still %s", name, spec.iso(tick), last_id,
                     self.status(last_id))
            return last_id
        at = spec.iso(tick)
        tick_id = f"{name}@{at}"
        try:
            self.start(spec.flow, {"at": at, "input": values.decode(spec.input)}, id=tick_id)
        except FedflowError as exc:
            started = self.store.get(tick_id)
            if started is not None and started.name == spec.flow:  # another engine on this store has the tick
                log.info("schedule %r: tick flow %s is run by another engine: %s", name, tick_id, exc)
            else:
                log.warning("schedule %r: tick flow %s: %s", name, tick_id, exc)
        return tick_id
