"""os-hypervisors: list, detail, show, uptime, statistics (and the pre-2.53 search routes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.compute import hosts, image_cache, params, schemas
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion
from kumo.compute.views import hypervisors as views
from kumo.errors import NotFound
from kumo.runtime import Runtime
from kumo.work.queue import host_key

router = APIRouter(prefix="/compute")

PAGING_VERSION = "2.33"


def _query(request: Request, mv: Microversion) -> hosts.HypervisorQuery:
    q = request.query_params
    page = (
        params.page(q.get("limit"), q.get("marker"))
        if mv.at_least(PAGING_VERSION)
        else params.Page(None, None)
    )
    if mv.at_least(views.UUID_VERSION):
        return hosts.HypervisorQuery(
            pattern=q.get("hypervisor_hostname_pattern"),
            with_servers=params.strict_bool(q.get("with_servers", False), "with_servers"),
            limit=page.limit,
            marker=page.marker,
        )
    return hosts.HypervisorQuery(limit=page.limit, marker=page.marker)


def _list(
    request: Request, ctx: RequestContext, rt: Runtime, mv: Microversion, detailed: bool
) -> dict[str, Any]:
    query = _query(request, mv)
    uuid_ids = mv.at_least(views.UUID_VERSION)
    with rt.db.transaction() as session:
        found = hosts.list_hypervisors(session, ctx, query, uuid_ids=uuid_ids)
        return views.index(
            found,
            mv,
            detailed=detailed,
            base_url=str(request.base_url),
            # Nova gives no next link when searching by pattern.
            limit=query.limit if query.pattern is None else None,
            query=dict(request.query_params),
        )


@router.get("/v2.1/os-hypervisors", openapi_extra=schemas.HYPERVISOR_LIST_QUERY)
def list_hypervisors(
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    return _list(request, ctx, rt, mv, detailed=False)


@router.get("/v2.1/os-hypervisors/detail", openapi_extra=schemas.HYPERVISOR_LIST_QUERY)
def list_hypervisors_detail(
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    return _list(request, ctx, rt, mv, detailed=True)


@router.get("/v2.1/os-hypervisors/statistics")
def hypervisor_statistics(
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    if mv.at_least(views.NO_USAGE_VERSION):  # 2.88 removes it
        raise NotFound("The resource could not be found.")
    with rt.db.read() as session:
        return views.statistics(hosts.statistics(session, ctx))


@router.get("/v2.1/os-hypervisors/{hypervisor_id}")
def show_hypervisor(
    hypervisor_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    uuid_ids = mv.at_least(views.UUID_VERSION)
    with_servers = uuid_ids and params.strict_bool(
        request.query_params.get("with_servers", False), "with_servers"
    )
    with rt.db.read() as session:
        found = hosts.get_hypervisor(
            session, ctx, hypervisor_id, uuid_ids=uuid_ids, with_servers=with_servers
        )
        return views.show(found, mv)


@router.get("/v2.1/os-hypervisors/{hypervisor_id}/uptime")
def hypervisor_uptime(
    hypervisor_id: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    if mv.at_least(views.NO_USAGE_VERSION):  # 2.88: the uptime is in the show body
        raise NotFound("The resource could not be found.")
    with rt.db.read() as session:
        found, text = hosts.uptime(session, ctx, hypervisor_id, uuid_ids=mv.at_least(views.UUID_VERSION))
        return views.uptime(found, text, mv)


def _search(
    pattern: str, ctx: RequestContext, rt: Runtime, mv: Microversion, servers: bool
) -> dict[str, Any]:
    if mv.at_least(views.UUID_VERSION):
        raise NotFound("The resource could not be found.")
    with rt.db.read() as session:
        found = hosts.search_hypervisors(session, ctx, pattern, servers)
        return {"hypervisors": [views.summary(h, mv) for h in found]}


@router.get("/v2.1/os-hypervisors/{pattern}/search")
def search_hypervisors(
    pattern: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    return _search(pattern, ctx, rt, mv, servers=False)


@router.get("/v2.1/os-hypervisors/{pattern}/servers")
def hypervisor_servers(
    pattern: str,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
    mv: Microversion = Depends(microversion),
) -> dict[str, Any]:
    return _search(pattern, ctx, rt, mv, servers=True)


@router.get("/v2.1/os-kumo-image-cache/{host}")
def show_image_cache(
    host: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """kumo extension: what `host` has in its image cache now (see kumo/compute/image_cache.py)."""
    with rt.db.transaction() as session:
        task_id = image_cache.request_report(session, ctx, host)
    rt.waker.publish(host_key(host))
    return {"host": host, "images": image_cache.collect_report(rt.db, task_id)}
