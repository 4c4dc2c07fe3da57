"""os-keypairs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import keypairs, params, schemas
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion
from kumo.compute.views import keypairs as views
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")


def _user_id(request: Request, mv: Microversion) -> str | None:
    # Before 2.10 Nova ignores the parameter.
    return request.query_params.get("user_id") if mv.at_least(keypairs.USER_ID_VERSION) else None


@router.get("/v2.1/os-keypairs", openapi_extra=schemas.KEYPAIR_LIST_QUERY)
def list_keypairs(
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    q = request.query_params
    page = params.page(q.get("limit"), q.get("marker")) if mv.at_least(keypairs.PAGING_VERSION) else None
    with rt.db.read() as session:
        found = keypairs.list_keypairs(session, ctx, _user_id(request, mv), page)
    limit = page.limit if page is not None else None
    return views.index(found, mv, str(request.base_url), limit, dict(q))


@router.post("/v2.1/os-keypairs", openapi_extra=json_body(schemas.KEYPAIR_CREATE))
def create_keypair(
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> JSONResponse:
    ctx.require_writer()
    req = keypairs.parse_create(body, mv)
    with rt.db.transaction() as session:
        keypair, private_key = keypairs.create_keypair(session, ctx, req)
    status = 201 if mv.at_least(keypairs.TYPE_VERSION) else 200
    return JSONResponse(views.created(keypair, private_key, mv), status_code=status)


@router.get("/v2.1/os-keypairs/{name}")
def show_keypair(
    name: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.show(keypairs.get_keypair(session, ctx, name, _user_id(request, mv)), mv)


@router.delete("/v2.1/os-keypairs/{name}")
def delete_keypair(
    name: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> Response:
    with rt.db.transaction() as session:
        keypairs.delete_keypair(session, ctx, name, _user_id(request, mv))
    return Response(status_code=204 if mv.at_least(keypairs.TYPE_VERSION) else 202)
