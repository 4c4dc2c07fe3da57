"""The networking domain over a real SQLite database: subnets and their DHCP port, IPAM, the
default security group, quotas, and the functions compute will call for a server's ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kumo.api.context import RequestContext
from kumo.db import Database
from kumo.errors import Conflict, Forbidden
from kumo.network import dhcp, networks, ports, quotas, security_groups, servers, subnets
from kumo.network.errors import (
    InvalidInput,
    IpAddressAlreadyAllocated,
    IpAddressGenerationFailure,
    MacAddressInUse,
    NetworkInUse,
    NetworkNotFound,
    OverQuota,
    PortInUse,
    PortNotFound,
    SubnetInUse,
)
from kumo.network.models import Network, Port, PortSecurityGroup
from kumo.network.servers import RequestedNetwork
from kumo.schema import metadata

ADMIN = RequestContext(user_id="u-admin", project_id="p-admin", roles=("admin", "member"))
ALICE = RequestContext(user_id="u-alice", project_id="p-alice", roles=("member",))
BOB = RequestContext(user_id="u-bob", project_id="p-bob", roles=("member",))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'net.db'}")
    metadata.create_all(database.engine)
    yield database
    database.dispose()


def make_net(
    db: Database, ctx: RequestContext = ALICE, cidr: str | None = "10.0.0.0/28", **attrs: Any
) -> str:
    with db.transaction() as session:
        network = networks.create_network(session, ctx, {"network": {"name": "net1", **attrs}})
        if cidr is not None:
            subnets.create_subnet(session, ctx, {"subnet": {"network_id": network.id, "cidr": cidr}})
        return network.id


def create_port(db: Database, ctx: RequestContext, network_id: str, **attrs: Any) -> dict[str, Any]:
    with db.transaction() as session:
        port = ports.create_port(session, ctx, {"port": {"network_id": network_id, **attrs}})
        return {
            "id": port.id,
            "mac": port.mac_address,
            "ips": [ip["ip_address"] for ip in ports.fixed_ips(session, [port.id])[port.id]],
            "groups": ports.group_ids(session, [port.id])[port.id],
        }


def generation(db: Database, network_id: str) -> int:
    with db.read() as session:
        return session.get_one(Network, network_id).dhcp_generation


def test_a_dhcp_subnet_gets_the_dhcp_port_at_its_first_free_address(db: Database) -> None:
    net = make_net(db)
    with db.read() as session:
        dhcp = ports.dhcp_port(session, net)
        assert dhcp is not None and dhcp.device_owner == "network:dhcp"
        assert ports.fixed_ips(session, [dhcp.id])[dhcp.id][0]["ip_address"] == "10.0.0.2"
        assert not dhcp.port_security_enabled
    assert create_port(db, ALICE, net)["ips"] == ["10.0.0.3"]


def test_every_port_change_bumps_the_dhcp_generation(db: Database) -> None:
    net = make_net(db)
    before = generation(db, net)
    port = create_port(db, ALICE, net)
    assert generation(db, net) == before + 1
    with db.transaction() as session:
        ports.update_port(session, ALICE, port["id"], {"port": {"fixed_ips": [{"ip_address": "10.0.0.9"}]}})
    assert generation(db, net) == before + 2
    with db.transaction() as session:
        ports.delete_port(session, ALICE, port["id"])
    assert generation(db, net) == before + 3


def test_explicit_addresses_and_macs_are_never_given_twice(db: Database) -> None:
    net = make_net(db)
    first = create_port(
        db, ALICE, net, fixed_ips=[{"ip_address": "10.0.0.9"}], mac_address="fa:16:3e:00:00:09"
    )
    assert first["ips"] == ["10.0.0.9"] and first["mac"] == "fa:16:3e:00:00:09"
    with pytest.raises(IpAddressAlreadyAllocated):
        create_port(db, ALICE, net, fixed_ips=[{"ip_address": "10.0.0.9"}])
    with pytest.raises(MacAddressInUse):
        create_port(db, ALICE, net, mac_address="FA:16:3E:00:00:09")
    with pytest.raises(IpAddressAlreadyAllocated):  # the gateway
        create_port(db, ALICE, net, fixed_ips=[{"ip_address": "10.0.0.1"}])
    with pytest.raises(InvalidInput, match="not a valid IP for network"):
        create_port(db, ALICE, net, fixed_ips=[{"ip_address": "10.9.9.9"}])


def test_an_exhausted_pool_is_a_409_and_a_freed_address_comes_back(db: Database) -> None:
    net = make_net(db, cidr="10.0.0.0/29")  # hosts .1-.6: gateway .1, DHCP .2, free .3-.6
    made = [create_port(db, ALICE, net) for _ in range(4)]
    assert [p["ips"][0] for p in made] == ["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    with pytest.raises(IpAddressGenerationFailure):
        create_port(db, ALICE, net)
    with db.transaction() as session:
        ports.delete_port(session, ALICE, made[1]["id"])
    assert create_port(db, ALICE, net)["ips"] == ["10.0.0.4"]


def test_ports_get_the_projects_default_group_made_once(db: Database) -> None:
    net = make_net(db)
    one, two = create_port(db, ALICE, net), create_port(db, ALICE, net)
    assert one["groups"] == two["groups"] and len(one["groups"]) == 1
    with db.read() as session:
        rules = security_groups.rules_by_group(session, one["groups"])[one["groups"][0]]
    shapes = sorted((r.direction, r.ethertype, r.remote_group_id is not None) for r in rules)
    assert shapes == [
        ("egress", "IPv4", False),
        ("egress", "IPv6", False),
        ("ingress", "IPv4", True),
        ("ingress", "IPv6", True),
    ]
    assert create_port(db, ALICE, net, port_security_enabled=False)["groups"] == []
    with pytest.raises(InvalidInput, match="security group"):
        create_port(db, ALICE, net, port_security_enabled=False, security_groups=one["groups"])


def test_visibility_and_ownership(db: Database) -> None:
    private = make_net(db, ALICE)
    shared = make_net(db, ADMIN, cidr="10.1.0.0/24", shared=True)
    with db.read() as session:
        seen = {n.id for n in networks.list_networks(session, BOB)}
        assert seen == {shared}
        with pytest.raises(NetworkNotFound):
            networks.get_network(session, BOB, private)
    with db.transaction() as session, pytest.raises(Forbidden):
        networks.update_network(session, BOB, shared, {"network": {"name": "mine"}})
    assert create_port(db, BOB, shared)["ips"] == ["10.1.0.3"]  # members use shared networks
    with pytest.raises(Forbidden):  # only the network's owner (or an admin) picks addresses
        create_port(db, BOB, shared, fixed_ips=[{"ip_address": "10.1.0.50"}])
    with db.transaction() as session, pytest.raises(Forbidden):
        networks.create_network(session, ALICE, {"network": {"name": "s", "shared": True}})


def test_members_cannot_slip_a_port_into_a_server_or_pose_as_dhcp(db: Database) -> None:
    """The owners kumo writes itself (compute:, network:) are an admin's; a port a server holds
    keeps its device; port security is the network owner's to change."""
    own = make_net(db, BOB)
    shared = make_net(db, ADMIN, cidr="10.1.0.0/24", shared=True)
    for owner in ("compute:nova", "network:dhcp"):
        with pytest.raises(Forbidden, match="device_owner"):
            create_port(db, BOB, own, device_owner=owner, device_id="alices-server")
    plain = create_port(db, BOB, own, device_id="something")
    with db.transaction() as session, pytest.raises(Forbidden):
        ports.update_port(session, BOB, plain["id"], {"port": {"device_owner": "compute:nova"}})
    with db.transaction() as session:
        (held,) = servers.allocate_for_server(
            session, BOB, "bobs-server", [RequestedNetwork(network_id=own)], project_id="p-bob"
        )
    with db.transaction() as session, pytest.raises(PortInUse):
        ports.update_port(session, BOB, held, {"port": {"device_id": "another-server"}})
    with pytest.raises(Forbidden, match="port_security_enabled"):
        create_port(db, BOB, shared, port_security_enabled=False)
    assert create_port(db, BOB, own, port_security_enabled=False)["groups"] == []  # on its own: fine
    admin_port = create_port(db, ADMIN, own, device_owner="network:router_interface")
    assert admin_port["ips"]


def test_changes_of_what_dhcp_serves_bump_the_generation(db: Database) -> None:
    net = make_net(db)
    port = create_port(db, ALICE, net)
    for change in ({"admin_state_up": False}, {"device_id": "x"}):
        before = generation(db, net)
        with db.transaction() as session:
            ports.update_port(session, ALICE, port["id"], {"port": change})
        assert generation(db, net) == before + 1
    before = generation(db, net)
    with db.transaction() as session:
        networks.update_network(session, ALICE, net, {"network": {"mtu": 1400, "name": "renamed"}})
    assert generation(db, net) == before + 1
    with db.read() as session:
        network = session.get_one(Network, net)
        assert (network.mtu, network.name) == (1400, "renamed")


def test_delete_rules(db: Database) -> None:
    net = make_net(db)
    port = create_port(db, ALICE, net)
    with db.transaction() as session, pytest.raises(NetworkInUse):
        networks.delete_network(session, ALICE, net)
    with db.read() as session:
        subnet_id = networks.subnet_ids(session, [net])[net][0]
    with db.transaction() as session, pytest.raises(SubnetInUse):
        subnets.delete_subnet(session, ALICE, subnet_id)
    with db.transaction() as session:
        ports.delete_port(session, ALICE, port["id"])
    with db.transaction() as session:
        networks.delete_network(session, ALICE, net)  # its subnet and DHCP port go with it
    with db.read() as session:
        assert session.scalars(select(Port)).all() == []


def test_quotas_count_the_projects_resources(db: Database) -> None:
    with db.transaction() as session:
        quotas.update(session, "p-alice", {"quota": {"network": 1, "port": 3}})
    net = make_net(db)  # one network: its DHCP port counts as a port
    with db.transaction() as session, pytest.raises(OverQuota):
        networks.create_network(session, ALICE, {"network": {"name": "two"}})
    create_port(db, ALICE, net)
    create_port(db, ALICE, net)
    with pytest.raises(OverQuota):
        create_port(db, ALICE, net)
    with db.transaction() as session, pytest.raises(InvalidInput, match="below"):
        quotas.update(session, "p-alice", {"quota": {"port": 2, "check_limit": True}})
    with db.read() as session:
        details = quotas.details(session, "p-alice")
    assert details["network"] == {"limit": 1, "used": 1, "reserved": 0}
    assert details["port"]["used"] == 3 and details["subnet"]["limit"] == 100
    with db.transaction() as session:
        quotas.reset(session, "p-alice")
        assert quotas.limits(session, "p-alice") == quotas.DEFAULTS


def test_a_servers_ports_from_request_to_release(db: Database) -> None:
    net = make_net(db)
    user_port = create_port(db, ALICE, net, fixed_ips=[{"ip_address": "10.0.0.12"}])
    with db.transaction() as session:
        made = servers.allocate_for_server(
            session,
            ALICE,
            "srv-1",
            [
                RequestedNetwork(network_id=net, fixed_ip="10.0.0.7"),
                RequestedNetwork(port_id=user_port["id"]),
            ],
            project_id="p-alice",
        )
        assert made[1] == user_port["id"]
    gen = generation(db, net)
    with db.transaction() as session:
        spec = servers.bind_server_ports(session, "srv-1", "host-a")
    assert generation(db, net) > gen
    assert [p["fixed_ips"][0]["ip_address"] for p in spec] == ["10.0.0.7", "10.0.0.12"]
    first = spec[0]
    assert first["bridge"] == "brq" + net[:11] and first["tap"] == "tap" + first["id"][:11]
    assert first["mtu"] == 1500 and first["mac_address"].startswith("fa:16:3e:")
    with db.read() as session:
        addresses = servers.server_addresses(session, ["srv-1"])["srv-1"]
        assert [a["addr"] for a in addresses["net1"]] == ["10.0.0.7", "10.0.0.12"]
        assert addresses["net1"][0]["OS-EXT-IPS-MAC:mac_addr"] == first["mac_address"]
        assert servers.server_security_groups(session, "srv-1") == ["default"]
        bound = session.get_one(Port, first["id"])
        assert (bound.binding_host_id, bound.binding_vif_type) == ("host-a", "bridge")
    with db.transaction() as session, pytest.raises(PortInUse):
        ports.delete_port(session, ALICE, first["id"])
    with db.transaction() as session:
        servers.release_server_ports(session, "srv-1")
    with db.read() as session:
        assert session.get(Port, first["id"]) is None  # made for the server: gone
        kept = session.get_one(Port, user_port["id"])  # the user's: kept, unbound
        assert (kept.device_id, kept.binding_host_id, kept.binding_vif_type) == ("", "", "unbound")
        assert ports.fixed_ips(session, [kept.id])[kept.id][0]["ip_address"] == "10.0.0.12"


def test_auto_picks_the_one_network_and_refuses_ambiguity(db: Database) -> None:
    with db.transaction() as session:
        # No network, no NIC.
        assert servers.allocate_for_server(session, ALICE, "srv-0", "auto", project_id="p-alice") == []
        assert servers.allocate_for_server(session, ALICE, "srv-0", "none", project_id="p-alice") == []
    net = make_net(db)
    with db.transaction() as session:
        (port_id,) = servers.allocate_for_server(session, ALICE, "srv-2", "auto", project_id="p-alice")
        assert session.get_one(Port, port_id).network_id == net
    make_net(db, cidr="10.5.0.0/24")
    with db.transaction() as session, pytest.raises(Conflict, match="Multiple possible networks"):
        servers.allocate_for_server(session, ALICE, "srv-3", "auto", project_id="p-alice")
    with db.transaction() as session, pytest.raises(PortInUse):
        servers.allocate_for_server(
            session, ALICE, "srv-4", [RequestedNetwork(port_id=port_id)], project_id="p-alice"
        )


def test_an_admin_allocating_for_anothers_server_makes_the_servers_projects_port(db: Database) -> None:
    """Nova makes the port in the instance's project: an admin attaching to Alice's server
    chooses among Alice's networks, and the port is Alice's, with Alice's default group, in
    Alice's quota (not the admin's)."""
    make_net(db, ADMIN, cidr="10.9.0.0/28")
    alices = make_net(db)
    with db.transaction() as session:
        (port_id,) = servers.allocate_for_server(session, ADMIN, "alices-srv", "auto", project_id="p-alice")
        port = session.get_one(Port, port_id)
        assert (port.network_id, port.project_id) == (alices, "p-alice")
        alice_default = security_groups.ensure_default(session, "p-alice")
        assert security_groups.ensure_default(session, "p-admin") != alice_default
        groups = session.scalars(
            select(PortSecurityGroup.security_group_id).where(PortSecurityGroup.port_id == port_id)
        )
        assert list(groups) == [alice_default]
    with db.transaction() as session:
        quotas.update(session, "p-alice", {"quota": {"port": 1}})
    with db.transaction() as session, pytest.raises(OverQuota):
        servers.allocate_for_server(
            session, ADMIN, "alices-srv", [RequestedNetwork(network_id=alices)], project_id="p-alice"
        )
    with db.transaction() as session:  # the admin's own quota is untouched by Alice's port
        servers.allocate_for_server(
            session, ADMIN, "admins-srv", [RequestedNetwork(network_id=alices)], project_id="p-admin"
        )


def test_dhcp_state_lists_what_the_network_host_serves(db: Database) -> None:
    net = make_net(db)
    port = create_port(db, ALICE, net, fixed_ips=[{"ip_address": "10.0.0.5"}], device_id="srv-9")
    with db.transaction() as session:
        down = ports.create_port(session, ALICE, {"port": {"network_id": net, "admin_state_up": False}})
        assert dhcp.assign_host(session, net, "host-a") == "host-a"
        assert dhcp.assign_host(session, net, "host-b") == "host-a"  # one host per network
    with db.read() as session:
        state = dhcp.dhcp_state(session, net)
    assert state["generation"] == generation(db, net)
    assert state["namespace"] == "qdhcp-" + net and state["bridge"] == "brq" + net[:11]
    assert [ip["ip_address"] for ip in state["dhcp_port"]["fixed_ips"]] == ["10.0.0.2"]
    assert state["hosts"] == [
        {
            "port_id": port["id"],
            "mac_address": port["mac"],
            "subnet_id": state["subnets"][0]["id"],
            "ip_address": "10.0.0.5",
            "hostname": "host-10-0-0-5",
            "device_id": "srv-9",
        }
    ]  # the port that is administratively down gets no lease
    assert down.id not in {h["port_id"] for h in state["hosts"]}
    with db.transaction() as session:
        dhcp.record_applied(session, net, "host-a", 7)
        dhcp.record_applied(session, net, "host-a", 5)  # a late, older report
        assert dhcp.applied_generation(session, net) == 7


def test_a_server_claims_only_its_projects_ports_and_addresses_the_policy_allows(db: Database) -> None:
    shared = make_net(db, ADMIN, cidr="10.2.0.0/24", shared=True)
    mine = make_net(db, BOB, cidr="10.3.0.0/24")
    hidden = create_port(db, ALICE, shared)  # Bob cannot see it
    foreign = create_port(db, ADMIN, mine)  # Bob sees it (his network) but does not own it
    with db.transaction() as session, pytest.raises(PortNotFound):
        servers.allocate_for_server(
            session, BOB, "srv-b", [RequestedNetwork(port_id=hidden["id"])], project_id="p-bob"
        )
    with db.transaction() as session, pytest.raises(Forbidden):
        servers.allocate_for_server(
            session, BOB, "srv-b", [RequestedNetwork(port_id=foreign["id"])], project_id="p-bob"
        )
    with db.transaction() as session, pytest.raises(Forbidden):
        servers.allocate_for_server(
            session,
            BOB,
            "srv-b",
            [RequestedNetwork(network_id=shared, fixed_ip="10.2.0.9")],
            project_id="p-bob",
        )
    with db.transaction() as session:
        (port_id,) = servers.allocate_for_server(
            session,
            BOB,
            "srv-b",
            [RequestedNetwork(network_id=mine, fixed_ip="10.3.0.9")],
            project_id="p-bob",
        )
        assert ports.fixed_ips(session, [port_id])[port_id] == [
            {"subnet_id": networks.subnet_ids(session, [mine])[mine][0], "ip_address": "10.3.0.9"}
        ]
