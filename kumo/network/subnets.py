"""Subnets (IPv4 only): CIDR, gateway and allocation pools checked by kumo/network/addressing.py,
DHCP settings, and the network's DHCP port (an address in every DHCP-enabled subnet). Every change
bumps the network's DHCP generation (ipam.lock_network) in the same transaction."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.network import addressing, ipam, networks, ports, quotas
from kumo.network.attrs import boolean, envelope, integer, project_of, text, uuid_text
from kumo.network.errors import (
    GatewayConflictWithAllocationPools,
    InvalidInput,
    IpAddressAlreadyAllocated,
    SubnetInUse,
    SubnetNotFound,
)
from kumo.network.models import AllocationPool, IPAllocation, Network, Port, Subnet

CREATE_ATTRS = frozenset(
    {
        "name",
        "description",
        "network_id",
        "ip_version",
        "cidr",
        "gateway_ip",
        "allocation_pools",
        "enable_dhcp",
        "dns_nameservers",
        "host_routes",
        "project_id",
        "subnetpool_id",
        "prefixlen",
        "use_default_subnet_pool",
        "ipv6_address_mode",
        "ipv6_ra_mode",
        "segment_id",
        "service_types",
        "tags",
    }
)
UPDATE_ATTRS = frozenset(
    {"name", "description", "gateway_ip", "allocation_pools", "enable_dhcp", "dns_nameservers", "host_routes"}
)


def get_subnet(session: Session, ctx: RequestContext, subnet_id: str) -> Subnet:
    subnet = session.scalar(
        select(Subnet)
        .join(Network, Network.id == Subnet.network_id)
        .where(Subnet.id == subnet_id, networks.visible(ctx))
    )
    if subnet is None:
        raise SubnetNotFound(subnet_id)
    return subnet


def list_subnets(session: Session, ctx: RequestContext) -> list[Subnet]:
    query = select(Subnet).join(Network, Network.id == Subnet.network_id).where(networks.visible(ctx))
    return list(session.scalars(query.order_by(Subnet.created_at, Subnet.id)))


def pools_by_subnet(session: Session, subnet_ids: list[str]) -> dict[str, list[dict[str, str]]]:
    pools: dict[str, list[addressing.Pool]] = {sid: [] for sid in subnet_ids}
    if subnet_ids:
        for row in session.scalars(select(AllocationPool).where(AllocationPool.subnet_id.in_(subnet_ids))):
            pools[row.subnet_id].append(
                addressing.Pool(ipaddress.IPv4Address(row.first_ip), ipaddress.IPv4Address(row.last_ip))
            )
    return {
        sid: [{"start": str(p.first), "end": str(p.last)} for p in sorted(found, key=lambda p: p.first)]
        for sid, found in pools.items()
    }


def _refuse_unsupported(attrs: dict[str, Any]) -> None:
    if attrs.get("subnetpool_id") is not None or attrs.get("prefixlen") is not None:
        raise InvalidInput("subnet pools are not supported by this cloud: give a cidr")
    if attrs.get("use_default_subnet_pool"):
        raise InvalidInput("subnet pools are not supported by this cloud: give a cidr")
    if attrs.get("ipv6_address_mode") is not None or attrs.get("ipv6_ra_mode") is not None:
        raise InvalidInput("IPv6 subnets are not supported by this cloud")
    if attrs.get("segment_id") is not None:
        raise InvalidInput("segments are not supported by this cloud")
    if attrs.get("service_types", []) != []:
        raise InvalidInput("service_types are not supported by this cloud")


def _gateway(network: ipaddress.IPv4Network, attrs: dict[str, Any]) -> ipaddress.IPv4Address | None:
    if "gateway_ip" not in attrs:
        return addressing.default_gateway(network)
    raw = attrs["gateway_ip"]
    gateway = None if raw is None else addressing.parse_address(raw, "gateway_ip")
    addressing.check_gateway(network, gateway)
    return gateway


def _write_pools(session: Session, subnet_id: str, pools: list[addressing.Pool]) -> None:
    session.execute(delete(AllocationPool).where(AllocationPool.subnet_id == subnet_id))
    for pool in pools:
        session.add(AllocationPool(subnet_id=subnet_id, first_ip=str(pool.first), last_ip=str(pool.last)))


def create_subnet(session: Session, ctx: RequestContext, body: object) -> Subnet:
    ctx.require_writer()
    attrs = envelope(body, "subnet", CREATE_ATTRS)
    _refuse_unsupported(attrs)
    if integer(attrs.get("ip_version", 4), "ip_version", 4, 6) != 4:
        raise InvalidInput("IPv6 subnets are not supported by this cloud")
    if "network_id" not in attrs:
        raise InvalidInput("network_id is required")
    if "cidr" not in attrs:
        raise InvalidInput("cidr is required (subnet pools are not supported by this cloud)")
    network_row = networks.owned_network(session, ctx, uuid_text(attrs["network_id"], "network_id"))
    project_id = project_of(attrs, ctx.project_id, ctx.is_admin)
    cidr = addressing.parse_cidr(attrs["cidr"])
    gateway = _gateway(cidr, attrs)
    if attrs.get("allocation_pools") is not None:
        pools = addressing.parse_pools(cidr, attrs["allocation_pools"], gateway)
    else:
        pools = addressing.default_pools(cidr, gateway)
    quotas.check(session, project_id, "subnet")
    ipam.lock_network(session, network_row.id)
    others = session.scalars(select(Subnet.cidr).where(Subnet.network_id == network_row.id))
    addressing.check_no_overlap(cidr, others)
    subnet = Subnet(
        id=str(uuid.uuid4()),
        network_id=network_row.id,
        project_id=project_id,
        name=text(attrs.get("name"), "name"),
        description=text(attrs.get("description"), "description"),
        ip_version=4,
        cidr=str(cidr),
        gateway_ip=None if gateway is None else str(gateway),
        enable_dhcp=boolean(attrs.get("enable_dhcp", True), "enable_dhcp"),
        dns_nameservers=addressing.parse_nameservers(attrs.get("dns_nameservers", [])),
        host_routes=addressing.parse_host_routes(attrs.get("host_routes", [])),
        tags=networks.tags_of(attrs.get("tags", [])),
    )
    session.add(subnet)
    session.flush()
    _write_pools(session, subnet.id, pools)
    session.flush()
    if subnet.enable_dhcp:
        ports.ensure_dhcp_address(session, network_row, subnet)
    return subnet


def update_subnet(session: Session, ctx: RequestContext, subnet_id: str, body: object) -> Subnet:
    ctx.require_writer()
    attrs = envelope(body, "subnet", UPDATE_ATTRS)
    subnet = get_subnet(session, ctx, subnet_id)
    network_row = networks.owned_network(session, ctx, subnet.network_id)
    ipam.lock_network(session, network_row.id)
    cidr = ipaddress.IPv4Network(subnet.cidr)
    if "name" in attrs:
        subnet.name = text(attrs["name"], "name")
    if "description" in attrs:
        subnet.description = text(attrs["description"], "description")
    gateway = None if subnet.gateway_ip is None else ipaddress.IPv4Address(subnet.gateway_ip)
    if "gateway_ip" in attrs:
        gateway = _gateway(cidr, attrs)
        if gateway is not None and str(gateway) in ipam.taken_in(session, subnet.id):
            raise IpAddressAlreadyAllocated(str(gateway), subnet.id)
        subnet.gateway_ip = None if gateway is None else str(gateway)
    if "allocation_pools" in attrs:
        _write_pools(session, subnet.id, addressing.parse_pools(cidr, attrs["allocation_pools"], gateway))
    elif "gateway_ip" in attrs and gateway is not None:
        for pool in ipam.pools_of(session, subnet.id):
            if gateway in pool:
                raise GatewayConflictWithAllocationPools(str(gateway), str(pool))
    if "dns_nameservers" in attrs:
        subnet.dns_nameservers = addressing.parse_nameservers(attrs["dns_nameservers"])
    if "host_routes" in attrs:
        subnet.host_routes = addressing.parse_host_routes(attrs["host_routes"])
    if "enable_dhcp" in attrs:
        enable = boolean(attrs["enable_dhcp"], "enable_dhcp")
        if enable and not subnet.enable_dhcp:
            session.flush()
            ports.ensure_dhcp_address(session, network_row, subnet)
        elif subnet.enable_dhcp and not enable:
            ports.drop_dhcp_address(session, network_row.id, subnet.id)
        subnet.enable_dhcp = enable
    subnet.revision_number += 1
    session.flush()
    return subnet


def delete_subnet(session: Session, ctx: RequestContext, subnet_id: str) -> None:
    """409 SubnetInUse while a port other than the DHCP port holds an address in it."""
    ctx.require_writer()
    subnet = get_subnet(session, ctx, subnet_id)
    networks.owned_network(session, ctx, subnet.network_id)
    ipam.lock_network(session, subnet.network_id)
    in_use = session.scalar(
        select(IPAllocation.port_id)
        .join(Port, Port.id == IPAllocation.port_id)
        .where(IPAllocation.subnet_id == subnet_id, Port.device_owner != networks.DHCP_OWNER)
        .limit(1)
    )
    if in_use is not None:
        raise SubnetInUse(subnet_id)
    ports.drop_dhcp_address(session, subnet.network_id, subnet_id)
    session.delete(subnet)
    session.flush()
