"""baremetal nodes and conductors

Revision ID: a2_baremetal
Revises: a1_failure_domains
"""

from __future__ import annotations

revision = "a2_baremetal"
down_revision = "a1_failure_domains"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
