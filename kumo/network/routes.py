"""Neutron v2.0 over HTTP under /networking: version discovery, networks, subnets, ports,
security groups and rules, extensions, quotas, and the empty collections the clients probe
(routers, floating IPs, availability zones, subnet pools). Thin handlers: parse → domain call
inside one transaction → view; list queries go through kumo/network/query.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.errors import Forbidden
from kumo.network import networks, ports, query, quotas, schemas, security_groups, subnets, views
from kumo.network.errors import ExtensionNotFound
from kumo.network.models import Network, Port, SecurityGroup, SecurityGroupRule, Subnet
from kumo.runtime import Runtime

router = APIRouter(prefix="/networking")
V2 = "/v2.0"
Ctx = Annotated[RequestContext, Depends(context)]  # resolved before Rt, as every route lists them
Rt = Annotated[Runtime, Depends(runtime)]
JSON = Annotated[Any, Body()]  # a body parsed by hand (its schema: the route's openapi_extra)

_STANDARD = frozenset(
    {"id", "project_id", "tenant_id", "revision_number", "created_at", "updated_at", "tags"}
)
NETWORK_FILTERS = _STANDARD | {
    "name", "description", "admin_state_up", "status", "shared", "router:external", "mtu",
    "port_security_enabled", "provider:network_type", "provider:physical_network",
    "provider:segmentation_id", "subnets", "is_default", "availability_zones",
}  # fmt: skip
SUBNET_FILTERS = _STANDARD | {
    "name", "description", "network_id", "ip_version", "cidr", "gateway_ip", "enable_dhcp",
    "subnetpool_id", "segment_id", "ipv6_address_mode", "ipv6_ra_mode", "dns_nameservers",
}  # fmt: skip
PORT_FILTERS = _STANDARD | {
    "name", "description", "network_id", "mac_address", "fixed_ips", "device_id", "device_owner",
    "admin_state_up", "status", "security_groups", "port_security_enabled", "binding:host_id",
    "binding:vnic_type", "binding:vif_type", "ip_allocation", "dns_name",
}  # fmt: skip
GROUP_FILTERS = _STANDARD | {"name", "description", "stateful", "shared"}
RULE_FILTERS = _STANDARD | {
    "security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
    "remote_ip_prefix", "remote_group_id", "description", "belongs_to_default_sg",
}  # fmt: skip
EMPTY_COLLECTIONS = ("routers", "floatingips", "availability_zones", "subnetpools")


@contextmanager
def _filtering(rt: Runtime) -> Iterator[Session]:
    """A transaction that may change hosts' firewalls: once it commits, the agents of the hosts
    it gave a `firewall_sync` are woken (kumo/network/firewall.py, through
    `kumo.db.wake_after_commit`, as on every path)."""
    with rt.db.transaction() as session:
        yield session


def _listing(request: Request, filterable: frozenset[str]) -> query.ListQuery:
    return query.parse(request.query_params.multi_items(), filterable)


def _fields(request: Request) -> list[str]:
    return request.query_params.getlist("fields")


def _page(
    request: Request, listing: query.ListQuery, items: list[dict[str, Any]], key: str
) -> dict[str, Any]:
    """A list answer: `items` filtered, sorted, paged and projected as `listing` asks."""
    return query.apply(items, listing, str(request.url).split("?")[0], key)


def _shown(request: Request, key: str, item: dict[str, Any]) -> dict[str, Any]:
    """A show answer: `item` under `key`, cut to the `fields` asked for."""
    return {key: query.project_fields(item, _fields(request))}


# --- discovery --------------------------------------------------------------------------------


@router.get("")
@router.get("/")
def versions(request: Request) -> dict[str, Any]:
    return views.versions(str(request.base_url))


@router.get(V2)
@router.get(V2 + "/")
def resources(request: Request, _ctx: Ctx) -> dict[str, Any]:
    return views.resources(str(request.base_url))


@router.get(V2 + "/extensions")
def list_extensions(_ctx: Ctx) -> dict[str, Any]:
    return {"extensions": [views.extension(*ext) for ext in views.EXTENSIONS]}


@router.get(V2 + "/extensions/{alias}")
def show_extension(alias: str, _ctx: Ctx) -> dict[str, Any]:
    for ext in views.EXTENSIONS:
        if ext[0] == alias:
            return {"extension": views.extension(*ext)}
    raise ExtensionNotFound(alias)


def _empty(collection: str) -> Callable[..., dict[str, Any]]:
    def handler(_ctx: Ctx) -> dict[str, Any]:
        return {collection: []}

    handler.__name__ = f"list_{collection}"
    return handler


for _collection in EMPTY_COLLECTIONS:
    router.add_api_route(f"{V2}/{_collection}", _empty(_collection), methods=["GET"])


# --- networks ---------------------------------------------------------------------------------


def _networks(session: Session, ctx: RequestContext, rows: Sequence[Network]) -> list[dict[str, Any]]:
    ids = networks.subnet_ids(session, [n.id for n in rows])
    return [views.network(n, ids[n.id], ctx.is_admin) for n in rows]


@router.get(V2 + "/networks")
def list_networks(request: Request, ctx: Ctx, rt: Rt) -> dict[str, Any]:
    listing = _listing(request, NETWORK_FILTERS)
    with rt.db.read() as session:
        items = _networks(session, ctx, networks.list_networks(session, ctx))
    return _page(request, listing, items, "networks")


@router.post(V2 + "/networks", status_code=201, openapi_extra=json_body(schemas.NETWORK_CREATE))
def create_network(ctx: Ctx, rt: Rt, body: JSON = None) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return {"network": _networks(session, ctx, [networks.create_network(session, ctx, body)])[0]}


@router.get(V2 + "/networks/{network_id}")
def show_network(request: Request, network_id: str, ctx: Ctx, rt: Rt) -> dict[str, Any]:
    with rt.db.read() as session:
        item = _networks(session, ctx, [networks.get_network(session, ctx, network_id)])[0]
    return _shown(request, "network", item)


@router.put(V2 + "/networks/{network_id}", openapi_extra=json_body(schemas.NETWORK_UPDATE))
def update_network(network_id: str, ctx: Ctx, rt: Rt, body: JSON = None) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return {
            "network": _networks(session, ctx, [networks.update_network(session, ctx, network_id, body)])[0]
        }


@router.delete(V2 + "/networks/{network_id}", status_code=204)
def delete_network(network_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        networks.delete_network(session, ctx, network_id)
    return Response(status_code=204)


# --- subnets ----------------------------------------------------------------------------------


def _subnets(session: Session, rows: Sequence[Subnet]) -> list[dict[str, Any]]:
    pools = subnets.pools_by_subnet(session, [s.id for s in rows])
    return [views.subnet(s, pools[s.id]) for s in rows]


@router.get(V2 + "/subnets")
def list_subnets(request: Request, ctx: Ctx, rt: Rt) -> dict[str, Any]:
    listing = _listing(request, SUBNET_FILTERS)
    with rt.db.read() as session:
        items = _subnets(session, subnets.list_subnets(session, ctx))
    return _page(request, listing, items, "subnets")


@router.post(V2 + "/subnets", status_code=201, openapi_extra=json_body(schemas.SUBNET_CREATE))
def create_subnet(ctx: Ctx, rt: Rt, body: JSON = None) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return {"subnet": _subnets(session, [subnets.create_subnet(session, ctx, body)])[0]}


@router.get(V2 + "/subnets/{subnet_id}")
def show_subnet(request: Request, subnet_id: str, ctx: Ctx, rt: Rt) -> dict[str, Any]:
    with rt.db.read() as session:
        item = _subnets(session, [subnets.get_subnet(session, ctx, subnet_id)])[0]
    return _shown(request, "subnet", item)


@router.put(V2 + "/subnets/{subnet_id}", openapi_extra=json_body(schemas.SUBNET_UPDATE))
def update_subnet(subnet_id: str, ctx: Ctx, rt: Rt, body: JSON = None) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return {"subnet": _subnets(session, [subnets.update_subnet(session, ctx, subnet_id, body)])[0]}


@router.delete(V2 + "/subnets/{subnet_id}", status_code=204)
def delete_subnet(subnet_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        subnets.delete_subnet(session, ctx, subnet_id)
    return Response(status_code=204)


# --- ports ------------------------------------------------------------------------------------


def _ports(session: Session, ctx: RequestContext, rows: Sequence[Port]) -> list[dict[str, Any]]:
    ids = [p.id for p in rows]
    fixed, groups = ports.fixed_ips(session, ids), ports.group_ids(session, ids)
    return [views.port(p, fixed[p.id], groups[p.id], ctx.is_admin) for p in rows]


@router.get(V2 + "/ports")
def list_ports(request: Request, ctx: Ctx, rt: Rt) -> dict[str, Any]:
    listing = _listing(request, PORT_FILTERS)
    network_ids, device_ids = listing.filters.get("network_id", []), listing.filters.get("device_id", [])
    with rt.db.read() as session:
        items = _ports(session, ctx, ports.list_ports(session, ctx, network_ids, device_ids))
    return _page(request, listing, items, "ports")


@router.post(V2 + "/ports", status_code=201, openapi_extra=json_body(schemas.PORT_CREATE))
def create_port(ctx: Ctx, rt: Rt, body: JSON = None) -> dict[str, Any]:
    with _filtering(rt) as session:
        return {"port": _ports(session, ctx, [ports.create_port(session, ctx, body)])[0]}


@router.get(V2 + "/ports/{port_id}")
def show_port(request: Request, port_id: str, ctx: Ctx, rt: Rt) -> dict[str, Any]:
    with rt.db.read() as session:
        item = _ports(session, ctx, [ports.get_port(session, ctx, port_id)])[0]
    return _shown(request, "port", item)


@router.put(V2 + "/ports/{port_id}", openapi_extra=json_body(schemas.PORT_UPDATE))
def update_port(port_id: str, ctx: Ctx, rt: Rt, body: JSON = None) -> dict[str, Any]:
    with _filtering(rt) as session:
        return {"port": _ports(session, ctx, [ports.update_port(session, ctx, port_id, body)])[0]}


@router.delete(V2 + "/ports/{port_id}", status_code=204)
def delete_port(port_id: str, ctx: Ctx, rt: Rt) -> Response:
    with _filtering(rt) as session:
        ports.delete_port(session, ctx, port_id)
    return Response(status_code=204)


# --- security groups and rules ----------------------------------------------------------------


def _groups(session: Session, rows: Sequence[SecurityGroup]) -> list[dict[str, Any]]:
    ids = [g.id for g in rows]
    rules, defaults = (
        security_groups.rules_by_group(session, ids),
        security_groups.default_group_ids(session, ids),
    )
    return [views.security_group(g, rules[g.id], g.id in defaults) for g in rows]


def _rules(session: Session, rows: Sequence[SecurityGroupRule]) -> list[dict[str, Any]]:
    defaults = security_groups.default_group_ids(session, list({r.security_group_id for r in rows}))
    return [views.rule(r, r.security_group_id in defaults) for r in rows]


@router.get(V2 + "/security-groups")
def list_security_groups(request: Request, ctx: Ctx, rt: Rt) -> dict[str, Any]:
    listing = _listing(request, GROUP_FILTERS)
    with rt.db.transaction() as session:  # a project's first look creates its default group
        items = _groups(session, security_groups.list_groups(session, ctx))
    return _page(request, listing, items, "security_groups")


@router.post(V2 + "/security-groups", status_code=201, openapi_extra=json_body(schemas.SECURITY_GROUP_CREATE))
def create_security_group(ctx: Ctx, rt: Rt, body: JSON = None) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return {"security_group": _groups(session, [security_groups.create_group(session, ctx, body)])[0]}


@router.get(V2 + "/security-groups/{group_id}")
def show_security_group(request: Request, group_id: str, ctx: Ctx, rt: Rt) -> dict[str, Any]:
    with rt.db.read() as session:
        item = _groups(session, [security_groups.get_group(session, ctx, group_id)])[0]
    return _shown(request, "security_group", item)


@router.put(V2 + "/security-groups/{group_id}", openapi_extra=json_body(schemas.SECURITY_GROUP_UPDATE))
def update_security_group(group_id: str, ctx: Ctx, rt: Rt, body: JSON = None) -> dict[str, Any]:
    with rt.db.transaction() as session:
        group = security_groups.update_group(session, ctx, group_id, body)
        return {"security_group": _groups(session, [group])[0]}


@router.delete(V2 + "/security-groups/{group_id}", status_code=204)
def delete_security_group(group_id: str, ctx: Ctx, rt: Rt) -> Response:
    with _filtering(rt) as session:
        security_groups.delete_group(session, ctx, group_id)
    return Response(status_code=204)


@router.get(V2 + "/security-group-rules")
def list_security_group_rules(request: Request, ctx: Ctx, rt: Rt) -> dict[str, Any]:
    listing = _listing(request, RULE_FILTERS)
    with rt.db.transaction() as session:
        items = _rules(session, security_groups.list_rules(session, ctx))
    return _page(request, listing, items, "security_group_rules")


@router.post(
    V2 + "/security-group-rules", status_code=201, openapi_extra=json_body(schemas.SECURITY_GROUP_RULE_CREATE)
)
def create_security_group_rule(ctx: Ctx, rt: Rt, body: JSON = None) -> dict[str, Any]:
    with _filtering(rt) as session:
        return {"security_group_rule": _rules(session, [security_groups.create_rule(session, ctx, body)])[0]}


@router.get(V2 + "/security-group-rules/{rule_id}")
def show_security_group_rule(request: Request, rule_id: str, ctx: Ctx, rt: Rt) -> dict[str, Any]:
    with rt.db.read() as session:
        item = _rules(session, [security_groups.get_rule(session, ctx, rule_id)])[0]
    return _shown(request, "security_group_rule", item)


@router.delete(V2 + "/security-group-rules/{rule_id}", status_code=204)
def delete_security_group_rule(rule_id: str, ctx: Ctx, rt: Rt) -> Response:
    with _filtering(rt) as session:
        security_groups.delete_rule(session, ctx, rule_id)
    return Response(status_code=204)


# --- quotas -----------------------------------------------------------------------------------


def _may_read_quota(ctx: RequestContext, project_id: str) -> None:
    if not ctx.is_admin and project_id != ctx.project_id:
        raise Forbidden("Policy doesn't allow get_quota to be performed.")


@router.get(V2 + "/quotas")
def list_quotas(ctx: Ctx, rt: Rt) -> dict[str, Any]:
    ctx.require_admin()
    with rt.db.read() as session:
        found = quotas.projects_with_quotas(session)
    return {"quotas": [{**limits, "project_id": p, "tenant_id": p} for p, limits in found]}


@router.get(V2 + "/quotas/{project_id}")
def show_quota(project_id: str, ctx: Ctx, rt: Rt) -> dict[str, Any]:
    _may_read_quota(ctx, project_id)
    with rt.db.read() as session:
        return {"quota": quotas.limits(session, project_id)}


@router.get(V2 + "/quotas/{project_id}/details")
def show_quota_details(project_id: str, ctx: Ctx, rt: Rt) -> dict[str, Any]:
    _may_read_quota(ctx, project_id)
    with rt.db.read() as session:
        return {"quota": quotas.details(session, project_id)}


@router.get(V2 + "/quotas/{project_id}/default")
def show_quota_default(project_id: str, ctx: Ctx) -> dict[str, Any]:
    _may_read_quota(ctx, project_id)
    return {"quota": dict(quotas.DEFAULTS)}


@router.put(V2 + "/quotas/{project_id}", openapi_extra=json_body(schemas.QUOTA_UPDATE))
def update_quota(project_id: str, ctx: Ctx, rt: Rt, body: JSON = None) -> dict[str, Any]:
    ctx.require_admin()
    with rt.db.transaction() as session:
        return {"quota": quotas.update(session, project_id, body)}


@router.delete(V2 + "/quotas/{project_id}", status_code=204)
def delete_quota(project_id: str, ctx: Ctx, rt: Rt) -> Response:
    ctx.require_admin()
    with rt.db.transaction() as session:
        quotas.reset(session, project_id)
    return Response(status_code=204)
