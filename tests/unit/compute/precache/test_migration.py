"""Precache migrations: rows count their origin attempts and are unique per (job, host, image)
(a3f1c9d27e55); hosts' cache reports and rows' failed peers (b7e2d4c81f03); the models match
the migrated schema; one head; downgrades work."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from kumo.db.migrate import alembic_config, upgrade
from kumo.schema import metadata

TABLES = ("precache_jobs", "precache_hosts", "image_peers", "host_image_caches")


def test_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1


def test_models_match_and_rows_are_unique(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diffs if any(t in repr(d) for t in TABLES)] == []
    row = (
        "INSERT INTO precache_hosts (job_id, host, image_id, state, attempts, bytes, bytes_from_origin,"
        " bytes_from_peers, refused) VALUES ('j', 'h', 'i', 'queued', 0, 0, 0, 0, '[]')"
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO precache_jobs (id, image_ids, state, start_time)"
                " VALUES ('j', '[]', 'running', '2026-12-07 12:00:00')"
            )
        )
        conn.execute(text(row))
        assert conn.execute(text("SELECT origin_attempts FROM precache_hosts")).scalar() == 0
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(row))
    engine.dispose()
    command.downgrade(alembic_config(url), "d4a28c62ed0b")


def test_host_image_caches_and_failed_peers_come_and_go(tmp_path: Path) -> None:
    """Migration b7e2d4c81f03: the hosts' cache reports and the rows' failed peers; its
    downgrade drops both."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO host_image_caches (host, image_ids, reported_at)"
                " VALUES ('h', '[\"i\"]', '2026-12-07 12:00:00')"
            )
        )
        assert conn.execute(text("SELECT failed_peers FROM precache_hosts")).all() == []
    command.downgrade(alembic_config(url), "a3f1c9d27e55")
    with engine.connect() as conn:
        tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
        columns = {r[1] for r in conn.execute(text("PRAGMA table_info(precache_hosts)"))}
    assert "host_image_caches" not in tables and "failed_peers" not in columns
    engine.dispose()


@pytest.mark.postgres
def test_host_image_caches_and_failed_peers_come_and_go_on_postgresql(pg_database_url: str) -> None:
    """b7e2d4c81f03 on PostgreSQL: the models match the migrated tables; down and up again."""
    upgrade(pg_database_url)
    engine = create_engine(pg_database_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        assert [d for d in diffs if any(t in repr(d) for t in TABLES)] == []
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO host_image_caches (host, image_ids, reported_at)"
                    " VALUES ('h', '[\"i\"]', '2026-12-07 12:00:00')"
                )
            )
        command.downgrade(alembic_config(pg_database_url), "a3f1c9d27e55")
        with engine.connect() as conn:
            tables = set(
                conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                ).scalars()
            )
            columns = set(
                conn.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns"
                        " WHERE table_name = 'precache_hosts'"
                    )
                ).scalars()
            )
        assert "host_image_caches" not in tables and "failed_peers" not in columns
        assert "origin_attempts" in columns  # the revision below is intact
        upgrade(pg_database_url)  # and up again
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM host_image_caches")).scalar() == 0
    finally:
        engine.dispose()
