"""os-kumo-image-precache: a kumo extension of the compute API (Nova-style errors), admin only.

POST   /compute/v2.1/os-kumo-image-precache  {"image_ids": [...], one of "aggregate_id" |
       "hosts" | "availability_zone"}: 202 {"job_id": ...} (headers as Nova's 2.81 route's)
GET    /compute/v2.1/os-kumo-image-precache[?image_id=ID&limit=N&marker=JOB]: {"jobs": [...]},
       newest first, at most 100 a page; `jobs_links` (rel next) when the page is full
GET    /compute/v2.1/os-kumo-image-precache/{job_id}: {"job": {...}}
DELETE /compute/v2.1/os-kumo-image-precache/{job_id}: 202, queued hosts are skipped
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import params
from kumo.compute.precache import schemas, service
from kumo.compute.views import page_links
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")
COLLECTION = "os-kumo-image-precache"
PATH = f"/v2.1/{COLLECTION}"


@router.post(PATH, openapi_extra=json_body(schemas.PRECACHE_JOB))
def create_job(
    body: Any = Body(None), ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    ctx.require_admin()
    request = service.parse(body)
    with rt.db.transaction() as session:
        job_id = service.create(session, ctx, request)
    return JSONResponse({"job_id": job_id}, status_code=202, headers=service.location_headers(job_id))


@router.get(PATH)
def list_jobs(
    request: Request,
    image_id: str | None = None,
    limit: str | None = None,
    marker: str | None = None,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    ctx.require_admin()  # before the query's checks, as Nova's policy comes first
    q = request.query_params
    page = params.page(limit, marker, service.MAX_LIST)
    with rt.db.read() as session:
        jobs = service.list_jobs(session, ctx, image_id, page)
    body: dict[str, Any] = {"jobs": jobs}
    size = service.MAX_LIST if page.limit is None else page.limit
    links = page_links(str(request.base_url), COLLECTION, dict(q), jobs, size, lambda j: j["job_id"])
    if links:
        body["jobs_links"] = links
    return body


@router.get(PATH + "/{job_id}")
def show_job(
    job_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return {"job": service.show(session, ctx, job_id)}


@router.delete(PATH + "/{job_id}")
def cancel_job(
    job_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        service.cancel(session, ctx, job_id)
    return Response(status_code=202)
