"""The metadata bundle's ports, read from the networking service's tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kumo.api.context import RequestContext
from kumo.db import Database
from kumo.metadata.ports import ports_of
from kumo.metadata.render import network_data
from kumo.network import networks, servers, subnets
from kumo.network.servers import RequestedNetwork
from kumo.schema import metadata
from tests.unit.metadata.builders import bundle

ALICE = RequestContext(user_id="u-alice", project_id="p-alice", roles=("member",))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'md.db'}")
    metadata.create_all(database.engine)
    yield database
    database.dispose()


def test_a_servers_ports_reach_network_data_with_their_subnets(db: Database) -> None:
    with db.transaction() as session:
        dhcp_net = networks.create_network(session, ALICE, {"network": {"name": "net-dhcp"}})
        subnets.create_subnet(
            session,
            ALICE,
            {"subnet": {"network_id": dhcp_net.id, "cidr": "10.0.0.0/24", "dns_nameservers": ["10.0.0.53"]}},
        )
        static_net = networks.create_network(session, ALICE, {"network": {"name": "net-static"}})
        subnets.create_subnet(
            session,
            ALICE,
            {
                "subnet": {
                    "network_id": static_net.id,
                    "cidr": "192.168.5.0/24",
                    "enable_dhcp": False,
                    "host_routes": [{"destination": "172.16.0.0/16", "nexthop": "192.168.5.254"}],
                }
            },
        )
        servers.allocate_for_server(
            session,
            ALICE,
            "srv-1",
            [
                RequestedNetwork(network_id=dhcp_net.id, fixed_ip="10.0.0.7"),
                RequestedNetwork(network_id=static_net.id, fixed_ip="192.168.5.9"),
            ],
            project_id="p-alice",
        )
    with db.read() as session:
        assert ports_of(session, "srv-none") == []
        found = ports_of(session, "srv-1")
    assert [p.network_id for p in found] == [dhcp_net.id, static_net.id]
    first, second = found
    assert first.tap == "tap" + first.id[:11] and first.mac_address.startswith("fa:16:3e:")
    assert first.fixed_ips[0].cidr == "10.0.0.0/24" and first.fixed_ips[0].dns_nameservers == ["10.0.0.53"]

    doc = network_data(bundle(ports=found))
    assert [link["ethernet_mac_address"] for link in doc["links"]] == [first.mac_address, second.mac_address]
    dhcp, static = doc["networks"]
    assert dhcp["type"] == "ipv4_dhcp" and dhcp["network_id"] == dhcp_net.id
    assert static["type"] == "ipv4" and static["ip_address"] == "192.168.5.9"
    assert static["netmask"] == "255.255.255.0"
    assert {"network": "172.16.0.0", "netmask": "255.255.0.0", "gateway": "192.168.5.254"} in static["routes"]
    assert doc["services"] == [{"type": "dns", "address": "10.0.0.53"}]
