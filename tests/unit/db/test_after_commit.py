"""kumo.db.base.after_commit: a callback runs once its transaction commits, never for a
rolled-back transaction or savepoint (a counter of what was written counts it once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumo.db import Database
from kumo.db.base import after_commit


def test_runs_after_commit_only_for_what_was_kept(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    ran: list[str] = []
    try:
        with db.transaction() as session:
            after_commit(session, lambda: ran.append("kept"))
            try:
                with session.begin_nested():
                    after_commit(session, lambda: ran.append("savepoint rolled back"))
                    raise RuntimeError("undo the savepoint")
            except RuntimeError:
                pass
            with session.begin_nested():
                after_commit(session, lambda: ran.append("savepoint released"))
            assert ran == []  # nothing before the commit
        assert ran == ["kept", "savepoint released"]
        with pytest.raises(RuntimeError), db.transaction() as session:
            after_commit(session, lambda: ran.append("rolled back"))
            raise RuntimeError("undo all")
        with db.transaction() as session:
            pass
        assert ran == ["kept", "savepoint released"]
    finally:
        db.dispose()
