"""os-aggregates: CRUD plus the add_host / remove_host / set_metadata actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import aggregates, image_precache, schemas
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion, require
from kumo.compute.precache import service as precache
from kumo.compute.views import aggregates as views
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")


@router.get("/v2.1/os-aggregates")
def list_aggregates(
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.index(aggregates.list_aggregates(session, ctx), mv)


@router.post("/v2.1/os-aggregates", openapi_extra=json_body(schemas.AGGREGATE_CREATE))
def create_aggregate(
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    ctx.require_admin()
    change = aggregates.parse_create(body)
    with rt.db.transaction() as session:
        return views.created(aggregates.create_aggregate(session, ctx, change), mv)


@router.get("/v2.1/os-aggregates/{aggregate_id}")
def show_aggregate(
    aggregate_id: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.show(aggregates.get_aggregate(session, ctx, aggregate_id), mv)


@router.put("/v2.1/os-aggregates/{aggregate_id}", openapi_extra=json_body(schemas.AGGREGATE_UPDATE))
def update_aggregate(
    aggregate_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    ctx.require_admin()
    change = aggregates.parse_update(body)
    with rt.db.transaction() as session:
        return views.show(aggregates.update_aggregate(session, ctx, aggregate_id, change), mv)


@router.delete("/v2.1/os-aggregates/{aggregate_id}")
def delete_aggregate(
    aggregate_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        aggregates.delete_aggregate(session, ctx, aggregate_id)
    return Response(status_code=200)


@router.post("/v2.1/os-aggregates/{aggregate_id}/action", openapi_extra=json_body(schemas.AGGREGATE_ACTION))
def aggregate_action(
    aggregate_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    ctx.require_admin()
    action = aggregates.parse_action(body)
    with rt.db.transaction() as session:
        if action.name == "add_host":
            info = aggregates.add_host(session, ctx, aggregate_id, action.host or "")
        elif action.name == "remove_host":
            info = aggregates.remove_host(session, ctx, aggregate_id, action.host or "")
        else:
            info = aggregates.set_metadata(session, ctx, aggregate_id, action.metadata or {})
        return views.show(info, mv)


@router.post("/v2.1/os-aggregates/{aggregate_id}/images", openapi_extra=json_body(schemas.AGGREGATE_IMAGES))
def cache_images(
    aggregate_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> Response:
    """2.81: ask the aggregate's hosts to cache images; 202 without a body, as Nova, plus the
    precache job's id in two headers (see kumo/compute/image_precache.py)."""
    require(mv, image_precache.VERSION)
    image_ids = image_precache.parse(body)
    with rt.db.transaction() as session:
        job_id = image_precache.request(session, ctx, aggregate_id, image_ids).job_id
    return Response(status_code=202, headers=precache.location_headers(job_id))
