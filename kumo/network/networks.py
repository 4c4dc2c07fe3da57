"""Networks (Neutron semantics): who sees and changes which, create with provider attributes,
update, delete (with its subnets and DHCP port; any other port is 409 NetworkInUse).

Functions run inside the caller's transaction. Members see their own networks and shared ones;
admins see and act on every project's.

`router:external` (admin only, as Neutron's policy has it) makes the network's host the gateway
of its subnets: the network host puts each subnet's gateway_ip on the network's bridge side in
its root namespace, so that machine reaches the network's guests (docs/networking.md). It is a
DHCP-state change (a new generation) when it changes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select, true
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.errors import Forbidden
from kumo.network import ipam, quotas
from kumo.network.attrs import boolean, envelope, integer, project_of, text
from kumo.network.errors import InvalidInput, NetworkInUse, NetworkNotFound
from kumo.network.models import Network, Port, Subnet

DHCP_OWNER = "network:dhcp"
NETWORK_TYPES = ("local", "flat", "vlan")
CREATE_ATTRS = frozenset(
    {
        "name",
        "description",
        "admin_state_up",
        "shared",
        "mtu",
        "port_security_enabled",
        "project_id",
        "provider:network_type",
        "provider:physical_network",
        "provider:segmentation_id",
        "router:external",
        "availability_zone_hints",
        "is_default",
        "tags",
    }
)
UPDATE_ATTRS = frozenset(
    {"name", "description", "admin_state_up", "shared", "mtu", "port_security_enabled", "router:external"}
)


def visible(ctx: RequestContext) -> Any:
    """The SQL condition of the networks `ctx` may see."""
    if ctx.is_admin:
        return true()
    return or_(Network.project_id == ctx.project_id, Network.shared.is_(True))


def get_network(session: Session, ctx: RequestContext, network_id: str) -> Network:
    network = session.scalar(select(Network).where(Network.id == network_id, visible(ctx)))
    if network is None:
        raise NetworkNotFound(network_id)
    return network


def owned_network(session: Session, ctx: RequestContext, network_id: str) -> Network:
    """A network `ctx` may change: its own (or any, for an admin); a shared one it only sees is 403."""
    network = get_network(session, ctx, network_id)
    if not ctx.owns(network.project_id):
        raise Forbidden(f"Policy doesn't allow this operation on network {network_id}.")
    return network


def list_networks(session: Session, ctx: RequestContext) -> list[Network]:
    return list(session.scalars(select(Network).where(visible(ctx)).order_by(Network.created_at, Network.id)))


def subnet_ids(session: Session, network_ids: Sequence[str]) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {nid: [] for nid in network_ids}
    if network_ids:
        rows = session.execute(
            select(Subnet.network_id, Subnet.id)
            .where(Subnet.network_id.in_(network_ids))
            .order_by(Subnet.created_at, Subnet.id)
        )
        for network_id, subnet_id in rows:
            ids[network_id].append(subnet_id)
    return ids


def _provider(attrs: dict[str, Any], ctx: RequestContext) -> tuple[str, str | None, int | None]:
    keys = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
    if not any(k in attrs for k in keys):
        return "local", None, None
    ctx.require_admin()
    network_type = text(attrs.get("provider:network_type") or "local", "provider:network_type", 16)
    if network_type not in NETWORK_TYPES:
        raise InvalidInput(
            f"provider:network_type {network_type} is not supported (one of {', '.join(NETWORK_TYPES)})"
        )
    physnet = attrs.get("provider:physical_network")
    segment = attrs.get("provider:segmentation_id")
    if network_type == "local":
        if physnet is not None or segment is not None:
            raise InvalidInput("a local network takes no physical network or segmentation id")
        return network_type, None, None
    if not physnet:
        raise InvalidInput(f"provider:physical_network is required for a {network_type} network")
    if network_type == "flat":
        if segment is not None:
            raise InvalidInput("a flat network takes no segmentation id")
        return network_type, text(physnet, "provider:physical_network", 64), None
    if segment is None:
        raise InvalidInput("provider:segmentation_id is required for a vlan network")
    return (
        network_type,
        text(physnet, "provider:physical_network", 64),
        integer(segment, "segmentation_id", 1, 4094),
    )


def tags_of(raw: object) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(t, str) and 0 < len(t) <= 255 for t in raw):
        raise InvalidInput("tags must be a list of strings of 1 to 255 characters")
    return sorted(set(raw))


def create_network(session: Session, ctx: RequestContext, body: object) -> Network:
    ctx.require_writer()
    attrs = envelope(body, "network", CREATE_ATTRS)
    project_id = project_of(attrs, ctx.project_id, ctx.is_admin)
    shared = boolean(attrs.get("shared", False), "shared")
    if shared:
        ctx.require_admin()
    external = boolean(attrs.get("router:external", False), "router:external")
    if external:
        ctx.require_admin()
    if boolean(attrs.get("is_default", False), "is_default"):
        raise InvalidInput("is_default networks (auto-allocated topology) are not supported by this cloud")
    hints = attrs.get("availability_zone_hints", [])
    if hints not in ([], ["nova"]):
        raise InvalidInput("availability_zone_hints: the only availability zone is 'nova'")
    network_type, physnet, segment = _provider(attrs, ctx)
    quotas.check(session, project_id, "network")
    network = Network(
        id=str(uuid.uuid4()),
        project_id=project_id,
        name=text(attrs.get("name"), "name"),
        description=text(attrs.get("description"), "description"),
        admin_state_up=boolean(attrs.get("admin_state_up", True), "admin_state_up"),
        shared=shared,
        external=external,
        mtu=integer(attrs.get("mtu", 1500), "mtu", 68, 9000),
        port_security_enabled=boolean(attrs.get("port_security_enabled", True), "port_security_enabled"),
        network_type=network_type,
        physical_network=physnet,
        segmentation_id=segment,
        tags=tags_of(attrs.get("tags", [])),
    )
    session.add(network)
    session.flush()
    return network


def update_network(session: Session, ctx: RequestContext, network_id: str, body: object) -> Network:
    ctx.require_writer()
    attrs = envelope(body, "network", UPDATE_ATTRS)
    network = owned_network(session, ctx, network_id)
    if "router:external" in attrs:
        ctx.require_admin()
        external = boolean(attrs["router:external"], "router:external")
    if "mtu" in attrs or "router:external" in attrs:
        mtu = integer(attrs.get("mtu", network.mtu), "mtu", 68, 9000)
        # The MTU is a DHCP option and router:external moves the gateways: a new generation,
        # counted in the database (never from a value read earlier in this transaction), before
        # anything else changes here.
        ipam.lock_network(session, network.id)
        session.refresh(network)
    if "name" in attrs:
        network.name = text(attrs["name"], "name")
    if "description" in attrs:
        network.description = text(attrs["description"], "description")
    if "admin_state_up" in attrs:
        network.admin_state_up = boolean(attrs["admin_state_up"], "admin_state_up")
    if "shared" in attrs:
        ctx.require_admin()
        network.shared = boolean(attrs["shared"], "shared")
    if "mtu" in attrs:
        network.mtu = mtu
    if "router:external" in attrs:
        network.external = external
    if "port_security_enabled" in attrs:
        network.port_security_enabled = boolean(attrs["port_security_enabled"], "port_security_enabled")
    network.revision_number += 1
    session.flush()
    return network


def delete_network(session: Session, ctx: RequestContext, network_id: str) -> None:
    """Deletes the network with its subnets and DHCP port; any other port: 409 NetworkInUse."""
    ctx.require_writer()
    network = owned_network(session, ctx, network_id)
    # no port or subnet is made on it meanwhile; its host gets a sync, finds it gone, removes it
    ipam.lock_network(session, network_id)
    in_use = session.scalar(
        select(Port.id).where(Port.network_id == network_id, Port.device_owner != DHCP_OWNER).limit(1)
    )
    if in_use is not None:
        raise NetworkInUse(network_id)
    session.execute(delete(Port).where(Port.network_id == network_id))  # allocations cascade
    session.execute(delete(Subnet).where(Subnet.network_id == network_id))  # pools cascade
    session.delete(network)
    session.flush()
