"""`make bench`: run fedflow's workloads (issue 7) with their baselines, print medians and ratios.

    python bench/run.py                 # everything, ~1-2 minutes on 2 cores
    python bench/run.py --quick         # a fast smoke run (small counts, 1 repeat)
    python bench/run.py --only 1,3      # some workloads
    python bench/run.py --out FILE      # write results elsewhere (default bench/results.json)

Workloads: 1 flow3, 2 resume, 3 remote (gRPC), 4 replay, 5 replication, 6 rss, 7 time, 8 console,
9 postgres (flow3 and resume on PostgreSQL with 1 and 2 serves, takeover after kill -9),
10 console_idle (workloads 1-3 with an idle console on and off, paired).
Every workload runs its baseline in the same run (raw SQLite commits for 1
and 2, a raw grpcio echo child for 3); DBOS numbers come from
`make bench-peers` (bench/dbos_workloads.py), which adds its keys to the
results file; a later `make bench` keeps them (their own timestamp says when).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, flows
from bench import workloads_console as console
from bench import workloads_console_idle as console_idle
from bench import workloads_grpc as remote
from bench import workloads_local as local
from bench import workloads_pg as pg
from bench import workloads_time as timing
from bench.report import print_table, target_verdicts

WORKLOADS = {1: "flow3", 2: "resume", 3: "remote", 4: "replay", 5: "replication", 6: "rss", 7: "time",
             8: "console", 9: "postgres", 10: "console_idle"}
CARRIED_PREFIXES = ("dbos_", "peers_")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes and repeat counts of one run."""

    repeats: int = 5
    grpc_repeats: int = 3
    sqlite_commits: int = 1_000
    flow3_flows: int = 500
    resume_flows: int = 200
    remote_calls: int = 500
    remote_per_caller: int = 150
    replay_steps: tuple[int, ...] = local.REPLAY_STEPS
    replay_resumes: int = 15
    replicate_flows: int = 10_000
    handoff_flows: int = 1_000
    rss_flows: int = 100_000
    timer_others: int = 100_000
    timer_lateness_flows: int = 300
    timer_burst_flows: int = 1_000
    timer_burst_repeats: int = 3
    page_flows: int = 1_000_000
    console_flows: int = 100_000
    console_steps: int = 1_000
    console_requests: int = 30


FULL = Settings()
QUICK = Settings(repeats=1, grpc_repeats=1, sqlite_commits=100, flow3_flows=50, resume_flows=20,
                 remote_calls=50, remote_per_caller=10, replay_steps=(10, 100, 1_000), replay_resumes=3,
                 replicate_flows=1_000, handoff_flows=100, rss_flows=10_000,
                 timer_others=10_000, timer_lateness_flows=50, timer_burst_flows=100, timer_burst_repeats=1,
                 page_flows=10_000, console_flows=1_000, console_steps=100, console_requests=3)


def _runners(s: Settings, tmp: Path) -> dict[int, Callable[[], dict[str, Any]]]:
    """Workload number -> a function running it (with its baseline) and returning its keys."""
    return {
        1: lambda: {**local.workload_sqlite(tmp, s.repeats, s.sqlite_commits),
                    **local.workload_flow3(tmp, s.repeats, s.flow3_flows)},
        2: lambda: local.workload_resume(tmp, s.repeats, s.resume_flows),
        3: lambda: remote.workload_remote(tmp, s.grpc_repeats, s.remote_calls, s.remote_per_caller),
        4: lambda: local.workload_replay(tmp, s.replay_resumes, s.replay_steps),
        5: lambda: remote.workload_replication(tmp, s.grpc_repeats, s.replicate_flows, s.handoff_flows),
        6: lambda: remote.workload_rss(tmp, s.rss_flows),
        7: lambda: timing.workload_time(tmp, s.timer_others, s.timer_lateness_flows, s.timer_burst_flows,
                                        s.timer_burst_repeats),
        8: lambda: console.workload_console(tmp, s.page_flows, s.console_flows, s.console_steps,
                                            s.console_requests),
        9: lambda: pg.workload_postgres(tmp, s.repeats, s.flow3_flows, s.resume_flows),
        10: lambda: console_idle.workload_console_idle(tmp, s is QUICK),
    }


def run_workloads(selected: list[int], settings: Settings) -> dict[str, Any]:
    """Run the `selected` workloads in order; their keys plus `<name>_wall_s` for each."""
    flows.define(settings.replay_steps, settings.replay_resumes * 2)
    results: dict[str, Any] = {}
    with common.scratch_dir() as tmp:
        runners = _runners(settings, tmp)
        for number in selected:
            name = WORKLOADS[number]
            print(f"[bench] workload {number} ({name}) ...", file=sys.stderr, flush=True)
            begin = time.perf_counter()
            results.update(runners[number]())
            results[f"{name}_wall_s"] = round(time.perf_counter() - begin, 2)
    return results


# ------------------------------------------------------------------ metadata
def _git_commit() -> str:
    """HEAD of the repo, with `+dirty` when the work tree has changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=common.ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        return f"{commit}+dirty" if git("status", "--porcelain", "--untracked-files=no") else commit
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def metadata(quick: bool, selected: list[int]) -> dict[str, Any]:
    """Where and how the numbers were measured."""
    import grpc

    return {
        "git_commit": _git_commit(),
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpu, {_cpu_model()}",
        "grpcio": grpc.__version__,
        "sqlite": sqlite3.sqlite_version,
        "quick": quick,
        "workloads": ",".join(str(n) for n in selected),
    }


# ------------------------------------------------------------------ results file
def carried_keys(path: Path) -> dict[str, Any]:
    """The `make bench-peers` keys of an existing results file (kept across `make bench`)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in old.items() if k.startswith(CARRIED_PREFIXES)} if isinstance(old, dict) else {}


def rounded(results: dict[str, Any]) -> dict[str, Any]:
    """Floats to 4 significant digits, for a readable file."""
    return {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in results.items()}


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write one flat JSON object, keys sorted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rounded(results), indent=2, sort_keys=True) + "\n")


def parse_selection(text: str) -> list[int]:
    """"1,3" -> [1, 3]; names work too ("flow3,remote")."""
    by_name = {name: number for number, name in WORKLOADS.items()}
    chosen = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        number = by_name.get(part) or (int(part) if part.isdigit() else 0)
        if number not in WORKLOADS:
            raise argparse.ArgumentTypeError(f"unknown workload {part!r}; pick from {WORKLOADS}")
        chosen.append(number)
    return sorted(set(chosen))


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write the results file."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts and one repeat (a smoke run)")
    parser.add_argument("--only", type=parse_selection, default=sorted(WORKLOADS), metavar="LIST",
                        help="workloads to run, e.g. 1,2 or flow3,resume (default: all)")
    parser.add_argument("--out", type=Path, default=common.BENCH / "results.json", help="results file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = QUICK if args.quick else FULL
    begin = time.perf_counter()
    measured = run_workloads(args.only, settings)
    results = {**carried_keys(args.out), **metadata(args.quick, args.only), **measured}
    results["total_wall_s"] = round(time.perf_counter() - begin, 1)
    results.update(target_verdicts(results))
    write_results(args.out, results)
    print_table(results)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
