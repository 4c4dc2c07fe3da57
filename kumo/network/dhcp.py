"""What a network's DHCP host must serve, as data, and which host serves it (networking notes
§3.6): the API side of the `network_sync` an agent runs. Served to the network host on
`GET /internal/v1/networks/{id}/dhcp` (kumo/agent/routes.py) for its `network_sync` task
(kumo/network/sync.py: who serves a network, and when a sync is enqueued).

    assign_host(session, network_id, host) -> str        the network's DHCP host (first one kept)
    host_of(session, network_id) -> str | None
    dhcp_state(session, network_id) -> dict               the full desired state, with its generation
    record_applied(session, network_id, host, generation) the agent applied that generation
    applied_generation(session, network_id) -> int | None
    dhcp_served(session, network_id, generation) -> dict  does its host serve that generation yet?

`dhcp_state` reads the network's generation in the same snapshot as the ports it lists, so an
agent that applied generation G serves at least every change committed with a generation ≤ G."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.network import ports, sync
from kumo.network.errors import InvalidInput, NetworkNotFound
from kumo.network.models import IPAllocation, Network, NetworkHost, Port, Subnet
from kumo.network.names import namespace_name
from kumo.network.networks import DHCP_OWNER
from kumo.validation import MAX_INT, int_text

METADATA_ADDRESS = "169.254.169.254"
MAX_SERVED_WAIT_SECONDS = 30


def assign_host(session: Session, network_id: str, host: str) -> str:
    """The host serving the network: the one already assigned, else `host` (one per network)."""
    current = host_of(session, network_id)
    if current is not None:
        return current
    session.add(NetworkHost(network_id=network_id, host=host))
    session.flush()
    return host


def host_of(session: Session, network_id: str) -> str | None:
    return session.scalar(select(NetworkHost.host).where(NetworkHost.network_id == network_id).limit(1))


def record_applied(session: Session, network_id: str, host: str, generation: int) -> None:
    """Generations only move forward: a late report of an older one changes nothing."""
    sync.record_applied(session, network_id, host, generation)


def applied_generation(session: Session, network_id: str) -> int | None:
    return session.scalar(
        select(NetworkHost.applied_generation).where(NetworkHost.network_id == network_id).limit(1)
    )


def dhcp_served(session: Session, network_id: str, generation: int) -> dict[str, Any]:
    """Whether the network's DHCP host has applied `generation` (or a later one): what a
    hypervisor asks before it starts a guest whose port came with that generation, so the
    guest's first DHCP DISCOVER finds its reservation. `served` is also true when no host serves
    the network (no network agent: nothing will ever apply it, nothing to wait for)."""
    if session.scalar(select(Network.id).where(Network.id == network_id)) is None:
        raise NetworkNotFound(network_id)
    row = session.execute(
        select(NetworkHost.host, NetworkHost.applied_generation)
        .where(NetworkHost.network_id == network_id)
        .limit(1)
    ).first()
    host, applied = (row[0], row[1]) if row is not None else (None, None)
    return {
        "network_id": network_id,
        "generation": generation,
        "host": host,
        "applied_generation": applied,
        "served": host is None or (applied is not None and applied >= generation),
    }


def parse_served_query(generation: str | None, wait: str | None) -> tuple[int, int]:
    """`?min=G&wait=S` of the long poll: the generation (required, 0..MAX_INT) and the seconds to
    wait for it (default 0, at most MAX_SERVED_WAIT_SECONDS)."""
    wanted = int_text(generation, 0, MAX_INT)
    if wanted is None:
        raise InvalidInput(f"min must be an integer from 0 to {MAX_INT}, got {generation!r}")
    seconds = int_text(wait, 0, MAX_INT) if wait is not None else 0
    if seconds is None:
        raise InvalidInput(f"wait must be a number of seconds, got {wait!r}")
    return wanted, min(seconds, MAX_SERVED_WAIT_SECONDS)


def _hostname(address: str) -> str:
    return "host-" + address.replace(".", "-")


def dhcp_state(session: Session, network_id: str) -> dict[str, Any]:
    network = session.get(Network, network_id)
    if network is None:
        raise NetworkNotFound(network_id)
    subnets = list(
        session.scalars(
            select(Subnet).where(Subnet.network_id == network_id).order_by(Subnet.created_at, Subnet.id)
        )
    )
    dhcp_subnets = {s.id for s in subnets if s.enable_dhcp}
    rows = session.execute(
        select(
            Port.id,
            Port.mac_address,
            Port.device_owner,
            Port.device_id,
            IPAllocation.subnet_id,
            IPAllocation.ip_address,
        )
        .join(IPAllocation, IPAllocation.port_id == Port.id)
        .where(Port.network_id == network_id, Port.admin_state_up.is_(True))
        .order_by(Port.id, IPAllocation.ip_address)
    )
    hosts: list[dict[str, str]] = []  # device_id: the instance whose metadata the address gets
    dhcp_port: dict[str, Any] | None = None
    for port_id, mac, owner, device_id, subnet_id, address in rows:
        if owner == DHCP_OWNER:
            if dhcp_port is None:
                dhcp_port = {"id": port_id, "mac_address": mac, "fixed_ips": []}
            dhcp_port["fixed_ips"].append({"subnet_id": subnet_id, "ip_address": address})
        elif subnet_id in dhcp_subnets:
            hosts.append(
                {
                    "port_id": port_id,
                    "mac_address": mac,
                    "subnet_id": subnet_id,
                    "ip_address": address,
                    "hostname": _hostname(address),
                    "device_id": device_id or "",
                }
            )
    return {
        "network_id": network.id,
        "generation": network.dhcp_generation,
        "mtu": network.mtu,
        # the host is the gateway of an external network's subnets (docs/networking.md)
        "router:external": network.external,
        "bridge": ports.bridge_name(network.id),
        "namespace": namespace_name(network.id),
        "metadata_address": METADATA_ADDRESS,
        "subnets": [
            {
                "id": s.id,
                "cidr": s.cidr,
                "gateway_ip": s.gateway_ip,
                "enable_dhcp": s.enable_dhcp,
                "dns_nameservers": list(s.dns_nameservers or []),
                "host_routes": list(s.host_routes or []),
            }
            for s in subnets
        ],
        "dhcp_port": dhcp_port,
        "hosts": hosts,
    }
