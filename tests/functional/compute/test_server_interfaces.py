"""os-interface attach and detach, and addSecurityGroup / removeSecurityGroup, through unmodified
openstacksdk with fake-driver agents, on SQLite and PostgreSQL: the port made or claimed and
bound with the action record, the network's DHCP serving it, the agent plugging and unplugging
the NIC, the port released only once unplugged (or when the plug failed), and Nova's refusals."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from openstack import exceptions

from kumo.agent.drivers.fake import PLUGGED
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from tests.conftest import DEMO_PASSWORD, Cloud, Fleet, wait_for
from tests.functional.compute.test_server_networks import Env, _boot, _env, _ips

pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedFieldWarning")


@pytest.fixture
def env(cloud: Cloud, fleet: Fleet) -> Iterator[Env]:
    yield from _env(cloud, fleet)


@pytest.fixture
def pg_env(pg_cloud: Cloud, pg_fleet: Fleet) -> Iterator[Env]:
    yield from _env(pg_cloud, pg_fleet)


def _dhcp_hosts(env: Env, network_id: str) -> dict[str, str]:
    """What the network host is told to serve: port id -> address."""
    resp = httpx.get(
        f"{env.cloud.url}/internal/v1/networks/{network_id}/dhcp",
        headers={AGENT_TOKEN_HEADER: env.cloud.settings.secret("agent_token")},
    )
    assert resp.status_code == 200, resp.text
    return {h["port_id"]: h["ip_address"] for h in resp.json()["hosts"]}


def _events(env: Env, server_id: str, action: str) -> list[dict[str, Any]]:
    """The events of the server's latest `action` action."""
    compute = env.demo.compute
    listed = compute.get(f"/servers/{server_id}/os-instance-actions", microversion="2.51").json()
    request_id = next(a["request_id"] for a in listed["instanceActions"] if a["action"] == action)
    shown = compute.get(f"/servers/{server_id}/os-instance-actions/{request_id}", microversion="2.51")
    events: list[dict[str, Any]] = shown.json()["instanceAction"]["events"]
    return events


def _finished(env: Env, server_id: str, action: str) -> list[dict[str, Any]] | None:
    events = _events(env, server_id, action)
    return events if events and all(e["finish_time"] for e in events) else None


def _interfaces(env: Env) -> None:
    demo, admin = env.demo, env.admin
    server = _boot(env, "nic-vm", networks=[{"uuid": env.net.id}])
    net2 = demo.network.create_network(name="net2")
    sub2 = demo.network.create_subnet(network_id=net2.id, ip_version=4, cidr="10.41.0.0/24")

    # By network, with a fixed IP: 200 with the attachment; the port is the server's, bound to
    # its host; the network host serves it; the agent plugs it; the action's event succeeds.
    made = demo.compute.create_server_interface(
        server, net_id=net2.id, fixed_ips=[{"ip_address": "10.41.0.50"}]
    )
    assert made.net_id == net2.id and made.fixed_ips == [{"subnet_id": sub2.id, "ip_address": "10.41.0.50"}]
    port = admin.network.get_port(made.port_id)
    assert (port.device_id, port.device_owner, port.binding_host_id) == (
        server.id,
        "compute:nova",
        "net-host1",
    )
    assert port.security_group_ids == [g.id for g in demo.network.security_groups(name="default")]
    assert _dhcp_hosts(env, net2.id)[made.port_id] == "10.41.0.50"
    wait_for(lambda: made.port_id in PLUGGED.get(server.id, set()))
    [event] = wait_for(lambda: _finished(env, server.id, "attach_interface"))
    assert (event["event"], event["result"]) == ("compute_attach_interface", "Success")
    listed = [i.port_id for i in demo.compute.server_interfaces(server)]
    assert listed[1:] == [made.port_id]
    assert _ips(demo.compute.get_server(server.id))[1:] == ["10.41.0.50"]

    # A user's own port; the same port again (or on another server) is a 409.
    own = demo.network.create_port(network_id=net2.id, name="own")
    claimed = demo.compute.create_server_interface(server, port_id=own.id)
    assert claimed.port_id == own.id and claimed.mac_addr == own.mac_address
    other = _boot(env, "other-vm", networks="none")
    with pytest.raises(exceptions.ConflictException, match="still in use"):
        demo.compute.create_server_interface(other, port_id=own.id)
    with pytest.raises(exceptions.ConflictException, match="10.41.0.50"):
        demo.compute.create_server_interface(other, net_id=net2.id, fixed_ips=[{"ip_address": "10.41.0.50"}])
    wait_for(lambda: own.id in PLUGGED.get(server.id, set()))

    # Detach: 202; the port leaves the server once the agent unplugged it. The server's own
    # port is deleted, the user's is kept, unbound; the DHCP host stops serving them.
    demo.compute.delete_server_interface(made.port_id, server)
    demo.compute.delete_server_interface(own.id, server)
    wait_for(lambda: [i.port_id for i in demo.compute.server_interfaces(server)] == [listed[0]])
    assert made.port_id not in PLUGGED.get(server.id, set()) and own.id not in PLUGGED.get(server.id, set())
    with pytest.raises(exceptions.NotFoundException):
        admin.network.get_port(made.port_id)
    kept = admin.network.get_port(own.id)
    assert (kept.device_id, kept.device_owner, kept.binding_host_id) == ("", "", "")
    assert set(_dhcp_hosts(env, net2.id)) == {own.id}  # a port of no server keeps its address
    [event] = wait_for(lambda: _finished(env, server.id, "detach_interface"))
    assert event["result"] == "Success"

    # A stopped server takes an interface too (its definition).
    demo.compute.stop_server(server)
    server = env.demo.compute.wait_for_server(
        demo.compute.get_server(server.id), "SHUTOFF", interval=0.1, wait=30
    )
    cold = demo.compute.create_server_interface(server, net_id=net2.id)
    wait_for(lambda: cold.port_id in PLUGGED.get(server.id, set()))

    # Refusals, as Nova.
    compute = demo.compute
    base = f"/servers/{server.id}/os-interface"
    # 2.70: the device tag given at attach is shown back (null when none); no `tag` before.
    tagged = compute.post(
        base, json={"interfaceAttachment": {"net_id": net2.id, "tag": "nic-b"}}, microversion="2.70"
    )
    assert tagged.status_code == 200 and tagged.json()["interfaceAttachment"]["tag"] == "nic-b", tagged.text
    tagged_port = tagged.json()["interfaceAttachment"]["port_id"]
    assert (
        compute.get(f"{base}/{tagged_port}", microversion="2.70").json()["interfaceAttachment"]["tag"]
        == "nic-b"
    )
    assert (
        compute.get(f"{base}/{cold.port_id}", microversion="2.70").json()["interfaceAttachment"]["tag"]
        is None
    )
    assert (
        "tag" not in compute.get(f"{base}/{tagged_port}", microversion="2.69").json()["interfaceAttachment"]
    )
    both = {"interfaceAttachment": {"net_id": net2.id, "port_id": own.id}}
    assert compute.post(base, json=both).status_code == 400
    no_net = {"interfaceAttachment": {"fixed_ips": [{"ip_address": "10.41.0.9"}]}}
    resp = compute.post(base, json=no_net)
    assert resp.status_code == 400 and "Must input network_id" in resp.text
    for bad in (
        {},
        {"interfaceAttachment": []},
        {"interfaceAttachment": {"net_id": "x"}},
        {"interfaceAttachment": {"foo": 1}},
    ):
        assert compute.post(base, json=bad).status_code == 400, bad
    missing = {"interfaceAttachment": {"net_id": "00000000-0000-4000-8000-000000000000"}}
    assert compute.post(base, json=missing).status_code == 404
    assert compute.delete(f"{base}/{own.id}").status_code == 404  # not attached
    assert (
        compute.post(
            "/servers/00000000-0000-4000-8000-000000000000/os-interface", json={"interfaceAttachment": {}}
        ).status_code
        == 404
    )
    huge = admin.compute.create_flavor(name="nic.huge", vcpus=1, ram=256, disk=5000)
    failed = compute.create_server(name="nowhere", flavor_id=huge.id, image_id=env.image, networks="none")
    failed = env.demo.compute.wait_for_server(compute.get_server(failed.id), "ERROR", interval=0.1, wait=30)
    refused = compute.post(
        f"/servers/{failed.id}/os-interface", json={"interfaceAttachment": {"net_id": net2.id}}
    )
    assert refused.status_code == 409 and "vm_state error" in refused.text
    assert list(demo.network.ports(device_id=failed.id)) == []  # nothing left behind

    # A plug that fails releases its port; the event carries the driver's error.
    broken = _boot(env, "broken-vm", networks="none", metadata={"fake_interface_error": "no PCI slot"})
    doomed = demo.compute.create_server_interface(broken, net_id=net2.id)
    wait_for(lambda: list(demo.network.ports(device_id=broken.id)) == [])
    [event] = wait_for(lambda: _finished(env, broken.id, "attach_interface"))
    assert event["result"] == "Error"
    assert doomed.port_id not in _dhcp_hosts(env, net2.id)


def _security_groups(env: Env) -> None:
    demo = env.demo
    web = demo.network.create_security_group(name="web")
    server = _boot(env, "sg-vm", networks=[{"uuid": env.net.id}])
    # The cloud layer: add, read, remove (addSecurityGroup / removeSecurityGroup).
    assert demo.add_server_security_groups(server.id, ["web"])
    assert sorted(g["name"] for g in demo.list_server_security_groups(server)) == ["default", "web"]
    [port] = demo.network.ports(device_id=server.id)
    assert web.id in port.security_group_ids
    action = f"/servers/{server.id}/action"
    again = demo.compute.post(action, json={"addSecurityGroup": {"name": "web"}})
    assert again.status_code == 400 and "already associated" in again.text
    unknown = demo.compute.post(action, json={"addSecurityGroup": {"name": "nope"}})
    assert unknown.status_code == 404
    assert demo.compute.post(action, json={"addSecurityGroup": {}}).status_code == 400
    assert demo.remove_server_security_groups(server.id, ["web"])
    assert [g["name"] for g in demo.list_server_security_groups(server)] == ["default"]
    gone = demo.compute.post(action, json={"removeSecurityGroup": {"name": "web"}})
    assert gone.status_code == 400 and "not associated" in gone.text
    bare = _boot(env, "sg-bare", networks="none")
    no_ports = demo.compute.post(f"/servers/{bare.id}/action", json={"addSecurityGroup": {"name": "web"}})
    assert no_ports.status_code == 400


def _ports_used(env: Env, project_id: str) -> int:
    shown = env.admin.network.get(f"/quotas/{project_id}/details").json()
    used: int = shown["quota"]["port"]["used"]
    return used


def _admin_attaches(env: Env) -> None:
    """An admin attaching to a member's server makes the member's port (Nova makes it in the
    instance's project): the member's default group, the member's quota, seen by the member;
    "auto" chooses among the member's networks, not the admin's."""
    demo, admin = env.demo, env.admin
    member_project = demo.current_project_id
    admin_project = admin.current_project_id
    admin_net = admin.network.create_network(name="admins-own")
    admin.network.create_subnet(network_id=admin_net.id, ip_version=4, cidr="10.42.0.0/24")
    server = _boot(env, "tenant-vm", networks="none")
    member_used, admin_used = _ports_used(env, member_project), _ports_used(env, admin_project)

    by_net = admin.compute.create_server_interface(server, net_id=env.net.id)
    auto = admin.compute.post(f"/servers/{server.id}/os-interface", json={"interfaceAttachment": {}})
    assert auto.status_code == 200, auto.text
    auto_port = auto.json()["interfaceAttachment"]
    assert auto_port["net_id"] == env.net.id  # the member's one network, not admins-own
    member_default = [g.id for g in demo.network.security_groups(name="default")]
    for port_id in (by_net.port_id, auto_port["port_id"]):
        port = demo.network.get_port(port_id)  # the member sees it
        assert port.project_id == member_project
        assert port.security_group_ids == member_default
    assert _ports_used(env, member_project) == member_used + 2
    assert _ports_used(env, admin_project) == admin_used
    wait_for(lambda: {by_net.port_id, auto_port["port_id"]} <= PLUGGED.get(server.id, set()))


def test_interfaces_sqlite(env: Env) -> None:
    _interfaces(env)


@pytest.mark.postgres
def test_interfaces_postgres(pg_env: Env) -> None:
    _interfaces(pg_env)


def test_server_security_groups_sqlite(env: Env) -> None:
    _security_groups(env)


@pytest.mark.postgres
def test_server_security_groups_postgres(pg_env: Env) -> None:
    _security_groups(pg_env)


@pytest.mark.postgres
def test_one_port_attached_to_two_servers_at_once_goes_to_one(pg_env: Env) -> None:
    """Two attaches racing for one port (separate API requests, PostgreSQL's row locks): one
    200, one 409, and the port is bound to the winner only."""
    demo = pg_env.demo
    first = _boot(pg_env, "race-a", networks="none")
    second = _boot(pg_env, "race-b", networks="none")
    token = pg_env.cloud.token("demo", DEMO_PASSWORD, "demo")
    for round_ in range(3):
        port = demo.network.create_port(network_id=pg_env.net.id, name=f"contested-{round_}")
        body = {"interfaceAttachment": {"port_id": port.id}}

        def attach(server_id: str, body: dict[str, Any] = body) -> int:
            with pg_env.cloud.client(token) as client:
                return client.post(f"/compute/v2.1/servers/{server_id}/os-interface", json=body).status_code

        with ThreadPoolExecutor(2) as pool:
            codes = list(pool.map(attach, [first.id, second.id]))
        assert sorted(codes) == [200, 409], codes
        winner = first.id if codes[0] == 200 else second.id
        assert pg_env.admin.network.get_port(port.id).device_id == winner


def test_admin_attach_makes_the_servers_projects_port_sqlite(env: Env) -> None:
    _admin_attaches(env)


@pytest.mark.postgres
def test_admin_attach_makes_the_servers_projects_port_postgres(pg_env: Env) -> None:
    _admin_attaches(pg_env)
