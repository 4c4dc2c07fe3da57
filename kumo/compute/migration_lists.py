"""GET /os-migrations (admin) and GET /servers/{id}/migrations: reads of the migration
records kumo.compute.migrations writes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import servers
from kumo.compute.models import Migration
from kumo.errors import BadRequest, NotFound
from kumo.validation import MAX_INT, int_text

# A live migration still under way (Nova's in-progress statuses for GET /servers/{id}/migrations).
IN_PROGRESS = ("queued", "preparing", "running")
_FILTERS = ("host", "status", "instance_uuid", "source_compute", "migration_type", "user_id", "project_id")


@dataclass(frozen=True)
class MigrationQuery:
    filters: dict[str, str]
    limit: int | None
    marker: str | None


def parse_query(params: list[tuple[str, str]]) -> MigrationQuery:
    """os-migrations' query: filters (the last value of each), limit and marker (2.59)."""
    filters: dict[str, str] = {}
    limit: int | None = None
    marker: str | None = None
    for key, value in params:
        if key in _FILTERS:
            filters[key] = value
        elif key == "limit":
            parsed = int_text(value)
            if parsed is None or parsed < 0 or parsed > MAX_INT:
                raise BadRequest(f"Invalid input for query parameters limit. Value: {value}.")
            limit = parsed
        elif key == "marker":
            marker = value
    return MigrationQuery(filters, limit, marker)


def list_all(session: Session, ctx: RequestContext, query: MigrationQuery) -> list[Migration]:
    """Admin: every migration, newest first, filtered as Nova filters (host: either end)."""
    ctx.require_admin()
    statement = select(Migration).order_by(Migration.created_at.desc(), Migration.id.desc())
    f = query.filters
    if "host" in f:
        statement = statement.where(
            (Migration.source_compute == f["host"]) | (Migration.dest_compute == f["host"])
        )
    for key in ("status", "instance_uuid", "source_compute", "migration_type", "user_id", "project_id"):
        if key in f:
            statement = statement.where(getattr(Migration, key) == f[key])
    rows = list(session.scalars(statement))
    if query.marker is not None:
        ids = [row.uuid for row in rows]
        if query.marker not in ids:
            raise BadRequest(f"Marker {query.marker} could not be found.")
        rows = rows[ids.index(query.marker) + 1 :]
    return rows if query.limit is None else rows[: query.limit]


def in_progress_of(session: Session, ctx: RequestContext, server_id: str) -> list[Migration]:
    """GET /servers/{id}/migrations: the server's live migrations under way (Nova's rule)."""
    ctx.require_admin()
    instance = servers.get(session, ctx, server_id)
    statement = (
        select(Migration)
        .where(
            Migration.instance_uuid == instance.uuid,
            Migration.migration_type == "live-migration",
            Migration.status.in_(IN_PROGRESS),
        )
        .order_by(Migration.id)
    )
    return list(session.scalars(statement))


def in_progress_one(session: Session, ctx: RequestContext, server_id: str, migration_id: str) -> Migration:
    """GET /servers/{id}/migrations/{migration_id}: one of in_progress_of, else NotFound."""
    for row in in_progress_of(session, ctx, server_id):
        if str(row.id) == migration_id:
            return row
    raise NotFound(f"In-progress live migration {migration_id} is not found for server {server_id}.")
