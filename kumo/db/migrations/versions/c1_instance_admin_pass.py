"""instances.admin_pass: the server's admin password, for its metadata (meta_data.json's
admin_pass, the config drive's); never shown by the compute API after the create response.

Revision ID: c1_instance_admin_pass
Revises: 404d7d59555c
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c1_instance_admin_pass"
down_revision = "404d7d59555c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("admin_pass", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("admin_pass")
