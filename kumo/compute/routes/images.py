"""Nova's image proxy over kumo's Glance (removed at 2.36: 404 from 2.36 on, as Nova):
/images, /images/detail, /images/{id} (GET, DELETE), /images/{id}/metadata[/{key}]."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Request, Response

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import images, schemas
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion, removed_at
from kumo.compute.servers import validate_metadata
from kumo.compute.views import images as views
from kumo.errors import NotFound
from kumo.image.store import file_store
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")

REMOVED = "2.36"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _list(
    request: Request, ctx: RequestContext, rt: Runtime, mv: Microversion, detailed: bool
) -> dict[str, Any]:
    removed_at(mv, REMOVED)
    params = list(request.query_params.multi_items())
    query = images.parse_list_query(params)
    with rt.db.read() as session:
        page = images.list_images(session, ctx, query)
    next_href = None
    if page.next_marker is not None:
        kept = [(k, v) for k, v in params if k != "marker"] + [("marker", page.next_marker)]
        kind = "images/detail" if detailed else "images"
        next_href = f"{_base(request)}/compute/v2.1/{kind}?{urlencode(kept)}"
    return views.page(page.images, _base(request), detailed, next_href)


@router.get("/v2.1/images")
def list_images(
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    return _list(request, ctx, rt, mv, detailed=False)


@router.get("/v2.1/images/detail")
def list_images_detail(
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    return _list(request, ctx, rt, mv, detailed=True)


@router.get("/v2.1/images/{image_id}")
def show_image(
    image_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    removed_at(mv, REMOVED)
    with rt.db.read() as session:
        return {"image": views.show(images.get_image(session, ctx, image_id), _base(request))}


@router.delete("/v2.1/images/")
def delete_image_without_id(ctx: RequestContext = Depends(context)) -> Response:
    """`DELETE /images/` names no image: Nova's router matches no route there (404, not the
    list's 405)."""
    raise NotFound("The resource could not be found.")


@router.delete("/v2.1/images/{image_id}", status_code=204)
def delete_image(
    image_id: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> Response:
    removed_at(mv, REMOVED)
    images.delete_image(rt.db, file_store(rt.settings.resolved_image_dir), ctx, image_id)
    return Response(status_code=204)


@router.get("/v2.1/images/{image_id}/metadata")
def show_metadata(
    image_id: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    removed_at(mv, REMOVED)
    with rt.db.read() as session:
        return {"metadata": images.metadata(session, ctx, image_id)}


def _write(
    image_id: str, body: Any, ctx: RequestContext, rt: Runtime, mv: Microversion, replace: bool
) -> dict[str, Any]:
    removed_at(mv, REMOVED)
    new = validate_metadata(body.get("metadata") if isinstance(body, dict) else None)
    with rt.db.transaction() as session:
        return {"metadata": images.set_metadata(session, ctx, image_id, new, replace)}


@router.post("/v2.1/images/{image_id}/metadata", openapi_extra=json_body(schemas.METADATA_SET))
def update_metadata(
    image_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    return _write(image_id, body, ctx, rt, mv, replace=False)


@router.put("/v2.1/images/{image_id}/metadata", openapi_extra=json_body(schemas.METADATA_SET))
def replace_metadata(
    image_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    return _write(image_id, body, ctx, rt, mv, replace=True)


@router.get("/v2.1/images/{image_id}/metadata/{key}")
def show_metadata_item(
    image_id: str,
    key: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    removed_at(mv, REMOVED)
    with rt.db.read() as session:
        return {"meta": {key: images.metadata_item(session, ctx, image_id, key)}}


@router.put("/v2.1/images/{image_id}/metadata/{key}", openapi_extra=json_body(schemas.METADATA_ITEM))
def set_metadata_item(
    image_id: str,
    key: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    removed_at(mv, REMOVED)
    item = images.parse_item(body, key)
    with rt.db.transaction() as session:
        images.set_metadata(session, ctx, image_id, item, replace=False)
    return {"meta": item}


@router.delete("/v2.1/images/{image_id}/metadata/{key}", status_code=204)
def delete_metadata_item(
    image_id: str,
    key: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> Response:
    removed_at(mv, REMOVED)
    with rt.db.transaction() as session:
        images.delete_metadata_item(session, ctx, image_id, key)
    return Response(status_code=204)
