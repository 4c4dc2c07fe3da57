"""precache: origin attempts per row, one row per (job, host, image)

Revision ID: a3f1c9d27e55
Revises: d4a28c62ed0b
Create Date: 2026-12-07 13:58:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a3f1c9d27e55"
down_revision = "d4a28c62ed0b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("precache_hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin_attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_unique_constraint(op.f("uq_precache_hosts_job_id"), ["job_id", "host", "image_id"])


def downgrade() -> None:
    with op.batch_alter_table("precache_hosts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_precache_hosts_job_id"), type_="unique")
        batch_op.drop_column("origin_attempts")
