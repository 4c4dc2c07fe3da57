"""identity: project parents and tags, users' extra attributes, domain-specific roles

Revision ID: 5f3c1e9a7b20
Revises: a725fdbca3d3
Create Date: 2026-12-07 12:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5f3c1e9a7b20"
down_revision = "7d7f2e92d491"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.create_index(batch_op.f("ix_projects_parent_id"), ["parent_id"], unique=False)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extra", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("domain_id", sa.String(length=64), nullable=False, server_default=""))
        # the same name (the naming convention's first column), now over (name, domain_id)
        batch_op.drop_constraint("uq_roles_name", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_roles_name"), ["name", "domain_id"])


def downgrade() -> None:
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.drop_constraint("uq_roles_name", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_roles_name"), ["name"])
        batch_op.drop_column("domain_id")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("extra")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_projects_parent_id"))
        batch_op.drop_column("tags")
        batch_op.drop_column("parent_id")
