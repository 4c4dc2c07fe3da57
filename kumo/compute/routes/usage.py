"""/v2.1/os-simple-tenant-usage (every project's usage, admin) and /{project_id} (one project's),
/v2.1/os-instance_usage_audit_log[/{before_timestamp}] (admin; no audit task runs in kumo),
and /v2.1/servers/{id}/os-volume_attachments (kumo attaches no volume: an empty list; attach,
update and detach are 404s once their bodies are checked)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import schemas, usage, usage_audit, volume_attachments
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion
from kumo.compute.params import MAX_LIMIT, lenient_bool, page
from kumo.compute.views import usage as views
from kumo.compute.views import usage_audit as audit_views
from kumo.errors import NotFound
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")
PAGING_VERSION = "2.40"


def _query(request: Request, mv: Microversion) -> usage.UsageQuery:
    params = request.query_params
    start, stop = usage.parse_period(params.get("start"), params.get("end"))
    # Nova reads only "1"; openstacksdk (so `openstack usage list`) sends "True": both are read.
    detailed = lenient_bool(params.get("detailed", "0"))
    if mv.before(PAGING_VERSION):
        return usage.UsageQuery(start, stop, detailed)
    paging = page(params.get("limit"), params.get("marker"))
    limit = MAX_LIMIT if paging.limit is None else paging.limit
    return usage.UsageQuery(start, stop, detailed, limit, paging.marker)


@router.get("/v2.1/os-simple-tenant-usage", openapi_extra=schemas.USAGE_QUERY)
def list_usage(
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    query = _query(request, mv)
    with rt.db.read() as session:
        report = usage.list_usage(session, ctx, query)
    params = dict(request.query_params)
    return views.usage_list(report, query.detailed, str(request.base_url), params, query.limit)


@router.get("/v2.1/os-simple-tenant-usage/")
def show_usage_without_project(ctx: RequestContext = Depends(context)) -> None:
    """An empty project id names no project: 404, as Nova (not the list's answer)."""
    raise NotFound("The resource could not be found.")


@router.get("/v2.1/os-simple-tenant-usage/{project_id}", openapi_extra=schemas.USAGE_QUERY)
def show_usage(
    project_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    query = _query(request, mv)
    with rt.db.read() as session:
        report = usage.show_usage(session, ctx, project_id, query)
    params = dict(request.query_params)
    return views.usage_show(report, project_id, str(request.base_url), params, query.limit)


@router.get("/v2.1/servers/{server_id}/os-volume_attachments")
def list_volume_attachments(
    server_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        attachments = volume_attachments.list_attachments(session, ctx, server_id)
    return {"volumeAttachments": attachments}


@router.get("/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}")
def show_volume_attachment(
    server_id: str, volume_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return {"volumeAttachment": volume_attachments.get_attachment(session, ctx, server_id, volume_id)}


@router.post(
    "/v2.1/servers/{server_id}/os-volume_attachments", openapi_extra=json_body(schemas.VOLUME_ATTACHMENT)
)
def attach_volume(
    server_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    mv: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> Response:
    with rt.db.read() as session:
        volume_attachments.attach(session, ctx, server_id, body, mv)


@router.put(
    "/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}",
    openapi_extra=json_body(schemas.VOLUME_ATTACHMENT),
)
def update_volume_attachment(
    server_id: str,
    volume_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    mv: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> Response:
    with rt.db.read() as session:
        volume_attachments.update(session, ctx, server_id, volume_id, body, mv)


@router.delete("/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}")
def detach_volume(
    server_id: str, volume_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.read() as session:
        volume_attachments.detach(session, ctx, server_id, volume_id)


@router.get("/v2.1/os-instance_usage_audit_log")
def list_usage_audit_logs(
    ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return {"instance_usage_audit_logs": audit_views.show(usage_audit.audit_log(session, ctx, None))}


@router.get("/v2.1/os-instance_usage_audit_log/{before_timestamp}")
def show_usage_audit_log(
    before_timestamp: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        log = usage_audit.audit_log(session, ctx, before_timestamp)
    return {"instance_usage_audit_log": audit_views.show(log)}
