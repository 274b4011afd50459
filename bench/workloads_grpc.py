"""Workloads 3, 5 and 6: fedflow against other processes over gRPC on 127.0.0.1.

3. `remote`: calls to a `fedflow serve` child (direct and as a one-step
   `remote_node` flow) against a raw grpcio echo child, same payloads, same run.
5. `replication`: 10,000 suspended flows replicated to and restored on a
   `fedflow serve` child; handoff of 1,000 suspended flows.
6. `rss`: VmRSS of `fedflow serve` holding 100,000 suspended flows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc

import fedflow
from bench import common, flows
from bench.peer_echo import ECHO_METHOD, MAX_MESSAGE
from fedflow.client import ControlClient

PAYLOADS = {"": 100, "_64k": 64 * 1024}  # results-key suffix -> payload bytes on the wire
#: A line of prose: what a content pipeline carries, with quotes and newlines to escape when stored.
PROSE_LINE = 'The editor wrote: "ship it after the review."\n'
CALLERS = 8
CALL_DEADLINE = 30.0
PEER = "peer"  # the name flows.remote_echo calls


# ------------------------------------------------------------------ children
def serve_argv(name: str, port: int, db: Path) -> list[str]:
    """argv of a real `fedflow serve` child loading the benchmark flows."""
    return [sys.executable, "-m", "fedflow", "serve", "--name", name, "--listen", f"127.0.0.1:{port}",
            "--db", str(db), "--load", str(common.BENCH / "flows.py"), "--log-level", "WARNING"]


def wait_serving(proc: common.Child, address: str, timeout: float = common.READY_TIMEOUT) -> None:
    """Wait (bounded) until the child at `address` answers its health check with SERVING."""
    with ControlClient(address, deadline=1.0) as client:
        common.wait_until(lambda: proc.proc.poll() is not None or client.health(), timeout,
                          f"{proc.name} to serve on {address}")
    if proc.proc.poll() is not None:
        raise RuntimeError(f"{proc.name} exited with {proc.proc.returncode}:\n{proc.tail()}")


@contextlib.contextmanager
def fedflow_serve(tmp: Path, name: str, db: Path | None = None, timeout: float = common.READY_TIMEOUT,
                  extra: tuple[str, ...] = ()) -> Iterator[tuple[common.Child, str]]:
    """A `fedflow serve` child named `name` on a free port (with `extra` arguments); yields
    (child, "127.0.0.1:port")."""
    port = common.free_port()
    address = f"127.0.0.1:{port}"
    db = db or tmp / f"{name}-{uuid.uuid4().hex[:8]}.db"
    with common.child([*serve_argv(name, port, db), *extra], tmp, f"{name}-{port}") as proc:
        wait_serving(proc, address, timeout)
        yield proc, address


@contextlib.contextmanager
def raw_echo(tmp: Path) -> Iterator[str]:
    """The raw grpcio echo child (bench/peer_echo.py); yields its address."""
    with common.child(common.python_argv("peer_echo.py"), tmp, "raw-echo") as proc:
        line = proc.read_line()
        if not line.startswith("PORT "):
            raise RuntimeError(f"raw echo printed {line!r}, not PORT <n>")
        yield f"127.0.0.1:{int(line.split()[1])}"


# ------------------------------------------------------------------ measuring calls
def latencies(call: Callable[[], Any], count: int) -> dict[str, float]:
    """p50/p99 ms of `count` sequential calls (after 20 warm-up calls)."""
    for _ in range(20):
        call()
    samples = []
    for _ in range(count):
        begin = time.perf_counter()
        call()
        samples.append(time.perf_counter() - begin)
    ms = common.latency_ms(samples)
    return {"p50_ms": ms["p50"], "p99_ms": ms["p99"]}


def measure(call: Callable[[], Any], count: int, per_caller: int) -> dict[str, float]:
    """p50/p99 ms of one caller and calls/s of CALLERS callers."""
    return {**latencies(call, count), "per_s": common.throughput(call, CALLERS, per_caller)}


def _checked(call: Callable[[], Any], expected: Any, what: str) -> Callable[[], Any]:
    """`call`, after checking once that it answers `expected`."""
    answer = call()
    if answer != expected:
        raise RuntimeError(f"{what} answered {str(answer)[:80]!r}, not the payload")
    return call


# ------------------------------------------------------------------ workload 3
@dataclasses.dataclass
class Callers:
    """The ways of making one echo, for one payload size."""

    raw: Callable[[], Any]
    direct: Callable[[], Any]
    flow: Callable[[], Any]
    flow_process: Callable[[], Any]


def make_callers(raw_channel: grpc.Channel, engine: fedflow.Engine, process_engine: fedflow.Engine,
                 size: int) -> Callers:
    """Echo callers for a `size`-byte payload: the raw bytes, and a str that is `size` bytes as JSON.
    `engine` keeps its flows at durability "power" (the default), `process_engine` at "process"."""
    raw_payload = b"x" * size
    text = "x" * (size - 2)  # as JSON '"xx...x"': `size` bytes (from 4 KiB up it travels as a raw blob of size-2)
    stub = raw_channel.unary_unary(ECHO_METHOD)
    return Callers(
        raw=_checked(lambda: stub(raw_payload, timeout=CALL_DEADLINE), raw_payload, "raw echo"),
        direct=_checked(lambda: engine.call_peer(PEER, "echo", text, deadline=CALL_DEADLINE), text,
                        "fedflow call_peer"),
        flow=_checked(lambda: engine.start(flows.REMOTE_ECHO, text), text, "remote_node flow"),
        flow_process=_checked(lambda: process_engine.start(flows.REMOTE_ECHO, text), text,
                              "remote_node flow (process)"))


def _remote_round(callers: Callers, suffix: str, count: int, per_caller: int) -> dict[str, float]:
    """One repeat: every caller measured back to back (so drift hits them all)."""
    out = {}
    for label, call in (("echo", callers.raw), ("remote_direct", callers.direct), ("remote_flow", callers.flow),
                        ("remote_flow_process", callers.flow_process)):
        for key, value in measure(call, count, per_caller).items():
            out[f"{label}{suffix}_{key}"] = value
    return out


def prose(size: int) -> str:
    """A `size - 2`-character text of PROSE_LINEs (on the wire as long as the 'x' payload of `size`)."""
    return (PROSE_LINE * (size // len(PROSE_LINE) + 1))[:size - 2]


def _prose_round(engine: fedflow.Engine, process_engine: fedflow.Engine, count: int) -> dict[str, float]:
    """p50/p99 of the one-step flow (power, process) on a 64 KiB prose payload: the store must
    escape it, which the repeated-character payload of the other rows never needs."""
    text = prose(PAYLOADS["_64k"])
    out = {}
    for label, eng in (("remote_flow", engine), ("remote_flow_process", process_engine)):
        call = _checked(lambda e=eng: e.start(flows.REMOTE_ECHO, text), text, f"{label} (prose)")
        for key, value in latencies(call, count).items():
            out[f"{label}_64k_prose_{key}"] = value
    return out


def _remote_ratios(out: dict[str, float], suffix: str) -> None:
    """Add fedflow/raw ratios for the keys with `suffix` (p50: lower is better; per_s: higher)."""
    for label in ("remote_direct", "remote_flow", "remote_flow_process"):
        out[f"{label}{suffix}_p50_vs_echo"] = common.ratio(out[f"{label}{suffix}_p50_ms"], out[f"echo{suffix}_p50_ms"])
        out[f"{label}{suffix}_per_s_vs_echo"] = common.ratio(out[f"{label}{suffix}_per_s"], out[f"echo{suffix}_per_s"])


def workload_remote(tmp: Path, repeats: int, count: int, per_caller: int) -> dict[str, float]:
    """Workload 3 for every payload size; keys `echo{sfx}_p50_ms`, `remote_direct{sfx}_per_s`, ..."""
    out: dict[str, float] = {}
    with raw_echo(tmp) as raw_address, fedflow_serve(tmp, "bench-peer") as (peer, peer_address), \
            grpc.insecure_channel(raw_address, options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                                        ("grpc.max_send_message_length", MAX_MESSAGE)]) as chan, \
            fedflow.Engine(name="bench-caller", store=str(tmp / "caller.db")) as engine, \
            fedflow.Engine(name="bench-caller-p", store=str(tmp / "caller-p.db"), durability="process") as fast:
        engine.peers.connect(PEER, peer_address)
        fast.peers.connect(PEER, peer_address)
        for suffix, size in PAYLOADS.items():
            callers = make_callers(chan, engine, fast, size)
            out.update(common.repeat(repeats, lambda c=callers, s=suffix: _remote_round(c, s, count, per_caller)))
            _remote_ratios(out, suffix)
        out.update(common.repeat(repeats, lambda: _prose_round(engine, fast, count)))
        for label in ("remote_flow", "remote_flow_process"):
            out[f"{label}_64k_prose_p50_vs_echo"] = common.ratio(out[f"{label}_64k_prose_p50_ms"],
                                                                  out["echo_64k_p50_ms"])
        out["remote_peer_rss_mb"] = common.vm_rss_mb(peer.pid)  # the called peer, after every call
    return out


# ------------------------------------------------------------------ populating stores
def populate(engine: fedflow.Engine, count: int, real: int = 1_000) -> str:
    """Give `engine` `count` suspended `parked` flows; the id of the last one.

    The first `real` are started through the engine; the rest are copies of
    them under fresh ids, merged in through `engine.import_store` in batches
    (the same rows, ~20x faster than starting each)."""
    real = min(real, count)
    last = ""
    for i in range(real):
        last = engine.start(flows.PARKED, {"i": i, "user": "ada"}).id
    template = engine.export()
    made = real
    while made < count:
        batch = min(10_000, count - made)
        copies = [dict(template["flows"][k % real], id=clone_id(engine.name, made + k)) for k in range(batch)]
        engine.import_store({**template, "flows": copies})
        made += batch
        last = copies[-1]["id"]
    return last


def clone_id(engine_name: str, index: int) -> str:
    """The id `populate` gives copy number `index`."""
    return f"{engine_name}-c{index:07d}"


def export_bytes(engine: fedflow.Engine) -> int:
    """The size of the engine's export as the JSON text replication sends."""
    return len(json.dumps(engine.export(), separators=(",", ":")).encode())


# ------------------------------------------------------------------ workload 5
def replicate_once(tmp: Path, source: fedflow.Engine, expected: int) -> dict[str, float]:
    """Replicate `source` to a fresh `fedflow serve` child and restore it there; seconds."""
    with fedflow_serve(tmp, "bench-b") as (_proc, address), ControlClient(address, deadline=120) as client:
        source.peers.connect("bench-b", address)
        begin = time.perf_counter()
        pushed = source.replicate_to("bench-b")
        middle = time.perf_counter()
        restored = client.restore("bench-b", source=source.name)["ids"]
        end = time.perf_counter()
    if pushed != expected or len(restored) != expected:
        raise RuntimeError(f"replicated {pushed} and restored {len(restored)} flows, expected {expected}")
    return {"push": middle - begin, "restore": end - middle, "total": end - begin}


def handoff_once(tmp: Path, count: int) -> float:
    """Seconds for `handoff_to` of `count` suspended flows to a fresh `fedflow serve` child."""
    with fedflow.Engine(name=f"bench-h{uuid.uuid4().hex[:6]}", store=str(tmp / f"h-{uuid.uuid4().hex[:6]}.db"),
                        durability="process") as engine:
        for i in range(count):
            engine.start(flows.PARKED, {"i": i})
        with fedflow_serve(tmp, "bench-c") as (_proc, address), ControlClient(address) as client:
            engine.peers.connect("bench-c", address)
            begin = time.perf_counter()
            moved = engine.handoff_to("bench-c")
            elapsed = time.perf_counter() - begin
            _check_moved(engine, client, moved, count)
    return elapsed


def _check_moved(engine: fedflow.Engine, client: ControlClient, moved: list[str], count: int) -> None:
    """The handoff moved every flow, and a moved flow resumes to completion on the peer."""
    if len(moved) != count:
        raise RuntimeError(f"handoff moved {len(moved)} of {count} flows")
    if engine.status(moved[0]) != "moved" or client.resume(moved[0], True)["status"] != "done":
        raise RuntimeError(f"flow {moved[0]} did not move and finish on the peer")


def workload_replication(tmp: Path, repeats: int, flows_count: int, handoff_count: int) -> dict[str, float]:
    """Workload 5: replicate+restore `flows_count` flows; handoff of `handoff_count` flows."""
    with fedflow.Engine(name="bench-a", store=str(tmp / "a.db"), durability="process") as source:
        populate(source, flows_count)
        size = export_bytes(source)
        runs = common.median_of([replicate_once(tmp, source, flows_count) for _ in range(repeats)])
    handoff = common.median([handoff_once(tmp, handoff_count) for _ in range(repeats)])
    label = f"{flows_count}"
    return {f"replicate_{label}_s": runs["total"], f"replicate_{label}_push_s": runs["push"],
            f"replicate_{label}_restore_s": runs["restore"], f"replicate_{label}_mib": size / 2**20,
            f"replicate_{label}_mib_per_s": common.ratio(size / 2**20, runs["total"]),
            f"handoff_{handoff_count}_s": handoff}


# ------------------------------------------------------------------ workload 6
def serve_rss(tmp: Path, db: Path, name: str, flow_id: str | None = None) -> dict[str, float]:
    """VmRSS (MiB) of `fedflow serve --db db` once serving, and after a status and a resume of `flow_id`."""
    with fedflow_serve(tmp, name, db, timeout=120) as (proc, address), ControlClient(address) as client:
        ready = common.vm_rss_mb(proc.pid)
        if flow_id is not None:
            client.status(flow_id)
            if client.resume(flow_id, True)["status"] != "done":
                raise RuntimeError(f"flow {flow_id} did not finish on the serving child")
        used = common.vm_rss_mb(proc.pid)
    return {"ready": ready, "used": used}


def workload_rss(tmp: Path, flows_count: int) -> dict[str, float]:
    """Workload 6: RSS of `fedflow serve` holding `flows_count` suspended flows, and of an empty one."""
    db = tmp / "rss.db"
    begin = time.perf_counter()
    with fedflow.Engine(name="bench-rss", store=str(db), durability="process") as engine:
        last = populate(engine, flows_count)
    build = time.perf_counter() - begin
    full = serve_rss(tmp, db, "bench-rss", last)
    empty = serve_rss(tmp, tmp / "empty.db", "bench-empty")
    label = "100k" if flows_count == 100_000 else str(flows_count)
    return {f"rss_{label}_mb": max(full.values()), f"rss_{label}_ready_mb": full["ready"],
            "rss_empty_mb": max(empty.values()), f"rss_{label}_build_s": build,
            f"rss_{label}_db_mib": common.file_size(db) / 2**20}
