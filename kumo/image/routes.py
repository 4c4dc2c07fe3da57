"""Glance v2 over HTTP: thin handlers (parse → domain call → view) under /image."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.from_thread
from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import ClientDisconnect

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.errors import BadRequest, NotFound, RequestEntityTooLarge, UnsupportedMediaType
from kumo.image import members, metadefs, schemas, service, views
from kumo.image.store import ImageStore, file_store
from kumo.runtime import Runtime

router = APIRouter(prefix="/image")
MAX_PATCH_BYTES = 1024 * 1024


def image_store(rt: Runtime = Depends(runtime)) -> ImageStore:
    return file_store(rt.settings.resolved_image_dir)


async def patch_body(request: Request) -> bytes:
    """The raw PATCH body: Glance's JSON-patch media types are not parsed by FastAPI."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PATCH_BYTES:
            raise RequestEntityTooLarge("The request body is too large.")
    return bytes(body)


def upload_chunks(request: Request) -> Iterator[bytes]:
    """The request body as a blocking iterator, for a handler running in the worker threadpool.

    Each chunk is pulled from the event loop as the store asks for it, so at most one chunk of the
    upload is in memory, with or without Content-Length (chunked transfer encoding).
    """
    stream: AsyncIterator[bytes] = request.stream()

    async def pull() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while True:
        try:
            chunk = anyio.from_thread.run(pull)
        except ClientDisconnect:
            raise BadRequest("The client disconnected before the upload completed.") from None
        if chunk is None:
            return
        if chunk:
            yield chunk


# --- discovery and schemas --------------------------------------------------------------------


@router.get("")
@router.get("/")
@router.get("/v2")
@router.get("/v2/")
def versions(request: Request) -> Response:
    return JSONResponse(views.versions(str(request.base_url)), status_code=300)


@router.get("/v2/schemas/image")
def image_schema(_ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    return views.image_schema()


@router.get("/v2/schemas/images")
def images_schema(_ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    return views.images_schema()


@router.get("/v2/schemas/member")
def member_schema(_ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    return views.member_schema()


@router.get("/v2/schemas/members")
def members_schema(_ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    return views.members_schema()


@router.get("/v2/schemas/metadefs/{name}")
def metadef_schema(name: str, _ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    schema = views.metadef_schema(name)
    if schema is None:
        raise NotFound(f"No schema named {name}.")
    return schema


# --- metadata definitions (read-only) ---------------------------------------------------------


@router.get("/v2/metadefs/namespaces")
def list_namespaces(ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    metadefs.namespaces(ctx)
    return views.namespace_list()


@router.get("/v2/metadefs/namespaces/{namespace}")
def show_namespace(namespace: str, ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    metadefs.get_namespace(ctx, namespace)


@router.get("/v2/metadefs/resource_types")
def list_resource_types(_ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    return views.resource_type_list()


# --- images -----------------------------------------------------------------------------------


@router.post("/v2/images", status_code=201, openapi_extra=json_body(schemas.IMAGE_CREATE))
def create_image(
    body: dict[str, Any] = Body(...), ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        image = service.create_image(session, ctx, body)
        payload = views.image(image)
    return JSONResponse(payload, status_code=201, headers={"Location": f"/v2/images/{image.id}"})


@router.get("/v2/images", openapi_extra=schemas.IMAGE_LIST_QUERY)
def list_images(
    request: Request, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    params = request.query_params.multi_items()
    query = service.parse_list_query(params)
    with rt.db.read() as session:
        page = service.list_images(session, ctx, query)
        return views.image_list(page, params)


@router.get("/v2/images/")
def show_image_without_id(ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)) -> None:
    """`GET /v2/images/` names no image: Glance's 404 (not the list, nor a redirect to it)."""
    with rt.db.read() as session:
        service.get_image(session, ctx, "")


@router.delete("/v2/images/", status_code=204)
def delete_image_without_id(ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)) -> None:
    with rt.db.read() as session:
        service.get_image(session, ctx, "")


@router.get("/v2/images/{image_id}")
def show_image(
    image_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.image(service.get_image(session, ctx, image_id))


@router.get("/v2/images/{image_id}/tasks")
def list_image_tasks(
    image_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """Glance's tasks of an image (API 2.12): none in kumo, which runs no import or location
    task; 404 for an image the caller cannot see."""
    with rt.db.read() as session:
        service.get_image(session, ctx, image_id)
    return {"tasks": []}


@router.patch("/v2/images/{image_id}", openapi_extra=schemas.IMAGE_PATCH_BODY)
def update_image(
    request: Request,
    image_id: str,
    ctx: RequestContext = Depends(context),
    raw: bytes = Depends(patch_body),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    ops = service.parse_patch(request.headers.get("content-type", ""), raw)
    with rt.db.transaction() as session:
        return views.image(service.update_image(session, ctx, image_id, ops))


@router.delete("/v2/images/{image_id}", status_code=204)
def delete_image(
    image_id: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    store: ImageStore = Depends(image_store),
) -> Response:
    service.delete_image(rt.db, store, ctx, image_id)
    return Response(status_code=204)


# --- data -------------------------------------------------------------------------------------


@router.put("/v2/images/{image_id}/file", status_code=204, openapi_extra=schemas.IMAGE_DATA_BODY)
def upload_file(
    request: Request,
    image_id: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    store: ImageStore = Depends(image_store),
) -> Response:
    media_type = request.headers.get("content-type", "application/octet-stream").split(";", 1)[0].strip()
    if media_type.lower() != "application/octet-stream":
        raise UnsupportedMediaType(f"Unsupported Content-Type '{media_type}': use application/octet-stream.")
    service.upload_data(rt.db, store, ctx, image_id, upload_chunks(request))
    return Response(status_code=204)


@router.get("/v2/images/{image_id}/file")
def download_file(
    image_id: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    store: ImageStore = Depends(image_store),
) -> Response:
    data = service.open_data(rt.db, store, ctx, image_id)
    if data.chunks is None:
        return Response(status_code=204)
    headers = {"Content-Length": str(data.size)}
    if data.checksum:
        headers["Content-MD5"] = data.checksum
    return StreamingResponse(data.chunks, media_type="application/octet-stream", headers=headers)


# --- tags and actions -------------------------------------------------------------------------


@router.put("/v2/images/{image_id}/tags/{tag}", status_code=204)
def add_tag(
    image_id: str, tag: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        service.add_tag(session, ctx, image_id, tag)
    return Response(status_code=204)


@router.delete("/v2/images/{image_id}/tags/{tag}", status_code=204)
def delete_tag(
    image_id: str, tag: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        service.delete_tag(session, ctx, image_id, tag)
    return Response(status_code=204)


@router.post("/v2/images/{image_id}/actions/deactivate", status_code=204)
def deactivate(
    image_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        service.set_active(session, ctx, image_id, active=False)
    return Response(status_code=204)


@router.post("/v2/images/{image_id}/actions/reactivate", status_code=204)
def reactivate(
    image_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        service.set_active(session, ctx, image_id, active=True)
    return Response(status_code=204)


# --- members ----------------------------------------------------------------------------------


@router.post("/v2/images/{image_id}/members", openapi_extra=json_body(schemas.MEMBER_CREATE))
def add_member(
    image_id: str,
    body: Any = Body(...),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return views.member(members.add_member(session, ctx, image_id, body))


@router.get("/v2/images/{image_id}/members")
def list_members(
    image_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.member_list(members.list_members(session, ctx, image_id))


@router.get("/v2/images/{image_id}/members/{member_id}")
def show_member(
    image_id: str, member_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.member(members.get_member(session, ctx, image_id, member_id))


@router.put("/v2/images/{image_id}/members/{member_id}", openapi_extra=json_body(schemas.MEMBER_UPDATE))
def update_member(
    image_id: str,
    member_id: str,
    body: Any = Body(...),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return views.member(members.update_member(session, ctx, image_id, member_id, body))


@router.delete("/v2/images/{image_id}/members/{member_id}", status_code=204)
def remove_member(
    image_id: str, member_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        members.remove_member(session, ctx, image_id, member_id)
    return Response(status_code=204)
