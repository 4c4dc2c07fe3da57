"""`kumo.db.wake_after_commit`: the keys a transaction notes are published once it commits (never
before it is visible), once each, and not at all when it rolls back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from kumo.db import Database, wake_after_commit


def test_keys_are_published_after_the_commit_and_dropped_on_rollback(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'wake.db'}")
    published: list[tuple[str, int]] = []

    def publish(key: str) -> None:  # what it sees when woken: the committed row
        with db.read() as session:
            published.append((key, int(session.scalar(text("SELECT count(*) FROM t")) or 0)))

    with db.transaction() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
    db.publish = publish
    with db.transaction() as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        wake_after_commit(session, "host:b")
        wake_after_commit(session, "host:a")
        wake_after_commit(session, "host:b")
        assert published == []
    assert published == [("host:a", 1), ("host:b", 1)]  # after the commit, each once

    published.clear()
    with pytest.raises(RuntimeError), db.transaction() as session:
        wake_after_commit(session, "host:c")
        raise RuntimeError("rolled back")
    with db.transaction() as session:
        session.execute(text("INSERT INTO t VALUES (2)"))
    assert published == []  # the rolled-back transaction's key is gone with it

    db.publish = None  # a bare Database (a migration): nothing to publish, nothing fails
    with db.transaction() as session:
        wake_after_commit(session, "host:d")
    db.engine.dispose()
