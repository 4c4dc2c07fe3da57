"""os-quota-sets, os-quota-class-sets and /limits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import quotas, schemas
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion
from kumo.compute.views import quotas as views
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")


@router.get("/v2.1/os-quota-sets/{project_id}")
def show_quotas(
    project_id: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.quota_set(quotas.show(session, ctx, project_id), mv, project_id)


@router.get("/v2.1/os-quota-sets/{project_id}/detail")
def show_quota_detail(
    project_id: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.quota_set_detail(quotas.detail(session, ctx, project_id), mv, project_id)


@router.get("/v2.1/os-quota-sets/{project_id}/defaults")
def show_quota_defaults(
    project_id: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.quota_set(quotas.show_defaults(session, ctx, project_id), mv, project_id)


@router.put("/v2.1/os-quota-sets/{project_id}", openapi_extra=json_body(schemas.QUOTA_SET_UPDATE))
def update_quotas(
    project_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    ctx.require_admin()
    change = quotas.parse_update(body, quotas.visible_resources(mv))
    with rt.db.transaction() as session:
        return views.quota_set(quotas.update(session, ctx, project_id, change), mv, None)


@router.delete("/v2.1/os-quota-sets/{project_id}")
def revert_quotas(
    project_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        quotas.revert(session, ctx, project_id)
    return Response(status_code=202)


@router.get("/v2.1/os-quota-class-sets/{class_name}")
def show_quota_class(
    class_name: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.quota_class_set(quotas.show_class(session, ctx, class_name), mv, class_name)


@router.put("/v2.1/os-quota-class-sets/{class_name}", openapi_extra=json_body(schemas.QUOTA_CLASS_SET_UPDATE))
def update_quota_class(
    class_name: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    ctx.require_admin()
    change = quotas.parse_update(body, quotas.class_resources(mv), key="quota_class_set")
    with rt.db.transaction() as session:
        return views.quota_class_set(quotas.update_class(session, ctx, class_name, change), mv, None)


@router.get("/v2.1/limits")
def show_limits(
    tenant_id: str | None = None,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    with rt.db.read() as session:
        values, used = quotas.limits_for(session, ctx, tenant_id)
    return views.limits(values, used, mv)
