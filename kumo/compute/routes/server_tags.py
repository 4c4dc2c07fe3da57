"""/v2.1/servers/{id}/tags (microversion 2.26): a server's tags, all at once or one by one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import params, schemas, server_tags
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion, require
from kumo.compute.routes.servers import base_url
from kumo.compute.tags import validate_tags
from kumo.errors import BadRequest
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")

TAGS_VERSION = "2.26"


@router.get("/v2.1/servers/{server_id}/tags")
def list_tags(
    server_id: str,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    require(version, TAGS_VERSION)
    with rt.db.read() as session:
        return {"tags": server_tags.list_tags(session, ctx, server_id)}


@router.put("/v2.1/servers/{server_id}/tags", openapi_extra=json_body(schemas.SERVER_TAGS))
def replace_tags(
    server_id: str,
    body: Any = Body(...),
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    require(version, TAGS_VERSION)
    if not isinstance(body, dict) or "tags" not in body:
        raise BadRequest("Invalid input for field/attribute tags. 'tags' is a required property")
    params.reject_unknown(body, {"tags"}, "tags")
    tags = validate_tags(body["tags"])
    with rt.db.transaction() as session:
        return {"tags": server_tags.replace_tags(session, ctx, server_id, tags)}


@router.delete("/v2.1/servers/{server_id}/tags", status_code=204)
def delete_tags(
    server_id: str,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> Response:
    require(version, TAGS_VERSION)
    with rt.db.transaction() as session:
        server_tags.delete_all(session, ctx, server_id)
    return Response(status_code=204)


@router.get("/v2.1/servers/{server_id}/tags/{tag}", status_code=204)
def check_tag(
    server_id: str,
    tag: str,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> Response:
    require(version, TAGS_VERSION)
    with rt.db.read() as session:
        server_tags.has_tag(session, ctx, server_id, tag)
    return Response(status_code=204)


@router.put("/v2.1/servers/{server_id}/tags/{tag}")
def add_tag(
    server_id: str,
    tag: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> Response:
    """201 with the tag's Location when added, 204 when the server had it (Nova)."""
    require(version, TAGS_VERSION)
    with rt.db.transaction() as session:
        added = server_tags.add_tag(session, ctx, server_id, tag)
    if not added:
        return Response(status_code=204)
    location = f"{base_url(request)}/compute/v2.1/servers/{server_id}/tags/{tag}"
    return Response(status_code=201, headers={"Location": location})


@router.delete("/v2.1/servers/{server_id}/tags/{tag}", status_code=204)
def delete_tag(
    server_id: str,
    tag: str,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> Response:
    require(version, TAGS_VERSION)
    with rt.db.transaction() as session:
        server_tags.delete_tag(session, ctx, server_id, tag)
    return Response(status_code=204)
