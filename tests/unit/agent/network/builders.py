"""Small builders of network specs for the data plane's unit tests."""

from __future__ import annotations

from kumo.agent.network.spec import HostRoute, NetworkSpec, Reservation, SubnetSpec

NET = "5a1d0c3e-7f6b-4c2a-9e11-0123456789ab"
DHCP_PORT = "d4c9a8b7-1111-4222-8333-444455556666"


def subnet(
    id: str = "s1",
    cidr: str = "10.0.0.0/24",
    gateway: str | None = "10.0.0.1",
    dhcp_ip: str = "10.0.0.2",
    dns: tuple[str, ...] = (),
    routes: tuple[HostRoute, ...] = (),
) -> SubnetSpec:
    return SubnetSpec(id, cidr, gateway, dhcp_ip, dns, routes)


def network(
    *subnets: SubnetSpec, reservations: tuple[Reservation, ...] = (), mtu: int = 1500, external: bool = False
) -> NetworkSpec:
    """A network of `subnets`; external: its gateways are the host's (as the API's state says)."""
    subnets = subnets or (subnet(),)
    gateways = tuple(f"{s.gateway_ip}/{s.prefixlen}" for s in subnets if s.gateway_ip)
    return NetworkSpec(
        NET, DHCP_PORT, mtu, subnets, reservations, generation=3, external=external, gateways=gateways
    )
