"""os-hosts (removed at 2.43: 404 from 2.43 on, as Nova): list, show, update, power actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import legacy_hosts, schemas
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion, removed_at
from kumo.compute.views import legacy_hosts as views
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")

REMOVED = "2.43"


@router.get("/v2.1/os-hosts")
def list_hosts(
    zone: str | None = None,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    removed_at(mv, REMOVED)
    with rt.db.read() as session:
        return views.index(legacy_hosts.list_hosts(session, ctx, zone))


@router.get("/v2.1/os-hosts/{host_name}")
def show_host(
    host_name: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    removed_at(mv, REMOVED)
    with rt.db.read() as session:
        return views.show(legacy_hosts.show_host(session, ctx, host_name))


@router.put("/v2.1/os-hosts/{host_name}", openapi_extra=json_body(schemas.HOST_UPDATE))
def update_host(
    host_name: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, str]:
    removed_at(mv, REMOVED)
    change = legacy_hosts.parse_update(body)
    with rt.db.transaction() as session:
        return legacy_hosts.update_host(session, ctx, host_name, change)


@router.get("/v2.1/os-hosts/{host_name}/{action}")
def host_power_action(
    host_name: str,
    action: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, str]:
    removed_at(mv, REMOVED)
    with rt.db.read() as session:
        legacy_hosts.power_action(session, ctx, host_name, action)
    return {}
