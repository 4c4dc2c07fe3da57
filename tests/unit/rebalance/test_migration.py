"""Migration 361c3d824937 builds exactly the rebalancer's tables the models describe; 5e1f0c7a9b2d
allows one running action plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from kumo.db.migrate import alembic_config, upgrade
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


# SQLite cannot reflect the one-running-plan index (an expression): the next test checks it.
@pytest.mark.filterwarnings("ignore:.*expression-based index uq_watcher_action_plans_one_running")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
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


def test_one_running_plan_index_requeues_extra_pending_plans_and_downgrades(tmp_path: Path) -> None:
    """Migration 5e1f0c7a9b2d: plans an older kumo queued PENDING behind a running one go back to
    RECOMMENDED, the partial unique index then refuses a second running plan; downgrade drops it."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, "a725fdbca3d3")
    engine = create_engine(url)
    insert = text(
        "INSERT INTO watcher_action_plans (uuid, audit_uuid, strategy, state, efficacy, skipped, created_at) "
        "VALUES (:uuid, 'a', 's', :state, '{}', '[]', '2026-12-07 12:00:00')"
    )
    with engine.begin() as conn:
        for uuid, state in (("p1", "PENDING"), ("p2", "ONGOING"), ("p3", "PENDING"), ("p4", "SUCCEEDED")):
            conn.execute(insert, {"uuid": uuid, "state": state})
    upgrade(url, "5e1f0c7a9b2d")
    with engine.connect() as conn:
        states = dict(conn.execute(text("SELECT uuid, state FROM watcher_action_plans")).all())
    assert states == {"p1": "RECOMMENDED", "p2": "ONGOING", "p3": "RECOMMENDED", "p4": "SUCCEEDED"}
    with engine.begin() as conn:
        conn.execute(insert, {"uuid": "p5", "state": "RECOMMENDED"})  # not running: no limit
    try:
        with engine.begin() as conn:
            conn.execute(insert, {"uuid": "p6", "state": "PENDING"})
        raise AssertionError("a second running plan was accepted")
    except IntegrityError:
        pass
    command.downgrade(alembic_config(url), "a725fdbca3d3")
    with engine.begin() as conn:
        conn.execute(insert, {"uuid": "p7", "state": "PENDING"})  # no index any more
        names = [r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))]
    assert "uq_watcher_action_plans_one_running" not in names
    engine.dispose()
