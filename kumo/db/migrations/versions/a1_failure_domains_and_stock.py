"""failure-domain labels on hosts (rack, region) and baremetal stock requests

Revision ID: a1_failure_domains
Revises: e128595ef2aa
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a1_failure_domains"
down_revision = "e128595ef2aa"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("compute_hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rack", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("region", sa.String(length=255), nullable=True))
    with op.batch_alter_table("server_groups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("generation", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "stock_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("flavor_id", sa.String(length=255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("aggregate", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_requests")),
        sa.UniqueConstraint("uuid", name=op.f("uq_stock_requests_uuid")),
    )
    with op.batch_alter_table("stock_requests", schema=None) as batch_op:
        batch_op.create_index("ix_stock_requests_project_status", ["project_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stock_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_requests_project_status")
    op.drop_table("stock_requests")
    with op.batch_alter_table("server_groups", schema=None) as batch_op:
        batch_op.drop_column("generation")
    with op.batch_alter_table("compute_hosts", schema=None) as batch_op:
        batch_op.drop_column("region")
        batch_op.drop_column("rack")
