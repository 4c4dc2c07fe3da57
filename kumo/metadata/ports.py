"""An instance's ports as the metadata bundle holds them (network_data.json, EC2's local-ipv4),
read from the networking service: its spec ports (the agents' port contract) and their subnets.
Registered as kumo.metadata.backend's ports hook at start-up (kumo.wiring.install).

A few statements by key per instance (its ports, their addresses, networks and subnets), run
once per cache expiry of that instance's bundle, never per metadata request."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.metadata.bundle import FixedIp, PortInfo
from kumo.network import servers
from kumo.network.models import Subnet


def ports_of(session: Session, instance_uuid: str) -> list[PortInfo]:
    """The ports of server `instance_uuid` in NIC order, each address with its subnet."""
    spec_ports = servers.server_ports(session, instance_uuid)
    subnet_ids = {ip["subnet_id"] for port in spec_ports for ip in port["fixed_ips"]}
    if not subnet_ids:
        subnets: dict[str, Subnet] = {}
    else:
        subnets = {s.id: s for s in session.scalars(select(Subnet).where(Subnet.id.in_(subnet_ids)))}
    return [
        PortInfo(
            id=port["id"],
            network_id=port["network_id"],
            mac_address=port["mac_address"],
            mtu=port["mtu"],
            tap=port["tap"],
            fixed_ips=[_fixed_ip(ip, subnets.get(ip["subnet_id"])) for ip in port["fixed_ips"]],
        )
        for port in spec_ports
    ]


def _fixed_ip(ip: dict[str, str], subnet: Subnet | None) -> FixedIp:
    if subnet is None:  # deleted meanwhile: the address alone
        return FixedIp(ip_address=ip["ip_address"], subnet_id=ip["subnet_id"])
    return FixedIp(
        ip_address=ip["ip_address"],
        subnet_id=subnet.id,
        cidr=subnet.cidr,
        gateway_ip=subnet.gateway_ip,
        enable_dhcp=subnet.enable_dhcp,
        dns_nameservers=list(subnet.dns_nameservers or []),
        host_routes=list(subnet.host_routes or []),
    )
