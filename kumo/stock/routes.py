"""os-kumo-stock-requests: a kumo extension of the compute API (Nova-style errors and
envelopes). Members ask for machines of a flavor; admins approve or reject.

    GET  /compute/v2.1/os-kumo-stock-requests[?all_projects=1&status=pending]
    POST /compute/v2.1/os-kumo-stock-requests          {"stock_request": {"flavor", "count", "reason"}}
    GET  /compute/v2.1/os-kumo-stock-requests/{id}
    POST /compute/v2.1/os-kumo-stock-requests/{id}/action   {"approve": null} | {"reject": {"reason"}}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.runtime import Runtime
from kumo.stock import schemas, service, views

router = APIRouter(prefix="/compute")
PATH = "/v2.1/os-kumo-stock-requests"


@router.get(PATH)
def list_stock_requests(
    all_projects: str | None = None,
    status: str | None = None,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    query = service.parse_list_query(all_projects, status)
    with rt.db.read() as session:
        return views.index(service.list_requests(session, ctx, query))


@router.post(PATH, openapi_extra=json_body(schemas.STOCK_REQUEST_CREATE))
def create_stock_request(
    body: Any = Body(None), ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    ctx.require_writer()
    req = service.parse_create(body)
    with rt.db.transaction() as session:
        return views.show(service.create_request(session, ctx, req))


@router.get(PATH + "/{request_id}")
def show_stock_request(
    request_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.show(service.get_request(session, ctx, request_id))


@router.post(PATH + "/{request_id}/action", openapi_extra=json_body(schemas.STOCK_REQUEST_ACTION))
def stock_request_action(
    request_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    ctx.require_admin()
    action = service.parse_action(body)
    with rt.db.transaction() as session:
        if action.name == "approve":
            return views.show(service.approve(session, ctx, request_id))
        return views.show(service.reject(session, ctx, request_id, action.reason or ""))
