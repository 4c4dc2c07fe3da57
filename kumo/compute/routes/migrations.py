"""GET /v2.1/os-migrations (admin) and GET /v2.1/servers/{id}/migrations (admin, 2.23+)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.compute import migration_lists
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion
from kumo.compute.routes.servers import base_url
from kumo.compute.views import migrations as view
from kumo.errors import NotFound
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")


@router.get("/v2.1/os-migrations")
def list_migrations(
    request: Request,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    query = migration_lists.parse_query(list(request.query_params.multi_items()), version)
    with rt.db.read() as session:
        rows = migration_lists.list_all(session, ctx, query)
    return view.index(rows, version, base_url(request), query.limit, query.params)


@router.get("/v2.1/servers/{server_id}/migrations")
def list_server_migrations(
    server_id: str,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    if not version.at_least("2.23"):
        raise NotFound("The resource could not be found.")
    with rt.db.read() as session:
        rows = migration_lists.in_progress_of(session, ctx, server_id)
    return {"migrations": [view.of_server(row, version) for row in rows]}


@router.get("/v2.1/servers/{server_id}/migrations/{migration_id}")
def show_server_migration(
    server_id: str,
    migration_id: str,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    if not version.at_least("2.23"):
        raise NotFound("The resource could not be found.")
    with rt.db.read() as session:
        row = migration_lists.in_progress_one(session, ctx, server_id, migration_id)
    return {"migration": view.of_server(row, version)}
