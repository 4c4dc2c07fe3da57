"""os-server-groups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import schemas, server_groups
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion
from kumo.compute.views import server_groups as views
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")


@router.get("/v2.1/os-server-groups")
def list_server_groups(
    all_projects: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    query = server_groups.parse_list_query(all_projects, limit, offset)
    with rt.db.read() as session:
        return views.index(server_groups.list_groups(session, ctx, query), mv)


@router.post("/v2.1/os-server-groups", openapi_extra=json_body(schemas.SERVER_GROUP_CREATE))
def create_server_group(
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    ctx.require_writer()
    req = server_groups.parse_create(body, mv)
    with rt.db.transaction() as session:
        return views.show(server_groups.create_group(session, ctx, req), mv)


@router.get("/v2.1/os-server-groups/{group_id}")
def show_server_group(
    group_id: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.show(server_groups.get_group(session, ctx, group_id), mv)


@router.delete("/v2.1/os-server-groups/{group_id}")
def delete_server_group(
    group_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        server_groups.delete_group(session, ctx, group_id)
    return Response(status_code=204)
