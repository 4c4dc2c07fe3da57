"""A server on a baremetal node with `networks`, with a conductor stand-in: its Neutron port
takes the MAC of the node's pxe_enabled Ironic port, is bound to the node (vnic_type
baremetal), and the network's DHCP hosts carry that MAC and the port's address; the port goes
with the server. A node without an Ironic port: a clear fault, no port bound and none left
once the server is deleted. An Ironic port lent to a server keeps its MAC meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kumo.agent.protocol import AGENT_TOKEN_HEADER
from tests.conftest import Cloud, wait_for
from tests.functional.baremetal.helpers import (
    bm_flavor,
    enroll,
    image,
    ironic,
    make_available,
    node,
    wait_node,
    wait_server,
)
from tests.functional.baremetal.standin import StandInConductor

NEUTRON = "/networking/v2.0"
MAC = "52:54:00:5e:00:0a"


@pytest.fixture
def conductor(cloud: Cloud) -> Iterator[StandInConductor]:
    c = StandInConductor(cloud.url, cloud.settings.secret("agent_token")).start()
    yield c
    c.stop()


def network(c: httpx.Client, cidr: str = "10.77.0.0/24") -> str:
    net = c.post(f"{NEUTRON}/networks", json={"network": {"name": "bm-net"}})
    assert net.status_code == 201, net.text
    net_id = str(net.json()["network"]["id"])
    sub = c.post(
        f"{NEUTRON}/subnets",
        json={"subnet": {"network_id": net_id, "cidr": cidr, "ip_version": 4, "name": "bm-sub"}},
    )
    assert sub.status_code == 201, sub.text
    return net_id


def boot(c: httpx.Client, flavor: str, img: str, networks: list[dict[str, str]], name: str = "bm") -> str:
    body = {"server": {"name": name, "flavorRef": flavor, "imageRef": img, "networks": networks}}
    resp = c.post("/compute/v2.1/servers", json=body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["server"]["id"])


def server_ports(c: httpx.Client, sid: str) -> list[dict[str, Any]]:
    return list(c.get(f"{NEUTRON}/ports", params={"device_id": sid}).json()["ports"])


def dhcp_hosts(cloud: Cloud, net_id: str) -> list[dict[str, Any]]:
    token = {AGENT_TOKEN_HEADER: cloud.settings.secret("agent_token")}
    with httpx.Client(base_url=cloud.url, headers=token) as agent:
        resp = agent.get(f"/internal/v1/networks/{net_id}/dhcp")
        assert resp.status_code == 200, resp.text
        return list(resp.json()["hosts"])


def test_a_server_on_a_node_gets_the_nodes_mac_and_a_dhcp_reservation(
    cloud: Cloud, conductor: StandInConductor
) -> None:
    _the_nodes_mac_and_a_dhcp_reservation(cloud, conductor)


@pytest.mark.postgres
def test_the_nodes_mac_and_a_dhcp_reservation_on_postgresql(pg_cloud: Cloud) -> None:
    conductor = StandInConductor(pg_cloud.url, pg_cloud.settings.secret("agent_token")).start()
    try:
        _the_nodes_mac_and_a_dhcp_reservation(pg_cloud, conductor)
    finally:
        conductor.stop()


def _the_nodes_mac_and_a_dhcp_reservation(cloud: Cloud, conductor: StandInConductor) -> None:
    with ironic(cloud) as c:
        uuid = enroll(c, "nic1")["uuid"]
        for address, pxe in (("52:54:00:5e:00:0b", False), (MAC, True)):
            made = c.post(
                "/baremetal/v1/ports", json={"address": address, "node_uuid": uuid, "pxe_enabled": pxe}
            )
            assert made.status_code == 201, made.text
        make_available(c, uuid)
        net_id, flavor, img = network(c), bm_flavor(c), image(c)
        sid = boot(c, flavor, img, [{"uuid": net_id}])
        shown = wait_server(c, sid, "ACTIVE")
        assert shown["OS-EXT-SRV-ATTR:hypervisor_hostname"] == uuid
        [port] = server_ports(c, sid)
        assert port["mac_address"] == MAC  # the pxe_enabled NIC's, not the first enrolled
        assert (port["binding:host_id"], port["binding:vnic_type"]) == (uuid, "baremetal")
        assert port["device_owner"] == "compute:nova"
        address = port["fixed_ips"][0]["ip_address"]
        [nic] = shown["addresses"]["bm-net"]
        assert (nic["addr"], nic["OS-EXT-IPS-MAC:mac_addr"]) == (address, MAC)
        reservation = [h for h in dhcp_hosts(cloud, net_id) if h["port_id"] == port["id"]]
        assert [(h["mac_address"], h["ip_address"], h["device_id"]) for h in reservation] == [
            (MAC, address, sid)
        ]
        # The conductor's spawn spec carries the port with the node's MAC.
        spawn = next(t for t in conductor.seen if t["kind"] == "spawn")
        assert [p["mac_address"] for p in spawn["payload"]["instance"]["ports"]] == [MAC]
        # The NIC a server uses keeps its MAC and stays while the node holds the server.
        ironic_port = c.get("/baremetal/v1/ports", params={"address": MAC}).json()["ports"][0]["uuid"]
        moved = c.patch(
            f"/baremetal/v1/ports/{ironic_port}",
            json=[{"op": "replace", "path": "/address", "value": "52:54:00:5e:00:0c"}],
        )
        assert moved.status_code == 409, moved.text
        assert c.delete(f"/baremetal/v1/ports/{ironic_port}").status_code == 409
        # Delete: the port goes with the server, and so does the reservation.
        assert c.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
        wait_node(c, uuid, provision_state="available")
        assert server_ports(c, sid) == []
        assert all(h["mac_address"] != MAC for h in dhcp_hosts(cloud, net_id))


def test_a_users_port_takes_the_nodes_mac_and_gives_it_back(
    cloud: Cloud, conductor: StandInConductor
) -> None:
    with ironic(cloud) as c:
        uuid = enroll(c, "nic2", availability_zone="az1")["uuid"]
        assert c.post("/baremetal/v1/ports", json={"address": MAC, "node_uuid": uuid}).status_code == 201
        make_available(c, uuid)
        net_id, flavor, img = network(c), bm_flavor(c), image(c)
        made = c.post(f"{NEUTRON}/ports", json={"port": {"network_id": net_id, "name": "mine"}})
        assert made.status_code == 201, made.text
        port_id, own_mac = made.json()["port"]["id"], made.json()["port"]["mac_address"]
        sid = boot(c, flavor, img, [{"port": port_id}])
        wait_server(c, sid, "ACTIVE")
        bound = c.get(f"{NEUTRON}/ports/{port_id}").json()["port"]
        assert (bound["mac_address"], bound["binding:host_id"]) == (MAC, uuid)
        assert bound["device_owner"] == "compute:az1"  # the zone the server landed in (the node's)
        assert c.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
        wait_node(c, uuid, provision_state="available")
        kept = c.get(f"{NEUTRON}/ports/{port_id}").json()["port"]
        assert kept["device_id"] == "" and kept["binding:host_id"] == ""
        # The NIC's MAC leaves with the node: the port gets a fresh one (not its old one back).
        assert kept["mac_address"] not in (MAC, "")
        assert own_mac != MAC


def test_a_node_without_an_ironic_port_is_a_clear_fault_and_leaks_no_port(
    cloud: Cloud, conductor: StandInConductor
) -> None:
    with ironic(cloud) as c:
        uuid = enroll(c, "nic3")["uuid"]
        make_available(c, uuid)
        net_id, flavor, img = network(c), bm_flavor(c), image(c)
        sid = boot(c, flavor, img, [{"uuid": net_id}])
        failed = wait_server(c, sid, "ERROR")
        assert "Ironic port" in failed["fault"]["message"] and uuid in failed["fault"]["message"]
        assert failed["OS-EXT-SRV-ATTR:hypervisor_hostname"] is None
        [port] = server_ports(c, sid)  # kept by the server in ERROR (as a no-valid-host one), unbound
        assert port["binding:host_id"] == "" and port["mac_address"] != MAC
        n = node(c, uuid)
        assert (n["provision_state"], n["instance_uuid"]) == ("available", None)
        assert not any(t["kind"] == "spawn" for t in conductor.seen)
        assert c.delete(f"/compute/v2.1/servers/{sid}").status_code == 204

        def gone() -> bool:
            return server_ports(c, sid) == [] and all(
                h["device_id"] != sid for h in dhcp_hosts(cloud, net_id)
            )

        assert wait_for(gone)
        # A server without networks is still welcome on a node without ports.
        resp = c.post(
            "/compute/v2.1/servers",
            json={"server": {"name": "none", "flavorRef": flavor, "imageRef": img, "networks": "none"}},
        )
        assert resp.status_code == 202, resp.text
        wait_server(c, resp.json()["server"]["id"], "ACTIVE")


def test_a_failed_rebuild_keeps_the_nodes_mac_until_the_server_goes(
    cloud: Cloud, conductor: StandInConductor
) -> None:
    """A rebuild redeploys the same machine: its port keeps the node's MAC and address (the
    reservation the machine boots with). Failed (the node in deploy failed; the server keeps
    its previous state, as Nova), nothing is released until the server is deleted, which
    releases the port and the reservation and returns the node."""
    with ironic(cloud) as c:
        uuid = enroll(c, "nic4")["uuid"]
        assert c.post("/baremetal/v1/ports", json={"address": MAC, "node_uuid": uuid}).status_code == 201
        make_available(c, uuid)
        net_id, flavor, img = network(c), bm_flavor(c), image(c)
        sid = boot(c, flavor, img, [{"uuid": net_id}])
        wait_server(c, sid, "ACTIVE")
        [before] = server_ports(c, sid)
        conductor.fail["rebuild"] = "DeployTimeout: no deploy-complete marker on the console after 600 s"
        rebuilt = c.post(f"/compute/v2.1/servers/{sid}/action", json={"rebuild": {"imageRef": img}})
        assert rebuilt.status_code == 202, rebuilt.text
        failed = wait_node(c, uuid, provision_state="deploy failed")
        assert "DeployTimeout" in failed["last_error"]
        [after] = server_ports(c, sid)
        assert (after["id"], after["mac_address"], after["fixed_ips"]) == (
            before["id"],
            MAC,
            before["fixed_ips"],
        )
        rebuild = next(t for t in conductor.seen if t["kind"] == "rebuild")
        assert [p["mac_address"] for p in rebuild["payload"]["instance"]["ports"]] == [MAC]
        conductor.fail.clear()
        assert c.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
        wait_node(c, uuid, provision_state="available")
        assert server_ports(c, sid) == []
        assert all(h["mac_address"] != MAC for h in dhcp_hosts(cloud, net_id))


def test_two_networks_take_the_nodes_nics_in_order(cloud: Cloud, conductor: StandInConductor) -> None:
    """NIC order: the pxe_enabled port's MAC for the first network, the next port's for the
    second; a node with one NIC for a server asking two networks is the fault."""
    with ironic(cloud) as c:
        one, two = enroll(c, "nic5")["uuid"], enroll(c, "nic6")["uuid"]
        second_mac = "52:54:00:5e:00:0d"
        for address, pxe in ((second_mac, False), (MAC, True)):
            made = c.post(
                "/baremetal/v1/ports", json={"address": address, "node_uuid": one, "pxe_enabled": pxe}
            )
            assert made.status_code == 201, made.text
        made = c.post("/baremetal/v1/ports", json={"address": "52:54:00:5e:00:0e", "node_uuid": two})
        assert made.status_code == 201, made.text
        make_available(c, one)
        first_net, second_net = network(c), network(c, "10.78.0.0/24")
        flavor, img = bm_flavor(c), image(c)
        sid = boot(c, flavor, img, [{"uuid": first_net}, {"uuid": second_net}])
        wait_server(c, sid, "ACTIVE")
        macs = {p["network_id"]: p["mac_address"] for p in server_ports(c, sid)}
        assert macs == {first_net: MAC, second_net: second_mac}
        # The only node left has one NIC: a second two-network server cannot be bound there.
        make_available(c, two)
        other = boot(c, flavor, img, [{"uuid": first_net}, {"uuid": second_net}], name="bm2")
        failed = wait_server(c, other, "ERROR")
        assert f"{two} has 1 Ironic port(s)" in failed["fault"]["message"]
        assert "2 network port(s)" in failed["fault"]["message"]
        assert node(c, two)["provision_state"] == "available"
