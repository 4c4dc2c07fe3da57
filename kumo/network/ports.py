"""Ports (Neutron semantics): addresses and MAC from IPAM (kumo/network/ipam.py, under the
network's lock, which also bumps its DHCP generation), security groups (the project's `default`
unless told otherwise; none when port security is off), admin-only binding attributes, and the
network's DHCP port. Functions run inside the caller's transaction. A change of what a host's
firewall holds (a port made or deleted; its addresses, MAC, groups, port security or binding)
makes a firewall sync pending on the hosts it affects (kumo/network/firewall.py).

Deviation from Neutron, until hot-unplug exists: a port in use by a server (device_owner
`compute:*`) cannot be deleted through the API (409 PortInUse)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, or_, select, true
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.errors import Forbidden
from kumo.network import firewall, ipam, networks, quotas, security_groups
from kumo.network.addressing import normalise_mac
from kumo.network.attrs import boolean, envelope, project_of, text, uuid_text
from kumo.network.errors import InvalidInput, MacAddressInUse, PortInUse, PortNotFound
from kumo.network.ipam import FixedIpRequest
from kumo.network.models import IPAllocation, Network, Port, PortSecurityGroup, Subnet

VNIC_TYPES = ("normal", "baremetal")
BINDING_ADMIN = ("binding:host_id", "binding:profile")
CREATE_ATTRS = frozenset(
    {
        "name",
        "description",
        "network_id",
        "project_id",
        "admin_state_up",
        "mac_address",
        "fixed_ips",
        "device_id",
        "device_owner",
        "security_groups",
        "port_security_enabled",
        "binding:host_id",
        "binding:vnic_type",
        "binding:profile",
        "allowed_address_pairs",
        "extra_dhcp_opts",
        "dns_name",
        "tags",
    }
)
UPDATE_ATTRS = CREATE_ATTRS - {"network_id", "project_id", "tags"}


@dataclass
class PortRequest:
    """What a new port is made of, validated (the API's body, or compute's request)."""

    network: Network
    project_id: str
    name: str = ""
    description: str = ""
    admin_state_up: bool = True
    mac_address: str | None = None
    fixed_ips: list[FixedIpRequest] | None = None
    device_id: str = ""
    device_owner: str = ""
    security_groups: list[str] = field(default_factory=list)
    port_security_enabled: bool = True
    host_id: str = ""
    vnic_type: str = "normal"
    profile: dict[str, Any] = field(default_factory=dict)
    created_for_server: bool = False
    server_nic_index: int = 0


def visible(ctx: RequestContext) -> Any:
    """Ports `ctx` sees: its own and those on its networks (all, for an admin)."""
    if ctx.is_admin:
        return true()
    owned_networks = select(Network.id).where(Network.project_id == ctx.project_id)
    return or_(Port.project_id == ctx.project_id, Port.network_id.in_(owned_networks))


def get_port(session: Session, ctx: RequestContext, port_id: str) -> Port:
    port = session.scalar(select(Port).where(Port.id == port_id, visible(ctx)))
    if port is None:
        raise PortNotFound(port_id)
    return port


def list_ports(
    session: Session, ctx: RequestContext, network_ids: Sequence[str] = (), device_ids: Sequence[str] = ()
) -> list[Port]:
    """Visible ports; `network_ids`/`device_ids` narrow in SQL (the hot filters)."""
    query = select(Port).where(visible(ctx))
    if network_ids:
        query = query.where(Port.network_id.in_(network_ids))
    if device_ids:
        query = query.where(Port.device_id.in_(device_ids))
    return list(session.scalars(query.order_by(Port.created_at, Port.id)))


def fixed_ips(session: Session, port_ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {pid: [] for pid in port_ids}
    if port_ids:
        rows = session.execute(
            select(IPAllocation.port_id, IPAllocation.subnet_id, IPAllocation.ip_address)
            .join(Subnet, Subnet.id == IPAllocation.subnet_id)
            .where(IPAllocation.port_id.in_(port_ids))
            .order_by(Subnet.created_at, Subnet.id, IPAllocation.ip_address)
        )
        for port_id, subnet_id, address in rows:
            found[port_id].append({"subnet_id": subnet_id, "ip_address": address})
    return found


def group_ids(session: Session, port_ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {pid: [] for pid in port_ids}
    if port_ids:
        rows = session.execute(
            select(PortSecurityGroup.port_id, PortSecurityGroup.security_group_id)
            .where(PortSecurityGroup.port_id.in_(port_ids))
            .order_by(PortSecurityGroup.security_group_id)
        )
        for port_id, group_id in rows:
            found[port_id].append(group_id)
    return found


def subnets_of(session: Session, network_id: str) -> list[Subnet]:
    query = select(Subnet).where(Subnet.network_id == network_id).order_by(Subnet.created_at, Subnet.id)
    return list(session.scalars(query))


def parse_fixed_ips(raw: object) -> list[FixedIpRequest]:
    if not isinstance(raw, list):
        raise InvalidInput("fixed_ips must be a list of {subnet_id, ip_address}")
    requests = []
    for item in raw:
        if not isinstance(item, dict) or not item or set(item) - {"subnet_id", "ip_address"}:
            raise InvalidInput("each of fixed_ips must be an object with subnet_id and/or ip_address")
        subnet_id = item.get("subnet_id")
        address = item.get("ip_address")
        if address is not None and not isinstance(address, str):
            raise InvalidInput(f"'{address}' is not a valid IP address")
        requests.append(
            FixedIpRequest(
                subnet_id=None if subnet_id is None else uuid_text(subnet_id, "subnet_id"), ip_address=address
            )
        )
    return requests


def _check_security(port_security: bool, groups: list[str]) -> None:
    if not port_security and groups:
        raise InvalidInput(
            "Port has security group associated. Cannot disable port security or ip address "
            "until security group is removed"
        )


def binding_details(request_host: str, vnic_type: str, network: Network) -> tuple[str, dict[str, Any]]:
    if not request_host:
        return "unbound", {}
    if vnic_type == "baremetal":
        return "other", {}
    return "bridge", {"port_filter": True, "bridge_name": bridge_name(network.id)}


def bridge_name(network_id: str) -> str:
    return "brq" + network_id[:11]


def tap_name(port_id: str) -> str:
    return "tap" + port_id[:11]


def make_port(session: Session, request: PortRequest) -> Port:
    """Write a port: lock the network (bumping its DHCP generation), choose its MAC and addresses,
    attach its groups. Quota and policy are the caller's."""
    network = request.network
    ipam.lock_network(session, network.id)
    mac = ipam.choose_mac(session, network.id, request.mac_address)
    pairs = ipam.allocate(session, network.id, subnets_of(session, network.id), request.fixed_ips)
    vif_type, vif_details = binding_details(request.host_id, request.vnic_type, network)
    port = Port(
        id=str(uuid.uuid4()),
        network_id=network.id,
        project_id=request.project_id,
        name=request.name,
        description=request.description,
        mac_address=mac,
        admin_state_up=request.admin_state_up,
        status="DOWN",
        device_id=request.device_id,
        device_owner=request.device_owner,
        port_security_enabled=request.port_security_enabled,
        binding_host_id=request.host_id,
        binding_vnic_type=request.vnic_type,
        binding_vif_type=vif_type,
        binding_vif_details=vif_details,
        binding_profile=request.profile,
        created_for_server=request.created_for_server,
        server_nic_index=request.server_nic_index,
    )
    session.add(port)
    session.flush()
    ipam.record(session, network.id, port.id, pairs)
    for group_id in request.security_groups:
        session.add(PortSecurityGroup(port_id=port.id, security_group_id=group_id))
    session.flush()
    firewall.request(session, firewall.hosts_of_ports(session, [port.id]))
    return port


def may_choose_addresses(ctx: RequestContext, network: Network) -> None:
    """Neutron's policy for create_port:mac_address and :fixed_ips:ip_address: admin or the
    network's owner."""
    if not ctx.owns(network.project_id):
        raise Forbidden("Policy doesn't allow create_port:mac_address/fixed_ips:ip_address to be performed.")


def _binding_attrs(ctx: RequestContext, attrs: dict[str, Any]) -> None:
    if any(key in attrs for key in BINDING_ADMIN):
        ctx.require_admin()
    if attrs.get("binding:vnic_type", "normal") not in VNIC_TYPES:
        raise InvalidInput(f"binding:vnic_type {attrs['binding:vnic_type']} is not supported")
    profile = attrs.get("binding:profile", {})
    if not isinstance(profile, dict):
        raise InvalidInput("binding:profile must be an object")


def _unsupported(attrs: dict[str, Any]) -> None:
    for key in ("allowed_address_pairs", "extra_dhcp_opts"):
        if attrs.get(key) not in (None, []):
            raise InvalidInput(f"{key} is not supported by this cloud yet")
    if attrs.get("dns_name") not in (None, ""):
        raise InvalidInput("dns_name is not supported by this cloud yet")


# Owners that kumo itself writes: a server's ports (compute:<az>, by kumo.network.servers) and
# the network's DHCP port (network:dhcp). A member setting them could slip a port into another
# project's server (its addresses, its network_data.json) or pose as a DHCP server.
_RESERVED_OWNERS = ("compute:", "network:")


def _device_policy(ctx: RequestContext, attrs: dict[str, Any], port: Port | None = None) -> None:
    """Only admins set a reserved device_owner, or change the device of a port a server holds."""
    if ctx.is_admin:
        return
    owner = attrs.get("device_owner")
    if isinstance(owner, str) and owner.startswith(_RESERVED_OWNERS):
        raise Forbidden(f"Policy doesn't allow setting device_owner to {owner}.")
    if port is not None and port.device_owner.startswith(_RESERVED_OWNERS) and port.device_id:
        for key in ("device_id", "device_owner"):
            if key in attrs and attrs[key] != getattr(port, key):
                raise PortInUse(port.id, port.device_id)


# A port's attributes that change what its network's DHCP server serves.
_SERVED_ATTRS = ("mac_address", "fixed_ips", "admin_state_up", "device_id", "device_owner")
# A port's attributes that change what the hosts' firewalls hold (kumo/network/firewall.py).
_FILTERED_ATTRS = (
    "mac_address",
    "fixed_ips",
    "security_groups",
    "port_security_enabled",
    "binding:host_id",
    "binding:vnic_type",
)


def _port_security_policy(ctx: RequestContext, attrs: dict[str, Any], network: Network) -> None:
    """Turning port security off or on is the network owner's (or an admin's), as Neutron's
    policy says: on a shared network a member could otherwise spoof a neighbour's address."""
    if "port_security_enabled" in attrs and not ctx.owns(network.project_id):
        raise Forbidden("Policy doesn't allow port_security_enabled to be set on this network.")


def create_port(session: Session, ctx: RequestContext, body: object) -> Port:
    ctx.require_writer()
    attrs = envelope(body, "port", CREATE_ATTRS)
    _unsupported(attrs)
    if "network_id" not in attrs:
        raise InvalidInput("network_id is required")
    network = networks.get_network(session, ctx, uuid_text(attrs["network_id"], "network_id"))
    project_id = project_of(attrs, ctx.project_id, ctx.is_admin)
    requests = None if attrs.get("fixed_ips") is None else parse_fixed_ips(attrs["fixed_ips"])
    mac = None if attrs.get("mac_address") is None else normalise_mac(attrs["mac_address"])
    if mac is not None or any(r.ip_address is not None for r in requests or ()):
        may_choose_addresses(ctx, network)
    _binding_attrs(ctx, attrs)
    _device_policy(ctx, attrs)
    _port_security_policy(ctx, attrs, network)
    port_security = boolean(
        attrs.get("port_security_enabled", network.port_security_enabled), "port_security_enabled"
    )
    quotas.check(session, project_id, "port")
    if not port_security and attrs.get("security_groups") is None:
        groups: list[str] = []
    else:
        groups = security_groups.resolve_for_port(session, ctx, project_id, attrs.get("security_groups"))
    _check_security(port_security, groups)
    request = PortRequest(
        network=network,
        project_id=project_id,
        name=text(attrs.get("name"), "name"),
        description=text(attrs.get("description"), "description"),
        admin_state_up=boolean(attrs.get("admin_state_up", True), "admin_state_up"),
        mac_address=mac,
        fixed_ips=requests,
        device_id=text(attrs.get("device_id"), "device_id"),
        device_owner=text(attrs.get("device_owner"), "device_owner"),
        security_groups=groups,
        port_security_enabled=port_security,
        host_id=text(attrs.get("binding:host_id"), "binding:host_id"),
        vnic_type=attrs.get("binding:vnic_type", "normal"),
        profile=dict(attrs.get("binding:profile") or {}),
    )
    port = make_port(session, request)
    port.tags = networks.tags_of(attrs.get("tags", []))
    return port


def replace_groups(session: Session, port: Port, groups: list[str]) -> None:
    session.execute(delete(PortSecurityGroup).where(PortSecurityGroup.port_id == port.id))
    for group_id in groups:
        session.add(PortSecurityGroup(port_id=port.id, security_group_id=group_id))


def update_port(session: Session, ctx: RequestContext, port_id: str, body: object) -> Port:
    ctx.require_writer()
    attrs = envelope(body, "port", UPDATE_ATTRS)
    _unsupported(attrs)
    port = get_port(session, ctx, port_id)
    if not ctx.owns(port.project_id):
        raise Forbidden(f"Policy doesn't allow update_port on port {port_id}.")
    network = session.get_one(Network, port.network_id)
    _binding_attrs(ctx, attrs)
    _device_policy(ctx, attrs, port)
    _port_security_policy(ctx, attrs, network)
    # What the network's DHCP server serves changes: a new generation, under the network's lock.
    if any(key in attrs for key in _SERVED_ATTRS):
        ipam.lock_network(session, network.id)
    filtered = any(key in attrs for key in _FILTERED_ATTRS)
    hosts_before = firewall.hosts_of_ports(session, [port.id]) if filtered else set()
    for key in ("name", "description", "device_id", "device_owner"):
        if key in attrs:
            setattr(port, key, text(attrs[key], key))
    if "admin_state_up" in attrs:
        port.admin_state_up = boolean(attrs["admin_state_up"], "admin_state_up")
    if "mac_address" in attrs:
        ctx.require_admin()
        mac = normalise_mac(attrs["mac_address"])
        if port.binding_host_id and mac != port.mac_address:
            raise InvalidInput("The MAC address of a bound port cannot change.")
        if mac != port.mac_address and ipam.mac_in_use(session, network.id, mac, except_port=port.id):
            raise MacAddressInUse(network.id, mac)
        port.mac_address = mac
    if "fixed_ips" in attrs:
        requests = parse_fixed_ips(attrs["fixed_ips"])
        if any(r.ip_address is not None for r in requests):
            may_choose_addresses(ctx, network)
        session.execute(delete(IPAllocation).where(IPAllocation.port_id == port.id))
        session.flush()
        ipam.record(
            session,
            network.id,
            port.id,
            ipam.allocate(session, network.id, subnets_of(session, network.id), requests),
        )
    security = boolean(
        attrs.get("port_security_enabled", port.port_security_enabled), "port_security_enabled"
    )
    if "security_groups" in attrs:
        groups = security_groups.resolve_for_port(
            session, ctx, port.project_id, attrs["security_groups"] or []
        )
    else:
        groups = group_ids(session, [port.id])[port.id]
    _check_security(security, groups)
    port.port_security_enabled = security
    if "security_groups" in attrs:
        replace_groups(session, port, groups)
    if "binding:host_id" in attrs:
        port.binding_host_id = text(attrs["binding:host_id"], "binding:host_id")
    if "binding:vnic_type" in attrs:
        port.binding_vnic_type = attrs["binding:vnic_type"]
    if "binding:profile" in attrs:
        port.binding_profile = dict(attrs["binding:profile"] or {})
    port.binding_vif_type, port.binding_vif_details = binding_details(
        port.binding_host_id, port.binding_vnic_type, network
    )
    port.revision_number += 1
    session.flush()
    if filtered:
        firewall.request(session, hosts_before | firewall.hosts_of_ports(session, [port.id]))
    return port


def delete_port(session: Session, ctx: RequestContext, port_id: str) -> None:
    ctx.require_writer()
    port = get_port(session, ctx, port_id)
    if not ctx.owns(port.project_id) and not ctx.owns(session.get_one(Network, port.network_id).project_id):
        raise Forbidden(f"Policy doesn't allow delete_port on port {port_id}.")
    if port.device_owner.startswith("compute:") and port.device_id:
        raise PortInUse(port.id, port.device_id)
    ipam.lock_network(session, port.network_id)
    affected = firewall.hosts_of_ports(session, [port.id])
    session.delete(port)
    session.flush()
    firewall.request(session, affected)


# --- the network's DHCP port ------------------------------------------------------------------


def dhcp_port(session: Session, network_id: str) -> Port | None:
    return session.scalar(
        select(Port)
        .where(Port.network_id == network_id, Port.device_owner == networks.DHCP_OWNER)
        .order_by(Port.created_at, Port.id)
        .limit(1)
    )


def ensure_dhcp_address(session: Session, network: Network, subnet: Subnet) -> Port:
    """The network's DHCP port, made on its first DHCP-enabled subnet, holding the first free
    address of `subnet` (Neutron's DHCP agent takes the first free one)."""
    port = dhcp_port(session, network.id)
    if port is None:
        return make_port(
            session,
            PortRequest(
                network=network,
                project_id=network.project_id,
                fixed_ips=[FixedIpRequest(subnet_id=subnet.id)],
                device_id=f"dhcp-{network.id}",
                device_owner=networks.DHCP_OWNER,
                port_security_enabled=False,
            ),
        )
    ipam.lock_network(session, network.id)
    pairs = ipam.allocate(session, network.id, [subnet], [FixedIpRequest(subnet_id=subnet.id)])
    ipam.record(session, network.id, port.id, pairs)
    return port


def drop_dhcp_address(session: Session, network_id: str, subnet_id: str) -> None:
    """Free the DHCP port's address in `subnet_id`; the port goes with its last address."""
    port = dhcp_port(session, network_id)
    if port is None:
        return
    session.execute(
        delete(IPAllocation).where(IPAllocation.port_id == port.id, IPAllocation.subnet_id == subnet_id)
    )
    left = session.scalar(select(IPAllocation.ip_address).where(IPAllocation.port_id == port.id).limit(1))
    if left is None:
        session.delete(port)
    session.flush()
