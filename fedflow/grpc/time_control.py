"""Timers and schedules over the wire: ControlService messages to and from engine answers.

Used by the ControlService handlers (server side) and `ControlClient` (client side),
so both ends agree on one shape: a timer is ``{"id", "tag", "wake_at"}``, a schedule
the dict `Engine.schedules()` returns.
"""

from __future__ import annotations

from typing import Any

from ..v1 import fedflow_pb2 as pb
from .codec import pack, unpack


def timers_response(engine: Any) -> pb.TimersResponse:
    """The engine's timers as a TimersResponse."""
    return pb.TimersResponse(timers=[pb.TimerEntry(id=fid, tag=tag, wake_at=wake_at)
                                     for fid, tag, wake_at in engine.timers()])


def schedule_info(entry: dict[str, Any]) -> pb.ScheduleInfo:
    """One `Engine.schedules()` entry as a ScheduleInfo."""
    info = pb.ScheduleInfo(name=entry["name"], flow=entry["flow"], input=pack(entry["input"], "input"),
                           catchup=entry["catchup"], overlap=entry["overlap"], paused=entry["paused"],
                           next_at=entry["next_at"])
    if entry["cron"] is not None:
        info.cron = entry["cron"]
    if entry["every"] is not None:
        info.every = float(entry["every"])
    return info


def schedule(engine: Any, request: pb.ScheduleRequest) -> pb.ScheduleInfo:
    """Create or replace the schedule `request` describes; the stored schedule."""
    entry = engine.schedule(request.name, request.flow, unpack(request.input, "input"),
                            cron=request.cron if request.HasField("cron") else None,
                            every=request.every if request.HasField("every") else None,
                            catchup=request.catchup or "latest", overlap=request.overlap or "skip",
                            paused=request.paused)
    return schedule_info(entry)


def schedule_request(name: str, flow: str, input: Any = None, *, cron: str | None = None,
                     every: float | None = None, catchup: str = "latest", overlap: str = "skip",
                     paused: bool = False) -> pb.ScheduleRequest:
    """The ScheduleRequest for `Engine.schedule`'s arguments."""
    request = pb.ScheduleRequest(name=name, flow=flow, input=pack(input, "input"), catchup=catchup,
                                 overlap=overlap, paused=paused)
    if cron is not None:
        request.cron = cron
    if every is not None:
        request.every = float(every)
    return request


def schedule_dict(info: pb.ScheduleInfo) -> dict[str, Any]:
    """A ScheduleInfo as the dict `Engine.schedules()` gives."""
    return {"name": info.name, "flow": info.flow, "input": unpack(info.input, "input"),
            "cron": info.cron if info.HasField("cron") else None,
            "every": info.every if info.HasField("every") else None,
            "catchup": info.catchup, "overlap": info.overlap, "paused": info.paused, "next_at": info.next_at}
