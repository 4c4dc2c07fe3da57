"""failure-domain labels on hosts (rack, region) and baremetal stock requests

Revision ID: a1_failure_domains
Revises: e128595ef2aa
"""

from __future__ import annotations

revision = "a1_failure_domains"
down_revision = "e128595ef2aa"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
