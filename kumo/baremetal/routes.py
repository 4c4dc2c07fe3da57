"""Ironic's API subset under /baremetal (version discovery, nodes, provision/power/maintenance
states, ports). Admin only. Each route: version → context → one domain call in a transaction → view."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.baremetal import conductors, microversion, ownership, ports, schemas, service, views
from kumo.baremetal.drivers import DRIVERS
from kumo.baremetal.microversion import Version
from kumo.errors import BadRequest
from kumo.runtime import Runtime
from kumo.validation import MAX_INT, int_text
from kumo.work.queue import host_key

router = APIRouter(prefix="/baremetal")


async def version(request: Request, response: Response) -> Version:
    """The request's microversion; every answer carries the supported range."""
    found = microversion.parse({k.lower(): v for k, v in request.headers.items()})
    response.headers.update(microversion.headers(found))
    return found


Rt = Annotated[Runtime, Depends(runtime)]
Ctx = Annotated[RequestContext, Depends(context)]  # resolved before V: no token answers 401 first
V = Annotated[Version, Depends(version)]
JSON = Annotated[Any, Body()]  # a body parsed by hand (its schema: the route's openapi_extra)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/baremetal"


def _fields(raw: str | None) -> list[str] | None:
    return [f.strip() for f in raw.split(",") if f.strip()] if raw else None


@router.get("")
@router.get("/")
def root(request: Request, response: Response) -> dict[str, Any]:
    response.headers.update(microversion.headers(None))
    return views.root(_base(request))


@router.get("/v1")
@router.get("/v1/")
def v1(request: Request, v: V) -> dict[str, Any]:
    return views.v1(_base(request))


def _live(rt: Runtime, session: Any) -> list[str]:
    """The names of the conductors heard from within the heartbeat timeout."""
    return conductors.live_conductors(session, rt.settings.heartbeat_timeout_seconds)


def _owners(rt: Runtime, session: Any, uuids: list[str]) -> dict[str, str | None]:
    live = _live(rt, session)
    return {u: ownership.owner(u, live) for u in uuids}


def _owner(rt: Runtime, session: Any, uuid: str) -> str | None:
    """The live conductor that owns the node `uuid` (None: no conductor is live)."""
    return _owners(rt, session, [uuid])[uuid]


def _detail(detail: str | None) -> bool:
    """The `detail` query flag (absent: False; not a boolean: 400)."""
    return service.parse_bool(detail, "detail") or False


def _limit(limit: str | None) -> int | None:
    """`limit`: an integer (negative ones the domain refuses), at most a 32-bit int so that it
    never overflows the database's LIMIT."""
    if limit in (None, ""):
        return None
    number = int_text(limit)
    if number is None:
        raise BadRequest(f"Invalid limit: {limit}")
    return min(number, MAX_INT)


def _list(
    request: Request, rt: Runtime, ctx: RequestContext, v: Version, detail: bool, fields: list[str] | None
) -> dict[str, Any]:
    p = request.query_params
    limit = p.get("limit")
    limit_value = _limit(limit)
    query = service.NodeQuery(
        limit=limit_value,
        marker=p.get("marker"),
        associated=p.get("associated"),
        maintenance=p.get("maintenance"),
        provision_state=p.get("provision_state"),
        driver=p.get("driver"),
        resource_class=p.get("resource_class"),
        fault=p.get("fault"),
        owner=p.get("owner"),
        lessee=p.get("lessee"),
        instance_uuid=p.get("instance_uuid"),
        sort_key=p.get("sort_key", "id"),
        sort_dir=p.get("sort_dir", "asc"),
    )
    with rt.db.read() as session:
        nodes = service.list_nodes(session, ctx, query)
        owners = _owners(rt, session, [n.uuid for n in nodes]) if detail or fields else {}
    next_url = None
    if nodes and limit_value:
        args = {k: v for k, v in p.items() if k != "marker"}
        args["marker"] = nodes[-1].uuid
        path = "nodes/detail" if detail else "nodes"
        next_url = f"{_base(request)}/v1/{path}?{urlencode(args)}"
    return views.node_list(
        nodes,
        v,
        _base(request),
        owners=owners,
        detail=detail,
        fields=fields,
        limit=limit_value,
        next_url=next_url,
    )


@router.get("/v1/nodes", openapi_extra=schemas.NODE_LIST_QUERY)
def list_nodes(
    request: Request,
    rt: Rt,
    ctx: Ctx,
    v: V,
    fields: str | None = Query(default=None),
    detail: str | None = Query(default=None),
) -> dict[str, Any]:
    is_detail = _detail(detail)
    return _list(request, rt, ctx, v, is_detail, _fields(fields))


@router.get("/v1/nodes/detail", openapi_extra=schemas.NODE_LIST_QUERY)
def list_nodes_detail(request: Request, rt: Rt, ctx: Ctx, v: V) -> dict[str, Any]:
    return _list(request, rt, ctx, v, True, None)


@router.post("/v1/nodes", status_code=201, openapi_extra=json_body(schemas.NODE_CREATE))
def create_node(
    request: Request, response: Response, rt: Rt, ctx: Ctx, v: V, body: JSON = None
) -> dict[str, Any]:
    with rt.db.transaction() as session:
        node = service.create_node(session, ctx, body, v)
        shown = views.node(node, v, _base(request), conductor=_owner(rt, session, node.uuid))
    response.headers["Location"] = f"{_base(request)}/v1/nodes/{node.uuid}"
    return shown


@router.get("/v1/nodes/{ident}")
def show_node(
    ident: str, request: Request, rt: Rt, ctx: Ctx, v: V, fields: str | None = Query(default=None)
) -> dict[str, Any]:
    with rt.db.read() as session:
        node = service.get_node(session, ctx, ident)
        owner = _owner(rt, session, node.uuid)
        return views.node(node, v, _base(request), conductor=owner, fields=_fields(fields))


@router.patch("/v1/nodes/{ident}", openapi_extra=json_body(schemas.NODE_PATCH))
def update_node(ident: str, request: Request, rt: Rt, ctx: Ctx, v: V, body: JSON = None) -> dict[str, Any]:
    with rt.db.transaction() as session:
        node = service.update_node(session, ctx, ident, body)
        return views.node(node, v, _base(request), conductor=_owner(rt, session, node.uuid))


@router.delete("/v1/nodes/{ident}", status_code=204)
def delete_node(ident: str, rt: Rt, ctx: Ctx, v: V) -> Response:
    with rt.db.transaction() as session:
        service.delete_node(session, ctx, ident)
    return Response(status_code=204, headers=microversion.headers(v))


def _accepted(request: Request, rt: Runtime, v: Version, node_uuid: str, what: str) -> Response:
    rt.waker.publish(host_key(node_uuid))
    headers = {**microversion.headers(v), "Location": f"{_base(request)}/v1/nodes/{node_uuid}/{what}"}
    return Response(status_code=202, headers=headers)


@router.put("/v1/nodes/{ident}/states/provision", status_code=202, openapi_extra=json_body(schemas.PROVISION))
def set_provision_state(ident: str, request: Request, rt: Rt, ctx: Ctx, v: V, body: JSON = None) -> Response:
    with rt.db.transaction() as session:
        node_uuid = service.set_provision_state(session, ctx, ident, body, v)
    return _accepted(request, rt, v, node_uuid, "states")


@router.put("/v1/nodes/{ident}/states/power", status_code=202, openapi_extra=json_body(schemas.POWER))
def set_power_state(ident: str, request: Request, rt: Rt, ctx: Ctx, v: V, body: JSON = None) -> Response:
    with rt.db.transaction() as session:
        node_uuid = service.set_power_state(session, ctx, ident, body)
    return _accepted(request, rt, v, node_uuid, "states")


@router.get("/v1/nodes/{ident}/states")
def node_states(ident: str, rt: Rt, ctx: Ctx, v: V) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.node_states(service.get_node(session, ctx, ident), v)


@router.put(
    "/v1/nodes/{ident}/maintenance",
    status_code=202,
    openapi_extra=json_body(schemas.MAINTENANCE, required=False),
)
def maintenance_on(ident: str, request: Request, rt: Rt, ctx: Ctx, v: V, body: JSON = None) -> Response:
    reason = body.get("reason") if isinstance(body, dict) else None
    with rt.db.transaction() as session:
        service.set_maintenance(session, ctx, ident, True, reason if isinstance(reason, str) else None)
    return Response(status_code=202, headers=microversion.headers(v))


@router.delete("/v1/nodes/{ident}/maintenance", status_code=202)
def maintenance_off(ident: str, rt: Rt, ctx: Ctx, v: V) -> Response:
    with rt.db.transaction() as session:
        service.set_maintenance(session, ctx, ident, False, None)
    return Response(status_code=202, headers=microversion.headers(v))


def _port_list(
    request: Request, rt: Runtime, ctx: RequestContext, v: Version, detail: bool, node: str | None, path: str
) -> dict[str, Any]:
    p = request.query_params
    fields = _fields(p.get("fields"))
    limit_value = _limit(p.get("limit"))
    query = ports.PortQuery(
        version=v,
        detail=detail,
        detail_param=detail and path == "ports",
        fields=fields,
        node=node if node is not None else p.get("node"),
        node_uuid=p.get("node_uuid"),
        address=p.get("address"),
        limit=limit_value,
        marker=p.get("marker"),
        sort_key=p.get("sort_key", "id"),
        sort_dir=p.get("sort_dir", "asc"),
    )
    with rt.db.read() as session:
        rows = [(port, node_row.uuid) for port, node_row in ports.list_ports(session, ctx, query)]
    next_url = None
    if rows and limit_value:
        args = {k: val for k, val in p.items() if k != "marker"}
        args["marker"] = rows[-1][0].uuid
        next_url = f"{_base(request)}/v1/{path}?{urlencode(args)}"
    return views.port_list(
        rows, v, _base(request), detail=detail, fields=fields, limit=limit_value, next_url=next_url
    )


@router.get("/v1/ports", openapi_extra=schemas.PORT_LIST_QUERY)
def list_ports(
    request: Request, rt: Rt, ctx: Ctx, v: V, detail: str | None = Query(default=None)
) -> dict[str, Any]:
    is_detail = _detail(detail)
    return _port_list(request, rt, ctx, v, is_detail, None, "ports")


@router.get("/v1/ports/detail", openapi_extra=schemas.PORT_LIST_QUERY)
def list_ports_detail(request: Request, rt: Rt, ctx: Ctx, v: V) -> dict[str, Any]:
    return _port_list(request, rt, ctx, v, True, None, "ports/detail")


@router.get("/v1/nodes/{ident}/ports", openapi_extra=schemas.PORT_LIST_QUERY)
def list_node_ports(ident: str, request: Request, rt: Rt, ctx: Ctx, v: V) -> dict[str, Any]:
    return _port_list(request, rt, ctx, v, False, ident, f"nodes/{ident}/ports")


@router.get("/v1/nodes/{ident}/ports/detail", openapi_extra=schemas.PORT_LIST_QUERY)
def list_node_ports_detail(ident: str, request: Request, rt: Rt, ctx: Ctx, v: V) -> dict[str, Any]:
    return _port_list(request, rt, ctx, v, True, ident, f"nodes/{ident}/ports/detail")


@router.post("/v1/ports", status_code=201, openapi_extra=json_body(schemas.PORT_CREATE))
def create_port(
    request: Request, response: Response, rt: Rt, ctx: Ctx, v: V, body: JSON = None
) -> dict[str, Any]:
    with rt.db.transaction() as session:
        port, node = ports.create_port(session, ctx, body, v)
        shown = views.port(port, node.uuid, v, _base(request))
    response.headers["Location"] = f"{_base(request)}/v1/ports/{port.uuid}"
    return shown


@router.get("/v1/ports/{ident}")
def show_port(
    ident: str, request: Request, rt: Rt, ctx: Ctx, v: V, fields: str | None = Query(default=None)
) -> dict[str, Any]:
    wanted = _fields(fields)
    with rt.db.read() as session:
        port, node = ports.show_port(session, ctx, ident, wanted, v)
        return views.port(port, node.uuid, v, _base(request), fields=wanted)


@router.patch("/v1/ports/{ident}", openapi_extra=json_body(schemas.PORT_PATCH))
def update_port(ident: str, request: Request, rt: Rt, ctx: Ctx, v: V, body: JSON = None) -> dict[str, Any]:
    with rt.db.transaction() as session:
        port, node = ports.update_port(session, ctx, ident, body, v)
        return views.port(port, node.uuid, v, _base(request))


@router.delete("/v1/ports/{ident}", status_code=204)
def delete_port(ident: str, rt: Rt, ctx: Ctx, v: V) -> Response:
    with rt.db.transaction() as session:
        ports.delete_port(session, ctx, ident)
    return Response(status_code=204, headers=microversion.headers(v))


@router.get("/v1/conductors")
def list_conductors(
    request: Request, rt: Rt, ctx: Ctx, v: V, detail: str | None = Query(default=None)
) -> dict[str, Any]:
    ctx.require_admin()
    is_detail = _detail(detail)
    with rt.db.read() as session:
        live = set(_live(rt, session))
        found = conductors.all_conductors(session)
    return {"conductors": [views.conductor(c, c.name in live, _base(request), is_detail) for c in found]}


@router.get("/v1/conductors/{name}")
def show_conductor(name: str, request: Request, rt: Rt, ctx: Ctx, v: V) -> dict[str, Any]:
    ctx.require_admin()
    with rt.db.read() as session:
        live = set(_live(rt, session))
        found = conductors.get_conductor(session, name)
    return views.conductor(found, found.name in live, _base(request), True)


@router.get("/v1/drivers")
def list_drivers(
    request: Request, rt: Rt, ctx: Ctx, v: V, detail: str | None = Query(default=None)
) -> dict[str, Any]:
    """Every driver is served by every live conductor."""
    ctx.require_admin()
    is_detail = _detail(detail)
    with rt.db.read() as session:
        live = _live(rt, session)
    return {"drivers": [views.driver(d, live, _base(request), is_detail) for d in DRIVERS]}
