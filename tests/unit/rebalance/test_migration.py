"""Migration 361c3d824937 builds exactly the rebalancer's tables the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from kumo.db.migrate import upgrade
from kumo.rebalance import models
from kumo.schema import metadata

TABLES = {
    m.__tablename__
    for m in (
        models.VmCpuSignal,
        models.HostCpuSignal,
        models.RebalanceMove,
        models.AuditTemplate,
        models.Audit,
        models.ActionPlan,
        models.Action,
    )
}


def test_models_match_the_migration(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        tables = set(engine.dialect.get_table_names(conn))
    engine.dispose()
    assert TABLES <= tables
    assert [d for d in diffs if any(t in repr(d) for t in TABLES)] == []
