"""GET /os-migrations (admin) and GET /servers/{id}/migrations: reads of the migration
records kumo.compute.migrations writes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import params, servers
from kumo.compute.microversion import Microversion
from kumo.compute.models import Migration
from kumo.errors import BadRequest, NotFound

# A live migration still under way (Nova's in-progress statuses for GET /servers/{id}/migrations).
IN_PROGRESS = ("queued", "preparing", "running")
# Nova's os-migrations filters; hidden_host is read and has no effect (kumo hides no migration).
_FILTERS = ("hidden_host", "host", "status", "instance_uuid", "source_compute", "migration_type")
_OWNERS = ("user_id", "project_id")  # 2.80


@dataclass(frozen=True)
class MigrationQuery:
    """`limit` is the page size from 2.59 (Nova's max_limit when none is asked), else None;
    `params` the query's known parameters (the last value of each), for the next link."""

    filters: dict[str, str]
    limit: int | None = None
    marker: str | None = None
    changes_since: dt.datetime | None = None
    changes_before: dt.datetime | None = None
    params: dict[str, str] = field(default_factory=dict)


def parse_query(items: list[tuple[str, str]], version: Microversion) -> MigrationQuery:
    """os-migrations' query as Nova's schemas of the version read it. Before 2.59 anything it
    does not know is ignored (limit, marker and changes-since too); from 2.59 an unknown
    parameter is a 400, and limit, marker and changes-since are read; changes-before from 2.66
    (after changes-since is a 400); user_id and project_id from 2.80."""
    paged = version.at_least("2.59")
    known = set(_FILTERS)
    if paged:
        known |= {"limit", "marker", "changes-since"}
    if version.at_least("2.66"):
        known.add("changes-before")
    if version.at_least("2.80"):
        known |= set(_OWNERS)
    last: dict[str, str] = {}
    for key, value in items:
        if key in known:
            last[key] = value
        elif paged:
            raise BadRequest(
                f"Invalid input for query parameters {key}. Additional properties are not allowed."
            )
    filters = {k: v for k, v in last.items() if k in _FILTERS or k in _OWNERS}
    if not paged:
        return MigrationQuery(filters)
    page = params.page(last.get("limit"), last.get("marker"))
    since = params.time_param(last, "changes-since")
    before = params.time_param(last, "changes-before")
    if since is not None and before is not None and since > before:
        raise BadRequest("The value of changes-since must be less than or equal to changes-before.")
    limit = params.MAX_LIMIT if page.limit is None else page.limit
    return MigrationQuery(filters, limit, page.marker, since, before, last)


def list_all(session: Session, ctx: RequestContext, query: MigrationQuery) -> list[Migration]:
    """Admin: every migration, newest first, filtered as Nova filters (host: either end;
    changes-since/-before: updated_at at or after/before), one page from 2.59."""
    ctx.require_admin()
    statement = select(Migration).order_by(Migration.created_at.desc(), Migration.id.desc())
    f = query.filters
    if "host" in f:
        statement = statement.where(
            (Migration.source_compute == f["host"]) | (Migration.dest_compute == f["host"])
        )
    for key in ("status", "instance_uuid", "source_compute", "migration_type", *_OWNERS):
        if key in f:
            statement = statement.where(getattr(Migration, key) == f[key])
    if query.changes_since is not None:
        statement = statement.where(Migration.updated_at >= query.changes_since)
    if query.changes_before is not None:
        statement = statement.where(Migration.updated_at <= query.changes_before)
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
