"""baremetal nodes and conductors

Revision ID: a2_baremetal
Revises: a1_failure_domains
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a2_baremetal"
down_revision = "a1_failure_domains"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "baremetal_nodes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("driver", sa.String(length=64), nullable=False),
        sa.Column("driver_info", sa.JSON(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("instance_info", sa.JSON(), nullable=False),
        sa.Column("resource_class", sa.String(length=80), nullable=True),
        sa.Column("provision_state", sa.String(length=32), nullable=False),
        sa.Column("target_provision_state", sa.String(length=32), nullable=True),
        sa.Column("provision_updated_at", sa.DateTime(), nullable=True),
        sa.Column("power_state", sa.String(length=16), nullable=True),
        sa.Column("target_power_state", sa.String(length=16), nullable=True),
        sa.Column("maintenance", sa.Boolean(), nullable=False),
        sa.Column("maintenance_reason", sa.Text(), nullable=True),
        sa.Column("fault", sa.String(length=64), nullable=True),
        sa.Column("power_sync_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("instance_uuid", sa.String(length=36), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("lessee", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baremetal_nodes")),
        sa.UniqueConstraint("instance_uuid", name=op.f("uq_baremetal_nodes_instance_uuid")),
        sa.UniqueConstraint("name", name=op.f("uq_baremetal_nodes_name")),
        sa.UniqueConstraint("uuid", name=op.f("uq_baremetal_nodes_uuid")),
    )
    op.create_table(
        "baremetal_conductors",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("last_heartbeat", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_baremetal_conductors")),
    )


def downgrade() -> None:
    op.drop_table("baremetal_conductors")
    op.drop_table("baremetal_nodes")
