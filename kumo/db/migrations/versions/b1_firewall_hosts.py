"""firewall_hosts: compute hosts that enforce security groups, with their firewall generation

Revision ID: b1_firewall_hosts
Revises: 223b7e0e2767
Create Date: 2026-12-07 06:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b1_firewall_hosts"
down_revision = "223b7e0e2767"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "firewall_hosts",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("applied_generation", sa.Integer(), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_firewall_hosts")),
    )


def downgrade() -> None:
    op.drop_table("firewall_hosts")
