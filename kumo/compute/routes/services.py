"""os-services: list, enable/disable/force-down (by uuid from 2.53, by action before), delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import hosts, schemas
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion
from kumo.compute.views import services as views
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")


@router.get("/v2.1/os-services")
def list_services(
    host: str | None = None,
    binary: str | None = None,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.index(hosts.list_services(session, ctx, host=host, binary=binary), mv)


@router.put("/v2.1/os-services/{service_id}", openapi_extra=json_body(schemas.SERVICE_UPDATE))
def update_service(
    service_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    ctx.require_admin()
    if mv.before(views.UUID_VERSION):
        force_down = mv.at_least(views.FORCED_DOWN_VERSION)
        with rt.db.transaction() as session:
            return {
                "service": hosts.legacy_update(session, ctx, service_id, body, force_down_allowed=force_down)
            }
    change = hosts.parse_service_update(body)
    with rt.db.transaction() as session:
        return views.show(hosts.update_service(session, ctx, service_id, change), mv)


@router.delete("/v2.1/os-services/{service_id}")
def delete_service(
    service_id: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> Response:
    with rt.db.transaction() as session:
        hosts.delete_service(session, ctx, service_id, uuid_ids=mv.at_least(views.UUID_VERSION))
    return Response(status_code=204)
