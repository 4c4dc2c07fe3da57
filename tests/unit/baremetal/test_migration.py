"""Migrations a2 and 223b7e0e2767 build exactly the baremetal tables the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from kumo.db.migrate import upgrade
from kumo.schema import metadata

TABLES = {"baremetal_nodes", "baremetal_conductors", "baremetal_ports"}


def _ours(diff: object) -> bool:
    """Does one autogenerate difference concern a baremetal table?"""
    text = repr(diff)
    return any(t in text for t in TABLES)


def test_models_match_the_migration(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        tables = set(engine.dialect.get_table_names(conn))
    engine.dispose()
    assert TABLES <= tables
    assert [d for d in diffs if _ours(d)] == []


def test_downgrade_removes_the_tables(tmp_path: Path) -> None:
    from alembic import command

    from kumo.db.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "a1_failure_domains")
    engine = create_engine(url)
    with engine.connect() as conn:
        assert not TABLES & set(engine.dialect.get_table_names(conn))
    engine.dispose()
