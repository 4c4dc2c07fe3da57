"""Migration records (Nova's migrations): one per move of a server (cold or live migration,
evacuation), written when the move starts and moved through its statuses by the move's
outcome (kumo.compute.lifecycle's BeginMigration and MigrationStatus effects); read by
kumo.compute.migration_lists.

Invariants: records are never deleted with their server (Nova keeps them: an administrator's
history); a server's latest record is the one a status change applies to.
"""

from __future__ import annotations

import uuid as uuidlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.compute.models import Instance, Migration
from kumo.db import utcnow


def begin(
    session: Session,
    instance: Instance,
    migration_type: str,
    source: str | None,
    dest: str,
    status: str,
    user_id: str | None,
    project_id: str | None,
) -> Migration:
    row = Migration(
        uuid=str(uuidlib.uuid4()),
        instance_uuid=instance.uuid,
        migration_type=migration_type,
        status=status,
        source_compute=source,
        dest_compute=dest,
        user_id=user_id or instance.user_id,
        project_id=project_id or instance.project_id,
    )
    session.add(row)
    session.flush()
    return row


def set_status(session: Session, instance_uuid: str, status: str) -> None:
    """The server's latest migration reaches `status` (none: nothing to update)."""
    row = session.scalars(
        select(Migration)
        .where(Migration.instance_uuid == instance_uuid)
        .order_by(Migration.id.desc())
        .limit(1)
    ).first()
    if row is not None:
        row.status = status
        row.updated_at = utcnow()
