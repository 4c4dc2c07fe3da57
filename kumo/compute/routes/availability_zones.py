"""os-availability-zone: zones for everyone, the detail (hosts, services) for admins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.compute import aggregates, hosts
from kumo.compute.views import availability_zones as views
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")


@router.get("/v2.1/os-availability-zone")
def list_zones(_ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.index(aggregates.list_zones(session))


@router.get("/v2.1/os-availability-zone/detail")
def list_zones_detail(
    ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    ctx.require_admin()
    with rt.db.read() as session:
        return views.detail(aggregates.list_zones(session), hosts.list_services(session, ctx))
