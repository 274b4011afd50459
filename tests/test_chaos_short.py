"""The short `make chaos`: one round across three network namespaces (needs root, as CI has)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_one_chaos_round_loses_and_doubles_nothing() -> None:
    here = Path(__file__).resolve().parent
    env = {**os.environ, "CHAOS_ROUNDS": "1", "CHAOS_SEED": "7", "CHAOS_TIME_BUDGET": "45"}
    out = subprocess.run([sys.executable, "-m", "chaos.run"], cwd=here, env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    total = out.stdout.strip().splitlines()[-1]
    assert total.startswith("total: acknowledged") and "lost 0, doubled 0, live on two 0" in total, out.stdout
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    assert "ff-" not in listed, "every namespace the run made is gone"
