"""compute_hosts at fillfactor 50 on PostgreSQL: heartbeats rewrite a row in its own page

Revision ID: a5_compute_hosts_fillfactor
Revises: a4_server_list_indexes
"""

from __future__ import annotations

from alembic import op

revision = "a5_compute_hosts_fillfactor"
down_revision = "a4_server_list_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every heartbeat rewrites its host's row (last_heartbeat), and a conductor keeps all of its
    # nodes' hosts up with one UPDATE of every such row. In full pages each new row version goes
    # to another page with an entry in each of the table's five indexes; with half of each page
    # free it stays on its page and no index is written (a heap-only tuple; docs/benchmarks.md,
    # "Conductor heartbeat"). Pages written from now on are filled to half; a database created
    # before this migration gets there as its rows are rewritten (VACUUM FULL to do it at once).
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE compute_hosts SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE compute_hosts RESET (fillfactor)")
