"""subnets.ip_cursor: the last address IPAM chose itself in a subnet (next-fit allocation)

Revision ID: b1_subnets_ip_cursor
Revises: c1_instance_admin_pass
Create Date: 2026-12-07 06:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b1_subnets_ip_cursor"
down_revision = "c1_instance_admin_pass"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subnets") as batch:
        batch.add_column(sa.Column("ip_cursor", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subnets") as batch:
        batch.drop_column("ip_cursor")
