"""Fresh PostgreSQL databases for the tests, on the server `make test` starts (tests/pg_server.py).

The server's URL comes from FEDFLOW_TEST_POSTGRES. Without it a PostgreSQL test FAILS, saying
how to run it: no test is skipped for want of a server.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

ENV_VAR = "FEDFLOW_TEST_POSTGRES"


def server_url() -> str:
    """The test server's URL; fails the test when it is not set."""
    url = os.environ.get(ENV_VAR)
    if not url:
        pytest.fail(f"{ENV_VAR} is not set: run the PostgreSQL tests with `make test`, or wrap pytest as "
                    f"`python tests/pg_server.py -- python -m pytest ...` (it starts a throwaway server)",
                    pytrace=False)
    return url


def with_database(url: str, dbname: str) -> str:
    """`url` pointing at database `dbname` on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, ""))


@contextlib.contextmanager
def fresh_database(prefix: str = "fedflow_test") -> Iterator[str]:
    """A new empty database on the test server, its URL for the block; dropped afterwards."""
    import psycopg

    base = server_url()
    dbname = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    try:
        yield with_database(base, dbname)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
