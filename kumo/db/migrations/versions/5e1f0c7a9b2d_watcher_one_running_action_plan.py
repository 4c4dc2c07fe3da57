"""watcher: one running action plan per cloud (partial unique index)

Revision ID: 5e1f0c7a9b2d
Revises: a725fdbca3d3
Create Date: 2026-12-07 13:00:00.000000

At most one action plan is PENDING, ONGOING or CANCELLING: a unique index over a constant,
partial on those states. Two workers starting (or promoting) two plans at once on PostgreSQL
both pass their "none is running" check (READ COMMITTED); the index makes the second writer's
UPDATE fail, which the service turns into a 409. Plans queued PENDING behind a running one by
an older kumo go back to RECOMMENDED first (to be started again).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5e1f0c7a9b2d"
down_revision = "a725fdbca3d3"
branch_labels = None
depends_on = None

RUNNING = "state IN ('PENDING', 'ONGOING', 'CANCELLING')"


def upgrade() -> None:
    conn = op.get_bind()
    running = conn.execute(
        sa.text(f"SELECT id, state FROM watcher_action_plans WHERE {RUNNING} ORDER BY id")
    ).all()
    if running:  # keep the one that runs (else the oldest PENDING); requeue the others
        keep = next((row.id for row in running if row.state != "PENDING"), running[0].id)
        for row in running:
            if row.state == "PENDING" and row.id != keep:
                conn.execute(
                    sa.text("UPDATE watcher_action_plans SET state = 'RECOMMENDED' WHERE id = :id"),
                    {"id": row.id},
                )
    with op.batch_alter_table("watcher_action_plans", schema=None) as batch_op:
        batch_op.create_index(
            "uq_watcher_action_plans_one_running",
            [sa.text("(1)")],
            unique=True,
            postgresql_where=sa.text(RUNNING),
            sqlite_where=sa.text(RUNNING),
        )


def downgrade() -> None:
    with op.batch_alter_table("watcher_action_plans", schema=None) as batch_op:
        batch_op.drop_index("uq_watcher_action_plans_one_running")
