"""Checks `fedflow` makes before it does anything: deadlines, TLS files, open ports."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from fedflow.cli import serve as cli_serve


def fedflow(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fedflow", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("deadline", ["nan", "inf", "0", "-1"])
def test_a_deadline_that_is_not_a_positive_finite_number_is_bad_usage(deadline: str) -> None:
    done = fedflow("list", "--at", "127.0.0.1:9", "--deadline", deadline)
    assert done.returncode == 2
    assert "--deadline" in done.stderr and "Traceback" not in done.stderr


def test_unreadable_tls_files_fail_before_the_store_is_opened(tmp_path: Path) -> None:
    done = fedflow("serve", "--name", "w", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "w.db"),
                   "--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(tmp_path / "missing.key"),
                   "--tls-ca", str(tmp_path / "ca.pem"))
    assert done.returncode != 0
    assert "--tls-cert" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "w.db").exists()


@pytest.mark.parametrize(("listen", "token", "warned"), [
    ("0.0.0.0:50051", None, True), ("10.1.2.3:50051", None, True), ("0.0.0.0:50051", "t", False),
    ("127.0.0.1:50051", None, False), ("localhost:50051", None, False), ("[::1]:50051", None, False)])
def test_serving_beyond_loopback_without_a_token_or_tls_is_said_loudly(
        caplog: pytest.LogCaptureFixture, listen: str, token: str | None, warned: bool) -> None:
    with caplog.at_level(logging.WARNING, logger=cli_serve.log.name):
        cli_serve._warn_if_open(listen, token, None)
    assert any("no --token-file" in r.getMessage() for r in caplog.records) is warned
