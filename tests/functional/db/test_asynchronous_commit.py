"""Asynchronous commit (kumo.db.base: Database.transaction(durable=False), used by scheduling
passes) and the rule that makes it safe: nothing such a commit wrote leaves the database before
it is durable (durable_before_it_leaves, called by the agents' task polls)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from kumo.agent import service
from kumo.db import Database
from kumo.db.migrate import upgrade
from kumo.work import queue
from kumo.work.kinds import SpawnPayload, TaskKind
from kumo.work.models import Task


@pytest.fixture
def pg_db(pg_database_url: str) -> Iterator[Database]:
    upgrade(pg_database_url)
    db = Database(pg_database_url)
    try:
        yield db
    finally:
        db.dispose()


def _setting(session: Session) -> str:
    return str(session.execute(text("SHOW synchronous_commit")).scalar_one())


def _has_transaction_id(session: Session) -> bool:
    return session.execute(text("SELECT pg_current_xact_id_if_assigned()")).scalar_one() is not None


def test_only_a_transaction_that_need_not_be_durable_commits_asynchronously(pg_db: Database) -> None:
    for _ in range(3):  # pooled connections keep their setting: each pool only its own
        with pg_db.transaction(durable=False) as s:
            assert _setting(s) == "off"
        with pg_db.transaction() as s:
            assert _setting(s) == "on"
        with pg_db.read() as s:
            assert _setting(s) == "on"


def test_an_asynchronous_commit_is_visible_at_once(pg_db: Database) -> None:
    with pg_db.transaction(durable=False) as s:
        task = queue.enqueue(s, "hv-1", TaskKind.SPAWN, None, SpawnPayload(None, {}), "req-1")
    with pg_db.read() as s:
        assert s.scalar(select(Task.state).where(Task.id == task.id)) == "pending"


def test_a_task_poll_that_hands_out_work_makes_it_durable_first(pg_db: Database) -> None:
    with pg_db.transaction(durable=False) as s:
        task = queue.enqueue(s, "hv-1", TaskKind.SPAWN, None, SpawnPayload(None, {}), "req-1")
    with pg_db.read() as s:
        written_up_to = s.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar_one()
    with pg_db.read() as s:
        handed = service.pending_work(s, "hv-1", busy=[])
        assert [t.id for t in handed] == [task.id]
        # Its commit is a commit record of its own, synchronous: it waits for the WAL flush.
        assert _has_transaction_id(s)
        assert _setting(s) == "on"
    with pg_db.read() as s:
        flushed = s.execute(
            text("SELECT pg_current_wal_flush_lsn() >= CAST(:lsn AS pg_lsn)"), {"lsn": written_up_to}
        ).scalar_one()
    assert flushed


def test_a_fleet_poll_that_hands_out_work_makes_it_durable_first(pg_db: Database) -> None:
    with pg_db.transaction(durable=False) as s:
        task = queue.enqueue(s, "bm-1", TaskKind.SPAWN, None, SpawnPayload(None, {}), "req-1")
    with pg_db.read() as s:
        handed = service.pending_fleet_work(s, {"bm-1", "bm-2"}, busy=[])
        assert [t.id for t in handed] == [task.id]
        assert _has_transaction_id(s)


def test_a_poll_that_finds_nothing_costs_no_flush(pg_db: Database) -> None:
    with pg_db.transaction(durable=False) as s:
        task = queue.enqueue(s, "hv-1", TaskKind.SPAWN, None, SpawnPayload(None, {}), "req-1")
    with pg_db.read() as s:
        assert service.pending_work(s, "hv-2", busy=[]) == []
        assert service.pending_work(s, "hv-1", busy=[task.id]) == []
        assert service.pending_fleet_work(s, {"hv-2"}, busy=[]) == []
        assert not _has_transaction_id(s)


def test_on_sqlite_every_commit_is_durable_and_a_poll_stays_read_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kumo.db'}"
    upgrade(url)
    db = Database(url)
    try:
        with db.transaction(durable=False) as s:
            task = queue.enqueue(s, "hv-1", TaskKind.SPAWN, None, SpawnPayload(None, {}), "req-1")
            assert s.execute(text("PRAGMA synchronous")).scalar_one() == 1  # NORMAL, as always
        with db.read() as s:  # query_only: a write here would fail
            assert [t.id for t in service.pending_work(s, "hv-1", busy=[])] == [task.id]
    finally:
        db.dispose()
