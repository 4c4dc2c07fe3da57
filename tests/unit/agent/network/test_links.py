"""The pure parts of a network's links: which addresses the namespace holds, and which of the
machine's routes an external network's gateways would collide with."""

from __future__ import annotations

import pytest

from kumo.agent.network.links import Route, route_conflicts, wanted_addresses
from tests.unit.agent.network.builders import network, subnet


def test_a_tenant_networks_gateway_lives_in_its_namespace() -> None:
    spec = network(subnet())
    assert wanted_addresses(spec) == {"169.254.169.254/32", "10.0.0.2/24", "10.0.0.1/24"}
    assert spec.host_addresses == ()


def test_an_external_networks_gateway_is_the_hosts_not_the_namespaces() -> None:
    spec = network(subnet(), external=True)
    # Never both: two holders of the gateway on one segment would answer ARP for it in turn.
    assert wanted_addresses(spec) == {"169.254.169.254/32", "10.0.0.2/24"}
    assert spec.host_addresses == ("10.0.0.1/24",)


ROUTES = [
    Route("default", "eth0"),
    Route("192.0.2.0/24", "eth0"),
    Route("10.8.0.0/16", "wg0"),
    Route("172.24.4.0/24", "gw-5a1d0c3e-7f"),  # the network's own connected route
    Route("198.51.100.7", "tun0"),  # a host route, printed without a prefix length
]


@pytest.mark.parametrize(
    ("gateways", "conflicts"),
    [
        (["172.24.4.1/24"], []),  # only its own device routes it
        (["10.0.0.1/24"], []),
        (["192.0.2.1/24"], ["192.0.2.0/24 dev eth0"]),  # the machine's own LAN
        (["192.0.2.129/25"], ["192.0.2.0/24 dev eth0"]),  # inside it
        (["10.0.0.1/8"], ["10.8.0.0/16 dev wg0"]),  # containing another route
        (["198.51.100.1/24"], ["198.51.100.7 dev tun0"]),
        (["172.24.4.1/24", "10.8.1.1/24"], ["10.8.0.0/16 dev wg0"]),  # any of several subnets
    ],
)
def test_route_conflicts(gateways: list[str], conflicts: list[str]) -> None:
    assert route_conflicts(gateways, ROUTES, "gw-5a1d0c3e-7f") == conflicts
