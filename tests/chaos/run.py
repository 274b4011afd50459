"""`make chaos`: rounds of flows across three hosts while links are cut and processes killed.

Run as root: ``python -m chaos.run`` from tests/ (rounds: ``CHAOS_ROUNDS``, default 20;
``CHAOS_SEED`` for a repeatable run). The outer process makes the namespaces (`hosts`),
runs the rounds inside ff-ctl, and deletes every namespace at the end, even on failure.

Every peer link (a to b, b to a, ...) runs through a fault-injecting TCP proxy (`proxy`)
in ff-ctl, so one direction of one link can misbehave while the hosts' own links are up.
Each round starts flows on random hosts, each calling `effect` on another host; while
they start, one host's link is cut or its process killed with `kill -9`, and, from one
random point to a later one, one peer link is delayed, reset or blackholed (its
connections are reset when the blackhole ends: bytes dropped mid-stream leave nothing
worth resuming). Then links heal,
killed hosts restart, a host replicates to another and one hands its waiting flows off,
and every acknowledged flow is resumed wherever it lives. At the end `check` reads every
store and effects file and prints, per round: acknowledged, done once, lost, doubled,
live on two; the exit status is 1 on any loss, doubling or double ownership.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from chaos import check, hosts, proxy
except ImportError:  # tests/ imported as a package
    from tests.chaos import check, hosts, proxy

PORT = 7000
#: The first port of the peer-link proxies in ff-ctl (one per ordered pair of hosts).
PROXY_PORT = 7100
#: What a round may do to one peer link: name -> proxy mode.
LINK_FAULTS = {"delay": proxy.DELAY, "reset": proxy.RESET, "blackhole": proxy.DROP}
NAMES = ("a", "b", "c")
FLOWS_PER_ROUND = 6
#: Seconds the whole run may take, whatever CHAOS_ROUNDS says.
TIME_BUDGET = float(os.environ.get("CHAOS_TIME_BUDGET", "900"))


def address(name: str) -> str:
    return f"{hosts.ADDRESSES[name]}:{PORT}"


LINKS = [(source, target) for source in NAMES for target in NAMES if source != target]


def link_address(source: str, target: str) -> str:
    """Where `source` reaches peer `target`: the proxy of that link, in ff-ctl."""
    return f"{hosts.ADDRESSES['ctl']}:{PROXY_PORT + LINKS.index((source, target))}"


def open_links() -> dict[tuple[str, str], proxy.FaultProxy]:
    """One proxy per peer link, listening in ff-ctl (where the runner lives)."""
    return {(source, target): proxy.FaultProxy((hosts.ADDRESSES[target], PORT),
                                               listen=(hosts.ADDRESSES["ctl"], PROXY_PORT + i))
            for i, (source, target) in enumerate(LINKS)}


class LinkFault:
    """One round's fault on one peer link, started and ended at chosen points."""

    def __init__(self, rng: random.Random, links: dict[tuple[str, str], proxy.FaultProxy]) -> None:
        self.kind = rng.choice(sorted(LINK_FAULTS))
        self.link = rng.choice(LINKS)
        self.delay = round(rng.uniform(0.2, 1.5), 2)
        self.start_at = rng.randrange(FLOWS_PER_ROUND)
        self.end_at = rng.randrange(self.start_at + 1, FLOWS_PER_ROUND + 1)
        self.proxy = links[self.link]

    def __str__(self) -> str:
        detail = f" {self.delay:g}s" if self.kind == "delay" else ""
        return f"{self.kind}{detail} {self.link[0]}->{self.link[1]} (flows {self.start_at}-{self.end_at - 1})"

    def begin(self) -> None:
        self.proxy.set(LINK_FAULTS[self.kind], delay=self.delay)

    def end(self) -> None:
        if self.kind == "blackhole":
            self.proxy.set(proxy.RESET)
        self.proxy.set(proxy.PASS)


class Instance:
    """One `fedflow serve` in its host's namespace."""

    def __init__(self, name: str, work: Path) -> None:
        self.name = name
        self.work = work
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        peers = [arg for other in NAMES if other != self.name
                 for arg in ("--peer", f"{other}={link_address(self.name, other)}")]
        env = {**os.environ, "CHAOS_EFFECTS": str(self.work / f"effects-{self.name}"), "PYTHONUNBUFFERED": "1"}
        log = open(self.work / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", f"{hosts.PREFIX}{self.name}", sys.executable, "-m", "fedflow", "serve",
             "--name", self.name, "--listen", address(self.name), "--db", str(self.work / f"{self.name}.db"),
             "--load", str(Path(__file__).with_name("peer.py")), "--deadline", "2", *peers],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def _client(name: str):
    from fedflow.client import ControlClient

    return ControlClient(address(name), deadline=5.0)


def _wait_ready(instances: dict[str, Instance], timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    for name, instance in instances.items():
        with _client(name) as client:
            while not client.health():
                if time.monotonic() > end:
                    log = (instance.work / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"instance {name} did not come up; its log ends:\n{log}")
                time.sleep(0.1)


def _try(what, *args, **kwargs):
    try:
        return what(*args, **kwargs)
    except Exception as exc:  # a fault is expected here; the checker judges the outcome
        return exc


def one_round(n: int, instances: dict[str, Instance], links: dict[tuple[str, str], proxy.FaultProxy],
              rng: random.Random, acked: dict[str, str]) -> str:
    """Run round `n`; the faults it injected."""
    fault_at, fault, victim = rng.randrange(FLOWS_PER_ROUND), rng.choice(["cut", "kill"]), rng.choice(NAMES)
    link_fault = LinkFault(rng, links)
    for i in range(FLOWS_PER_ROUND):
        if i == fault_at:
            hosts.cut(victim) if fault == "cut" else instances[victim].kill()
        if i == link_fault.start_at:
            link_fault.begin()
        if i == link_fault.end_at:
            link_fault.end()
        home = rng.choice(NAMES)
        target = rng.choice([h for h in NAMES if h != home])
        flow_id = f"r{n}-{i}"
        with _client(home) as client:
            out = _try(client.start, f"job_to_{target}", {"key": f"{flow_id}/call"}, flow_id=flow_id)
        if isinstance(out, dict) and out.get("status") == "suspended":
            acked[flow_id] = home
    if link_fault.end_at == FLOWS_PER_ROUND:
        link_fault.end()
    hosts.heal(victim)
    if fault == "kill":
        instances[victim].start()
    _wait_ready(instances)
    source, holder = rng.sample(NAMES, 2)
    with _client(source) as client:
        _try(client.replicate, holder)
        if rng.random() < 0.5:
            _try(client.handoff, holder)
    return f"{fault} {victim}; {link_fault}"


def resume_all(acked: dict[str, str]) -> None:
    """Resume every acknowledged flow where it waits (a few passes: a handoff may be under way)."""
    for _attempt in range(5):
        waiting = False
        for flow_id in acked:
            for name in NAMES:
                with _client(name) as client:
                    status = _try(client.status, flow_id)
                    if isinstance(status, dict) and status.get("status") == "suspended":
                        waiting = True
                        _try(client.resume, flow_id, "go")
        if not waiting:
            return


def inside(work: Path, rounds: int, seed: int) -> int:
    """The run proper, inside ff-ctl; the exit status."""
    rng = random.Random(seed)
    instances = {name: Instance(name, work) for name in NAMES}
    acked: dict[str, str] = {}
    faults: list[str] = []
    started = time.monotonic()
    links = open_links()
    try:
        for instance in instances.values():
            instance.start()
        _wait_ready(instances)
        for n in range(rounds):
            if time.monotonic() - started > TIME_BUDGET:
                print(f"time budget of {TIME_BUDGET:g}s spent after {n} rounds", flush=True)
                break
            faults.append(one_round(n, instances, links, rng, acked))
            print(f"round {n}: {faults[-1]}, {sum(1 for f in acked if f.startswith(f'r{n}-'))} acknowledged",
                  flush=True)
        resume_all(acked)
    finally:
        for instance in instances.values():
            instance.stop()
        for link in links.values():
            link.close()
    report = check.check(work, NAMES, acked)
    for n, fault in enumerate(faults):
        print(check.round_line(report, n, fault), flush=True)
    print(check.total_line(report), flush=True)
    return 0 if check.clean(report) else 1


def main() -> int:
    if os.geteuid() != 0:
        print("make chaos needs root (network namespaces)", file=sys.stderr)
        return 2
    rounds = int(os.environ.get("CHAOS_ROUNDS", "20"))
    seed = int(os.environ.get("CHAOS_SEED", str(int(time.time()))))
    print(f"chaos: {rounds} rounds, seed {seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="fedflow-chaos-") as folder:
        hosts.setup()
        try:
            here = Path(__file__).resolve().parents[1]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent)])}
            return subprocess.run(["ip", "netns", "exec", f"{hosts.PREFIX}ctl", sys.executable, "-c",
                                   "import sys; from chaos.run import inside; "
                                   "sys.exit(inside(__import__('pathlib').Path(sys.argv[1]), int(sys.argv[2]), "
                                   "int(sys.argv[3])))", folder, str(rounds), str(seed)],
                                  env=env, timeout=TIME_BUDGET + 600).returncode
        finally:
            hosts.teardown()


if __name__ == "__main__":
    raise SystemExit(main())
