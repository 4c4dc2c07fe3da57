"""precache: the verified image ids each host's agent reports holding; the holders a row's
failed peer copies listed

Revision ID: b7e2d4c81f03
Revises: a3f1c9d27e55
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b7e2d4c81f03"
down_revision = "a3f1c9d27e55"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "host_image_caches",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("image_ids", sa.JSON(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_host_image_caches")),
    )
    with op.batch_alter_table("precache_hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_peers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("precache_hosts", schema=None) as batch_op:
        batch_op.drop_column("failed_peers")
    op.drop_table("host_image_caches")
