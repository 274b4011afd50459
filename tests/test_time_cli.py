"""Time over the wire and the command line: timers, wake, schedule add|list|rm, [[schedules]]."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

try:
    from test_cli_support import ServerPool, cli_json, describe, run_cli
except ImportError:  # tests/ imported as a package
    from tests.test_cli_support import ServerPool, cli_json, describe, run_cli

MODULE = '''
from fedflow import defflow, node, sequence, sleep, step


def register(engine):
    defflow("nap", sequence(node(lambda x: sleep(3600) or x), step(lambda x: {"woke": x})))
    defflow("tick", node(lambda x: x["at"]))
'''


def write_module(tmp_path: Path) -> Path:
    path = tmp_path / "timed_flows.py"
    path.write_text(MODULE)
    return path


def wait_until(check, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_timers_wake_and_schedules_from_the_command_line(pool: ServerPool, tmp_path: Path) -> None:
    server = pool.start("timed", load=(write_module(tmp_path),))
    at = ["--at", server.addr]
    started = cli_json(["start", *at, "nap", '"x"', "--id", "nap-1"])
    assert started["status"] == "suspended" and started["tag"].startswith("sleep:")
    [timer] = cli_json(["timers", *at])["timers"]
    assert (timer["id"], timer["tag"]) == ("nap-1", started["tag"]) and timer["wake_at"] > time.time() + 3000
    cp = run_cli(["resume", *at, "nap-1", '"poke"'])
    assert cp.returncode == 1 and "wake" in cp.stderr, describe(cp)
    assert cli_json(["wake", *at, "nap-1"]) == {"id": "nap-1", "status": "done", "result": {"woke": "x"}}
    assert cli_json(["timers", *at]) == {"timers": []}

    added = cli_json(["schedule", *at, "add", "often", "tick", "--every", "0.2", "--input", '{"k": 1}'])
    assert (added["schedule"]["every"], added["schedule"]["input"]) == (0.2, {"k": 1})
    [listed] = cli_json(["schedule", *at, "list"])["schedules"]
    assert (listed["name"], listed["flow"], listed["catchup"], listed["overlap"]) == ("often", "tick", "latest", "skip")
    wait_until(lambda: any(f["id"].startswith("often@") for f in cli_json(["list", *at])["flows"]), "a tick")
    assert cli_json(["schedule", *at, "rm", "often"]) == {"name": "often", "removed": True}
    assert cli_json(["schedule", *at, "list"]) == {"schedules": []}
    cp = run_cli(["schedule", *at, "rm", "often"])
    assert cp.returncode == 1 and "no schedule named 'often'" in cp.stderr, describe(cp)


@pytest.mark.parametrize(("args", "says"), [
    (["add", "x", "tick", "--every", "5", "--cron", "* * * * *"], "exactly one of"),
    (["add", "x", "tick"], "exactly one of"),
    (["add", "x", "tick", "--cron", "every tuesday"], "five fields"),
    (["add", "x"], "needs NAME and FLOW"),
    (["rm"], "needs the schedule's NAME"),
])
def test_bad_schedule_commands_are_bad_usage_before_any_call(args: list[str], says: str) -> None:
    cp = run_cli(["schedule", "--at", "127.0.0.1:9", *args])  # nothing listens there: no call is made
    assert cp.returncode == 2 and says in cp.stderr and cp.stdout == "", describe(cp)


@pytest.mark.slow
def test_schedules_from_the_serve_config_tick_and_survive_a_restart(pool: ServerPool, tmp_path: Path) -> None:
    module = write_module(tmp_path)
    config = tmp_path / "timed.toml"
    config.write_text(f'load = ["{module.name}"]\n\n[[schedules]]\nname = "cfg"\nflow = "tick"\nevery = 3600\n'
                      f'input = {{ n = 2 }}\n')
    server = pool.start("cfgd", extra=("--config", str(config)))
    [entry] = cli_json(["schedule", "--at", server.addr, "list"])["schedules"]
    assert (entry["name"], entry["every"], entry["input"]) == ("cfg", 3600.0, {"n": 2})
    pool.stop(server)
    again = pool.start("cfgd", port=int(server.addr.rsplit(":", 1)[1]), extra=("--config", str(config)))
    [same] = cli_json(["schedule", "--at", again.addr, "list"])["schedules"]
    assert same["next_at"] == entry["next_at"], "an unchanged config keeps the stored next tick"


def test_a_bad_schedule_in_the_config_is_refused_at_start(pool: ServerPool, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[schedules]]\nname = "bad"\nflow = "tick"\ncron = "* * *"\n')
    cp = run_cli(["serve", "--name", "bad", "--listen", "127.0.0.1:0", "--config", str(config)], cwd=tmp_path)
    assert cp.returncode == 2 and "[[schedules]] #1 (bad)" in cp.stderr and "five fields" in cp.stderr, describe(cp)
    assert cp.stdout == ""
