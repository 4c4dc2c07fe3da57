"""indexes a server list page reads by: instances by (project_id, created_at, id) and by
(created_at, id)

Revision ID: a4_server_list_indexes
Revises: a3_scheduler_indexes
"""

from __future__ import annotations

from alembic import op

revision = "a4_server_list_indexes"
down_revision = "a3_scheduler_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A page in the default order (created_at desc, id desc) and a keyset page after a marker
    # ((created_at, id) < (…)) are one index range: a project's own servers, and every project's
    # (all_tenants: otherwise a sort of every instance). The old
    # (project_id, created_at) index is the new one's prefix.
    op.drop_index("ix_instances_project_created", table_name="instances")
    op.create_index("ix_instances_project_created_id", "instances", ["project_id", "created_at", "id"])
    op.create_index("ix_instances_created_id", "instances", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_instances_created_id", table_name="instances")
    op.drop_index("ix_instances_project_created_id", table_name="instances")
    op.create_index("ix_instances_project_created", "instances", ["project_id", "created_at"])
