"""Smoke test of the benchmark harness: `bench/run.py --quick --only 1` runs and writes its keys.

It checks that the harness works, never how fast anything is (no timing asserts).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

try:
    from pg_support import server_url
except ImportError:  # tests/ imported as a package
    from tests.pg_support import server_url

ROOT = Path(__file__).resolve().parent.parent
FLOW3_KEYS = ("flow3_memory_per_s", "flow3_process_per_s", "flow3_power_per_s")
META_KEYS = ("git_commit", "python", "machine", "measured_at")


def test_quick_flow3_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    for key in (*FLOW3_KEYS, *META_KEYS):
        assert key in results, f"{key} missing from {sorted(results)}"
    assert all(isinstance(results[key], float) for key in FLOW3_KEYS)
    assert "3-step flow" in proc.stdout  # the table was printed


def test_quick_postgres_writes_results(tmp_path: Path) -> None:
    server_url()  # fails, saying how to run it, without a test server
    out = tmp_path / "results.json"
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "postgres", "--out", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    for key in ("flow3_pg_1serve_per_s", "flow3_pg_2serve_per_s", "resume_pg_p50_ms", "pg_takeover_100_s"):
        assert isinstance(results.get(key), float), f"{key} missing from {sorted(results)}"
    assert "PostgreSQL store" in proc.stdout
