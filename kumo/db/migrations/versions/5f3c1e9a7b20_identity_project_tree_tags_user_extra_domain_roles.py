"""identity: project parents and tags, users' extra attributes, domain-specific roles

Revision ID: 5f3c1e9a7b20
Revises: 7d7f2e92d491
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
    # Before names are unique again: the domain-specific roles go (their names may repeat a
    # global role's or one another's), with their grants and the inference rules naming them
    # (deleted explicitly: SQLite enforces no ON DELETE CASCADE without its foreign_keys pragma).
    local = "SELECT id FROM roles WHERE domain_id <> ''"
    op.execute(f"DELETE FROM grants WHERE role_id IN ({local})")
    op.execute(f"DELETE FROM implied_roles WHERE prior_role_id IN ({local}) OR implied_role_id IN ({local})")
    op.execute("DELETE FROM roles WHERE domain_id <> ''")
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
