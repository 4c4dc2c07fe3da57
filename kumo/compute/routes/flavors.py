"""GET/POST /flavors, flavor-manage, os-extra_specs and os-flavor-access."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import flavors, schemas
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion
from kumo.compute.views import flavors as views
from kumo.errors import NotFound
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")


def _list(
    request: Request, ctx: RequestContext, rt: Runtime, mv: Microversion, detailed: bool
) -> dict[str, Any]:
    q = request.query_params
    query = flavors.parse_list_query(
        ctx,
        is_public=q.get("is_public"),
        min_ram=q.get("minRam"),
        min_disk=q.get("minDisk"),
        sort_key=q.get("sort_key"),
        sort_dir=q.get("sort_dir"),
        limit=q.get("limit"),
        marker=q.get("marker"),
    )
    with rt.db.transaction() as session:
        found = flavors.list_flavors(session, ctx, query)
        return views.index(
            found, mv, str(request.base_url), detailed=detailed, limit=query.limit, query=dict(q)
        )


@router.get("/v2.1/flavors", openapi_extra=schemas.FLAVOR_LIST_QUERY)
def list_flavors(
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    return _list(request, ctx, rt, mv, detailed=False)


@router.get("/v2.1/flavors/detail", openapi_extra=schemas.FLAVOR_LIST_QUERY)
def list_flavors_detail(
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    return _list(request, ctx, rt, mv, detailed=True)


@router.get("/v2.1/flavors/{flavor_id}")
def show_flavor(
    flavor_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.show(flavors.get_flavor(session, ctx, flavor_id), mv, str(request.base_url))


@router.post("/v2.1/flavors", openapi_extra=json_body(schemas.FLAVOR_CREATE))
def create_flavor(
    request: Request,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    ctx.require_admin()
    spec = flavors.parse_create(body, mv)
    with rt.db.transaction() as session:
        return views.show(flavors.create_flavor(session, ctx, spec), mv, str(request.base_url))


@router.put("/v2.1/flavors/{flavor_id}", openapi_extra=json_body(schemas.FLAVOR_UPDATE))
def update_flavor(
    flavor_id: str,
    request: Request,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    if mv.before(flavors.DESCRIPTION_VERSION):
        raise NotFound("The resource could not be found.")
    ctx.require_admin()
    description = flavors.parse_update(body)
    with rt.db.transaction() as session:
        flavor = flavors.update_description(session, ctx, flavor_id, description)
        return views.show(flavor, mv, str(request.base_url))


@router.delete("/v2.1/flavors/{flavor_id}")
def delete_flavor(
    flavor_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        flavors.delete_flavor(session, ctx, flavor_id)
    return Response(status_code=202)


# ---------------------------------------------------------------------------- os-extra_specs


@router.get("/v2.1/flavors/{flavor_id}/os-extra_specs")
def list_extra_specs(
    flavor_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.extra_specs(flavors.extra_specs(session, ctx, flavor_id))


@router.post("/v2.1/flavors/{flavor_id}/os-extra_specs", openapi_extra=json_body(schemas.EXTRA_SPECS))
def create_extra_specs(
    flavor_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    ctx.require_admin()
    specs = flavors.parse_extra_specs(body, mv)
    with rt.db.transaction() as session:
        return views.extra_specs(flavors.set_extra_specs(session, ctx, flavor_id, specs))


@router.get("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}")
def show_extra_spec(
    flavor_id: str, key: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return {key: flavors.extra_spec(session, ctx, flavor_id, key)}


@router.put(
    "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", openapi_extra=json_body(schemas.EXTRA_SPEC_ITEM)
)
def update_extra_spec(
    flavor_id: str,
    key: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    ctx.require_admin()
    value = flavors.parse_extra_spec_item(body, key, mv)
    with rt.db.transaction() as session:
        return flavors.set_extra_specs(session, ctx, flavor_id, {key: value})


@router.delete("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}")
def delete_extra_spec(
    flavor_id: str, key: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        flavors.delete_extra_spec(session, ctx, flavor_id, key)
    return Response(status_code=200)


# ---------------------------------------------------------------------------- os-flavor-access


@router.get("/v2.1/flavors/{flavor_id}/os-flavor-access")
def list_access(
    flavor_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.access(flavors.access_list(session, ctx, flavor_id))


@router.post("/v2.1/flavors/{flavor_id}/action", openapi_extra=json_body(schemas.FLAVOR_ACTION))
def flavor_action(
    flavor_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    ctx.require_admin()
    action, project_id = flavors.parse_access_action(body)
    with rt.db.transaction() as session:
        if action == "addTenantAccess":
            rows = flavors.add_access(session, ctx, flavor_id, project_id)
        else:
            rows = flavors.remove_access(session, ctx, flavor_id, project_id)
        return views.access(rows)
