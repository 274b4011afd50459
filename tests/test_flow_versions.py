"""Versioned flows: patched() markers and check(), beyond the conformance suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import fedflow
from fedflow import Engine, node, sequence, step, suspend

try:
    from support import Calls, unique
except ImportError:  # tests/ imported as a package
    from tests.support import Calls, unique


def test_patched_is_journaled_under_its_own_key_and_moves_no_step(engine: Engine) -> None:
    flow = sequence(node(lambda x: fedflow.patched("p1")), step(lambda new: {"new": new}),
                    node(lambda d: {**d, "ok": suspend("ok")}))
    engine.start(flow, None, id="p")
    log = [json.loads(text) for text in engine.store.load_log("p")]
    assert [(e["k"], e["n"], e["v"]) for e in log] == [("patch:p1", "patched", True), ("0", log[1]["n"], {"new": True})]


def test_check_reports_a_log_entry_the_new_code_never_reads(engine: Engine) -> None:
    name = unique("shrunk")
    a, b = step(lambda x: x, name="a"), step(lambda x: x, name="b")
    fedflow.defflow(name, sequence(a, b, node(lambda x: suspend("go"))))
    engine.start(name, 1, id="s")
    fedflow.defflow(name, sequence(a, node(lambda x: suspend("go"))))
    [entry] = engine.check()
    assert not entry["ok"] and "'step b'" in entry["error"] and "never asks for" in entry["error"]


def test_check_reports_a_flow_that_would_wait_on_another_tag(engine: Engine) -> None:
    name = unique("retagged")
    fedflow.defflow(name, node(lambda x: suspend("approve")))
    engine.start(name, 1, id="t")
    fedflow.defflow(name, node(lambda x: suspend("review")))
    [entry] = engine.check()
    assert not entry["ok"] and "'approve'" in entry["error"] and "'review'" in entry["error"]


def test_check_reports_an_anonymous_flow_and_an_unknown_id(engine: Engine) -> None:
    engine.start(node(lambda x: suspend("x")), None, id="anon")
    engine._anonymous.clear()  # as after a restart
    report = engine.check(ids=["anon", "ghost"])
    assert [(r["id"], r["ok"]) for r in report] == [("anon", False), ("ghost", False)]
    assert "defflow" in report[0]["error"] and "ghost" in report[1]["error"]


def test_check_stops_at_a_sleep_without_firing_it(engine: Engine) -> None:
    name = unique("napper")
    ran = Calls()
    fedflow.defflow(name, sequence(node(lambda x: fedflow.sleep(3600) or x), step(ran)))
    engine.start(name, 1, id="n")
    assert engine.check() == [{"id": "n", "flow": name, "ok": True, "error": None}]
    assert ran.n == 0 and engine.status("n") == "suspended"


SHOP = '''
from fedflow import defflow, node, sequence, step, suspend


def first(x):
    return x


def second(x):
    return x


def register(engine):
    defflow("@NAME@", sequence(step(@A@), node(lambda x: suspend("go")), step(@B@)))
'''


def test_cli_check_prints_the_report_and_names_the_difference(tmp_path: Path) -> None:
    name = unique("cli-shop")
    for version, a, b in (("v1", "first", "second"), ("v2", "second", "first")):
        (tmp_path / version).mkdir()
        (tmp_path / version / "shop.py").write_text(SHOP.replace("@NAME@", name).replace("@A@", a)
                                                    .replace("@B@", b))
    db = tmp_path / "shop.db"
    sys.path.insert(0, str(tmp_path / "v1"))
    try:
        import shop

        shop.register(None)
        with Engine(name="shop", store=str(db)) as engine:
            engine.start(name, 1, id="o-1")
    finally:
        sys.path.remove(str(tmp_path / "v1"))
        sys.modules.pop("shop", None)
    cmd = [sys.executable, "-m", "fedflow", "check", "--db", str(db), "--load"]
    good = subprocess.run([*cmd, str(tmp_path / "v1" / "shop.py")], capture_output=True, text=True, timeout=60)
    bad = subprocess.run([*cmd, str(tmp_path / "v2" / "shop.py")], capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout) == {"ok": True, "flows": [{"id": "o-1", "flow": name, "ok": True, "error": None}]}
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["ok"] is False
    assert "o-1" in bad.stderr and "step second" in bad.stderr and "step first" in bad.stderr


def test_cli_check_of_a_missing_store_is_bad_usage_and_creates_nothing(tmp_path: Path) -> None:
    cp = subprocess.run([sys.executable, "-m", "fedflow", "check", "--db", str(tmp_path / "no.db"), "--load",
                         "json"], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 2 and "no such store file" in cp.stderr
    assert not (tmp_path / "no.db").exists()


@pytest.mark.parametrize("bad", ["", 7])
def test_patched_needs_a_non_empty_string(engine: Engine, bad: object) -> None:
    with pytest.raises(fedflow.FlowFailed, match="patched"):
        engine.start(node(lambda x: fedflow.patched(bad)), None)
