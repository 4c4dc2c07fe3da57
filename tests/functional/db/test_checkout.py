"""Pooled PostgreSQL connections are checked without a round trip (kumo.db.base.
_drop_if_server_hung_up): a healthy one is handed out as it is, one whose backend the server
terminated (a restart, an administrator) is replaced before any statement fails on it."""

from __future__ import annotations

import os
import resource
import time

import psycopg
import pytest
from sqlalchemy import text

from kumo.db import Database


def _backend_pid(db: Database) -> int:
    with db.transaction() as s:
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return int(pid)


def test_a_healthy_connection_is_reused(pg_database_url: str) -> None:
    db = Database(pg_database_url, pool_size=1)
    try:
        first = _backend_pid(db)
        assert [_backend_pid(db) for _ in range(5)] == [first] * 5
    finally:
        db.dispose()


def test_a_connection_whose_backend_was_terminated_is_replaced(pg_database_url: str) -> None:
    db = Database(pg_database_url, pool_size=1)
    try:
        doomed = _backend_pid(db)
        with psycopg.connect(
            pg_database_url.replace("postgresql+psycopg", "postgresql"), autocommit=True
        ) as c:
            assert c.execute("SELECT pg_terminate_backend(%s)", (doomed,)).fetchone() == (True,)
            deadline = time.monotonic() + 10
            while c.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (doomed,)).fetchone():
                assert time.monotonic() < deadline, "the backend did not go away"
                time.sleep(0.05)
        replacement = _backend_pid(db)  # no OperationalError: the pool dropped the dead one
        assert replacement != doomed
        assert _backend_pid(db) == replacement
    finally:
        db.dispose()


def test_a_connection_past_descriptor_1024_is_checked(pg_database_url: str) -> None:
    """A long-lived process holds many descriptors: select() refuses any past 1,024, so a
    check built on it failed every checkout once the pool's sockets got there."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1500
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard limit of open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    db = Database(pg_database_url, pool_size=1)
    try:
        first = _backend_pid(db)
        with db.engine.connect() as conn:
            assert conn.connection.dbapi_connection.fileno() > 1024  # type: ignore[union-attr]
        assert _backend_pid(db) == first
    finally:
        db.dispose()
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
