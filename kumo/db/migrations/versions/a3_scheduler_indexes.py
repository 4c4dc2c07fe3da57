"""indexes the scheduler's pass and the fleet poll read by: hosts by provider, inventories by
class, pending instances by task state, pending tasks by state

Revision ID: a3_scheduler_indexes
Revises: a2_baremetal
"""

from __future__ import annotations

from alembic import op

revision = "a3_scheduler_indexes"
down_revision = "a2_baremetal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The pass reads the hosts of its candidate providers (was a scan of every host).
    op.create_index("ix_compute_hosts_provider", "compute_hosts", ["provider_id"])
    # The id range of providers holding a class: one index probe per class (was a scan of
    # every inventory row of the classes asked for).
    op.create_index("ix_inventories_class_provider", "inventories", ["resource_class", "provider_id"])
    # Each pass looks for the instances waiting to be scheduled (was a scan of every instance).
    op.create_index("ix_instances_task_state", "instances", ["task_state"])
    # The fleet poll (simulated fleets, conductors) asks which hosts have pending work at all.
    op.create_index("ix_tasks_state_host", "tasks", ["state", "host"])


def downgrade() -> None:
    op.drop_index("ix_tasks_state_host", table_name="tasks")
    op.drop_index("ix_instances_task_state", table_name="instances")
    op.drop_index("ix_inventories_class_provider", table_name="inventories")
    op.drop_index("ix_compute_hosts_provider", table_name="compute_hosts")
