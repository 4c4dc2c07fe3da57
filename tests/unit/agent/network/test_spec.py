from __future__ import annotations

import pytest

from kumo.agent.network.spec import (
    PortFirewall,
    Reservation,
    Rule,
    SpecError,
    network_from_dhcp_state,
    network_from_json,
    port_firewall_from_json,
)

NET = "5a1d0c3e-7f6b-4c2a-9e11-0123456789ab"


def test_names_follow_neutron() -> None:
    spec = network_from_json({"id": NET, "dhcp_port_id": "d4c9a8b7-1111-4222"})
    assert spec.bridge == "brq5a1d0c3e-7f"
    assert spec.namespace == "qdhcp-" + NET
    assert (spec.bridge_veth, spec.ns_veth) == ("tapd4c9a8b7-11", "ns-d4c9a8b7-11")
    assert all(len(name) <= 15 for name in (spec.bridge, spec.bridge_veth, spec.ns_veth))
    assert not spec.has_dhcp


def test_network_from_json_normalises() -> None:
    spec = network_from_json(
        {
            "id": NET,
            "dhcp_port_id": "p0",
            "mtu": 1450,
            "generation": 7,
            "subnets": [
                {
                    "id": "s1",
                    "cidr": "10.0.0.7/24",
                    "gateway_ip": None,
                    "dhcp_ip": "10.0.0.2",
                    "dns_nameservers": ["9.9.9.9"],
                    "host_routes": [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}],
                }
            ],
            "reservations": [
                {"port_id": "p1", "mac": "FA:16:3E:00:00:01", "ip": "10.0.0.5", "hostname": "vm"}
            ],
        }
    )
    assert spec.subnets[0].cidr == "10.0.0.0/24"
    assert spec.subnets[0].gateway_ip is None
    assert spec.reservations[0].mac == "fa:16:3e:00:00:01"
    assert (spec.mtu, spec.generation) == (1450, 7)


@pytest.mark.parametrize(
    "change",
    [
        {"mtu": 20},
        {"subnets": [{"id": "s1", "cidr": "10.0.0.0/24", "dhcp_ip": "10.1.0.2"}]},
        {"subnets": [{"id": "s1", "cidr": "nonsense", "dhcp_ip": "10.0.0.2"}]},
        {"reservations": [{"port_id": "p1", "mac": "fa:16:3e:00:00", "ip": "10.0.0.5"}]},
        {"reservations": [{"port_id": "../etc", "mac": "fa:16:3e:00:00:01", "ip": "10.0.0.5"}]},
        {"reservations": [{"port_id": "p1", "mac": "fa:16:3e:00:00:01", "ip": "10.0.0.500"}]},
    ],
)
def test_malformed_network_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(SpecError):
        network_from_json({"id": NET, "dhcp_port_id": "p0", **change})


def test_port_firewall_from_the_shared_port_contract() -> None:
    port = port_firewall_from_json(
        {
            "id": "65c0ee9f-d6aa-4bbb",
            "network_id": NET,
            "mac_address": "fa:16:3e:c9:cb:f0",
            "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}],
            "tap": "tap65c0ee9f-d6",
            "rules": [
                {"direction": "ingress", "protocol": "TCP", "port_range_min": 22, "port_range_max": 22}
            ],
        }
    )
    assert port == PortFirewall(
        "65c0ee9f-d6aa-4bbb",
        "fa:16:3e:c9:cb:f0",
        ("10.0.0.5",),
        True,
        (Rule("ingress", "IPv4", "tcp", 22, 22),),
        "tap65c0ee9f-d6",
    )
    assert port.chain_id == "65c0ee9f-d6"


@pytest.mark.parametrize("rule", [{"direction": "sideways"}, {"direction": "ingress", "protocol": "gre!"}])
def test_malformed_rule_is_refused(rule: dict[str, object]) -> None:
    with pytest.raises(SpecError):
        port_firewall_from_json({"id": "p1", "mac_address": "fa:16:3e:00:00:01", "rules": [rule]})


def test_network_from_the_apis_dhcp_state() -> None:
    """The shape of kumo/network/dhcp.py:dhcp_state (what network_sync hands the network host)."""
    spec = network_from_dhcp_state(
        {
            "network_id": NET,
            "generation": 12,
            "mtu": 1500,
            "bridge": "brq5a1d0c3e-7f",
            "namespace": "qdhcp-" + NET,
            "metadata_address": "169.254.169.254",
            "subnets": [
                {
                    "id": "s1",
                    "cidr": "10.0.0.0/24",
                    "gateway_ip": "10.0.0.1",
                    "enable_dhcp": True,
                    "dns_nameservers": ["9.9.9.9"],
                    "host_routes": [{"destination": "10.9.0.0/16", "nexthop": "10.0.0.9"}],
                },
                {
                    "id": "s2",
                    "cidr": "10.0.1.0/24",
                    "gateway_ip": None,
                    "enable_dhcp": False,
                    "dns_nameservers": [],
                    "host_routes": [],
                },
            ],
            "dhcp_port": {
                "id": "d4c9a8b7-1111",
                "mac_address": "fa:16:3e:00:00:02",
                "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.2"}],
            },
            "hosts": [
                {
                    "port_id": "p1",
                    "mac_address": "fa:16:3e:00:00:05",
                    "subnet_id": "s1",
                    "ip_address": "10.0.0.5",
                    "hostname": "host-10-0-0-5",
                },
                {
                    "port_id": "p2",
                    "mac_address": "fa:16:3e:00:00:06",
                    "subnet_id": "s2",
                    "ip_address": "10.0.1.6",
                    "hostname": "host-10-0-1-6",
                },
            ],
        }
    )
    assert (spec.id, spec.generation, spec.dhcp_port_id) == (NET, 12, "d4c9a8b7-1111")
    assert [(s.id, s.dhcp_ip, s.host_routes[0].nexthop) for s in spec.subnets] == [
        ("s1", "10.0.0.2", "10.0.0.9")
    ]
    assert spec.reservations == (Reservation("p1", "fa:16:3e:00:00:05", "10.0.0.5", "host-10-0-0-5"),)
    # No DHCP port (no DHCP-enabled subnet): nothing to serve, no dnsmasq.
    bare = network_from_dhcp_state(
        {"network_id": NET, "generation": 1, "subnets": [], "dhcp_port": None, "hosts": []}
    )
    assert not bare.has_dhcp


def _external_state(external: object) -> dict[str, object]:
    """An external network's DHCP state: one DHCP subnet, one without DHCP, one without gateway."""
    return {
        "network_id": NET,
        "generation": 4,
        "router:external": external,
        "subnets": [
            {"id": "s1", "cidr": "172.24.4.0/24", "gateway_ip": "172.24.4.1", "enable_dhcp": True},
            {"id": "s2", "cidr": "172.24.5.0/25", "gateway_ip": "172.24.5.126", "enable_dhcp": False},
            {"id": "s3", "cidr": "172.24.6.0/24", "gateway_ip": None, "enable_dhcp": True},
        ],
        "dhcp_port": {
            "id": "d4c9a8b7-1111",
            "mac_address": "fa:16:3e:00:00:02",
            "fixed_ips": [
                {"subnet_id": "s1", "ip_address": "172.24.4.2"},
                {"subnet_id": "s3", "ip_address": "172.24.6.2"},
            ],
        },
        "hosts": [],
    }


def test_an_external_network_carries_every_subnets_gateway_for_the_host() -> None:
    spec = network_from_dhcp_state(_external_state(True))
    assert spec.external
    # Served or not, a subnet with a gateway has it on the host; one without gateway adds none.
    assert spec.gateways == ("172.24.4.1/24", "172.24.5.126/25")
    assert spec.host_addresses == spec.gateways
    assert (spec.host_gateway, spec.host_gateway_port) == ("gw-5a1d0c3e-7f", "gwp5a1d0c3e-7f")
    assert all(len(name) <= 15 for name in (spec.host_gateway, spec.host_gateway_port))
    assert [s.id for s in spec.subnets] == ["s1", "s3"]  # DHCP itself is unchanged


def test_a_network_not_external_gives_the_host_nothing() -> None:
    for state in (
        _external_state(False),
        {k: v for k, v in _external_state(True).items() if k != "router:external"},
    ):
        spec = network_from_dhcp_state(state)
        assert not spec.external
        assert spec.gateways == ("172.24.4.1/24", "172.24.5.126/25")
        assert spec.host_addresses == ()


@pytest.mark.parametrize(
    "change",
    [
        {"external": "yes"},
        {"external": 1},
        {"gateways": ["172.24.4.1"]},  # "ip/prefixlen" only: the subnet is the host's route
        {"gateways": ["172.24.4.0/24"]},  # the network address is no gateway
        {"gateways": ["172.24.4.255/24"]},
        {"gateways": ["not-an-address/24"]},
    ],
)
def test_malformed_external_fields_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(SpecError):
        network_from_json({"id": NET, "dhcp_port_id": "p0", **change})
