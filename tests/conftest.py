"""Fixtures shared by several test files. A test file's own fixture of the same name overrides these."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fedflow import Engine

try:
    from pg_support import fresh_database
    from test_cli_support import ServerPool
except ImportError:  # tests/ imported as a package
    from tests.pg_support import fresh_database
    from tests.test_cli_support import ServerPool


@pytest.fixture
def engine(fedflow_engine: Engine) -> Engine:
    """An in-memory Engine with a unique name, closed at teardown (the plugin's `fedflow_engine`)."""
    return fedflow_engine


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[ServerPool]:
    """A ServerPool in tmp_path whose servers are all killed at teardown."""
    servers = ServerPool(tmp_path)
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty database on the test PostgreSQL server (FEDFLOW_TEST_POSTGRES);
    the test fails, saying how to run it, when no server is set."""
    with fresh_database() as url:
        yield url
