"""Tenant networks in the compute API, through unmodified openstacksdk with fake-driver agents:
ports allocated at create (auto, none, a network, a fixed IP, a port), shown as `addresses`
and security groups, bound to the host the server lands on (the spawn spec carries them),
released on delete; Nova's refusals; /ips, /os-security-groups and /os-interface."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from openstack import exceptions
from openstack.connection import Connection
from sqlalchemy import select

from kumo.network import firewall
from kumo.work.kinds import TaskKind
from kumo.work.models import Task
from tests.conftest import DEMO_PASSWORD, Cloud, Fleet, wait_for
from tests.functional.compute.helpers import database
from tests.functional.sdk.test_sdk import IMAGE_DATA, connect, wait_status

pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedFieldWarning")


@dataclass
class Env:
    cloud: Cloud
    admin: Connection
    demo: Connection
    flavor: str
    image: str
    net: Any
    subnet: Any


def _env(cloud: Cloud, fleet: Fleet) -> Iterator[Env]:
    fleet.add("net-host1", vcpus=8, memory_mb=8192)
    admin = connect(cloud)
    flavor = admin.compute.create_flavor(name="net.tiny", vcpus=1, ram=256, disk=1)
    image = admin.image.create_image(
        "net-image", data=IMAGE_DATA, disk_format="raw", container_format="bare", visibility="public"
    )
    demo = connect(cloud, "demo", DEMO_PASSWORD, "demo")
    net = demo.network.create_network(name="net1")
    subnet = demo.network.create_subnet(
        network_id=net.id,
        ip_version=4,
        cidr="10.40.0.0/24",
        allocation_pools=[{"start": "10.40.0.10", "end": "10.40.0.20"}],
    )
    yield Env(cloud, admin, demo, flavor.id, image.id, net, subnet)
    demo.close()
    admin.close()


@pytest.fixture
def env(cloud: Cloud, fleet: Fleet) -> Iterator[Env]:
    yield from _env(cloud, fleet)


@pytest.fixture
def pg_env(pg_cloud: Cloud, pg_fleet: Fleet) -> Iterator[Env]:
    yield from _env(pg_cloud, pg_fleet)


def _boot(env: Env, name: str, **kw: Any) -> Any:
    server = env.demo.compute.create_server(name=name, flavor_id=env.flavor, image_id=env.image, **kw)
    return wait_status(env.demo, server, "ACTIVE")


def _spawn_spec(env: Env, server_id: str) -> dict[str, Any]:
    db = database(env.cloud)
    try:
        with db.read() as session:
            payload = session.scalar(
                select(Task.payload).where(Task.instance_uuid == server_id, Task.kind == str(TaskKind.SPAWN))
            )
    finally:
        db.dispose()
    assert isinstance(payload, dict)
    spec: dict[str, Any] = payload["instance"]
    return spec


def _ips(server: Any) -> list[str]:
    return [a["addr"] for addrs in server.addresses.values() for a in addrs]


def _network_lifecycle(env: Env) -> None:
    demo = env.demo
    # The cloud layer with network=: it used to delete the server ("reached ACTIVE state
    # without being allocated an IP address").
    # auto_ip=True: kumo has no floating IPs, so the fixed address is the server's address.
    server = demo.create_server(
        "cloud-vm", image=env.image, flavor=env.flavor, network="net1", wait=True, auto_ip=True, timeout=30
    )
    assert server.status == "ACTIVE"
    assert server.private_v4 and server.private_v4.startswith("10.40.0.")
    assert [p.id for p in demo.list_ports(filters={"device_id": server.id})] == [
        p.id for p in demo.network.ports(device_id=server.id)
    ]
    assert [g["name"] for g in demo.list_server_security_groups(server)] == ["default"]
    default = demo.get_security_group("default")
    rule = demo.create_security_group_rule(
        default.id, port_range_min=22, port_range_max=22, protocol="tcp", remote_ip_prefix="10.0.0.0/8"
    )
    assert (rule.port_range_min, rule.remote_ip_prefix, rule.direction) == (22, "10.0.0.0/8", "ingress")
    nova_rules = demo.compute.get(f"/servers/{server.id}/os-security-groups").json()["security_groups"][0]
    assert {"from_port": 22, "to_port": 22, "ip_protocol": "tcp"}.items() <= next(
        r for r in nova_rules["rules"] if r["id"] == rule.id
    ).items()
    [address] = server.addresses["net1"]
    assert address["version"] == 4 and address["OS-EXT-IPS:type"] == "fixed"
    assert address["addr"].startswith("10.40.0.") and address["OS-EXT-IPS-MAC:mac_addr"].startswith(
        "fa:16:3e"
    )
    [port] = list(demo.network.ports(device_id=server.id))
    assert (
        port.fixed_ips[0]["ip_address"] == address["addr"]
        and port.mac_address == address["OS-EXT-IPS-MAC:mac_addr"]
    )
    assert port.device_owner == "compute:nova"
    bound = env.admin.network.get_port(port.id)  # binding:host_id is an admin's to see
    assert bound.binding_host_id == "net-host1" and bound.binding_vif_type == "bridge"
    assert [g["name"] for g in server.security_groups] == ["default"]
    # The agent was handed the bound port in the spawn task's server spec (the shared contract).
    [spec_port] = _spawn_spec(env, server.id)["ports"]
    assert spec_port["id"] == port.id and spec_port["network_id"] == env.net.id
    assert spec_port["mac_address"] == port.mac_address and spec_port["mtu"] == 1500
    assert spec_port["fixed_ips"] == [{"subnet_id": env.subnet.id, "ip_address": address["addr"]}]
    assert spec_port["bridge"] == "brq" + env.net.id[:11] and spec_port["tap"] == "tap" + port.id[:11]
    assert _spawn_spec(env, server.id)["config_drive"] is False
    # os-security-groups on both databases (PostgreSQL cannot DISTINCT a row with JSON columns).
    groups = demo.compute.get(f"/servers/{server.id}/os-security-groups").json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    drive = _boot(env, "drive-vm", networks="none", config_drive=True)
    assert _spawn_spec(env, drive.id)["config_drive"] is True  # the hypervisor builds config-2

    # A fixed IP is honoured; a taken one is refused (400, as Nova).
    fixed = _boot(env, "fixed-vm", networks=[{"uuid": env.net.id, "fixed_ip": "10.40.0.19"}])
    assert _ips(fixed) == ["10.40.0.19"]
    with pytest.raises(exceptions.BadRequestException, match="10.40.0.19 is already in use"):
        demo.compute.create_server(
            name="taken",
            flavor_id=env.flavor,
            image_id=env.image,
            networks=[{"uuid": env.net.id, "fixed_ip": "10.40.0.19"}],
        )
    # Deleting the server frees its address: a new server takes it.
    demo.compute.delete_server(fixed)
    demo.compute.wait_for_delete(fixed, interval=0.1, wait=30)
    assert list(demo.network.ports(device_id=fixed.id)) == []
    again = _boot(env, "again-vm", networks=[{"uuid": env.net.id, "fixed_ip": "10.40.0.19"}])
    assert _ips(again) == ["10.40.0.19"]

    # "auto" takes the project's one network; "none" gives no address (and no security group).
    auto = _boot(env, "auto-vm", networks="auto")
    assert list(auto.addresses) == ["net1"]
    bare = _boot(env, "bare-vm", networks="none")
    assert bare.addresses == {} and not bare.security_groups

    # A user's own port: claimed by the server, unbound and kept when the server goes.
    own = demo.network.create_port(network_id=env.net.id, name="mine")
    with_port = _boot(env, "port-vm", networks=[{"port": own.id}])
    assert _ips(with_port) == [own.fixed_ips[0]["ip_address"]]
    with pytest.raises(exceptions.ConflictException, match=f"Port {own.id} is still in use"):
        demo.compute.create_server(
            name="second", flavor_id=env.flavor, image_id=env.image, networks=[{"port": own.id}]
        )
    interfaces = list(demo.compute.server_interfaces(with_port))
    assert [(i.port_id, i.net_id, i.mac_addr) for i in interfaces] == [(own.id, env.net.id, own.mac_address)]
    assert interfaces[0].fixed_ips == own.fixed_ips
    demo.compute.delete_server(with_port)
    demo.compute.wait_for_delete(with_port, interval=0.1, wait=30)
    kept = env.admin.network.get_port(own.id)
    assert (kept.device_id, kept.device_owner, kept.binding_host_id) == ("", "", "")

    # The list page shows every server's addresses.
    listed = {s.name: _ips(s) for s in demo.compute.servers()}
    assert listed["again-vm"] == ["10.40.0.19"] and listed["bare-vm"] == []
    assert listed["cloud-vm"] == [address["addr"]] and len(listed["auto-vm"]) == 1


def test_server_networks_sqlite(env: Env) -> None:
    _network_lifecycle(env)


@pytest.mark.postgres
def test_server_networks_postgres(pg_env: Env) -> None:
    _network_lifecycle(pg_env)


def test_network_reads_and_refusals(env: Env) -> None:
    demo = env.demo
    server = _boot(env, "reads", networks=[{"uuid": env.net.id}])
    [addr] = _ips(server)
    compute = demo.compute
    base = f"/servers/{server.id}"
    assert compute.get(f"{base}/ips").json() == {"addresses": {"net1": [{"version": 4, "addr": addr}]}}
    assert compute.get(f"{base}/ips/net1").json() == {"net1": [{"version": 4, "addr": addr}]}
    assert compute.get(f"{base}/ips/other").status_code == 404
    groups = compute.get(f"{base}/os-security-groups").json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    assert all(r["parent_group_id"] == groups[0]["id"] for r in groups[0]["rules"])
    [attachment] = compute.get(f"{base}/os-interface").json()["interfaceAttachments"]
    assert attachment["fixed_ips"] == [{"subnet_id": env.subnet.id, "ip_address": addr}]
    one = compute.get(f"{base}/os-interface/{attachment['port_id']}").json()["interfaceAttachment"]
    assert one == attachment
    assert compute.get(f"{base}/os-interface/{env.net.id}").status_code == 404

    def create(networks: Any, version: str = "2.37", **extra: Any) -> Any:
        body = {"server": {"name": "x", "flavorRef": env.flavor, "imageRef": env.image, **extra}}
        if networks is not ...:
            body["server"]["networks"] = networks
        return compute.post("/servers", json=body, microversion=version)

    missing = "6f1ab1d4-4c59-4f3c-9b0c-2f0b6ad0a001"
    refused = create([{"uuid": missing}])
    assert refused.status_code == 400 and f"Network {missing} could not be found." in refused.text
    refused = create([{"port": missing}])
    assert refused.status_code == 400 and f"Port id {missing} could not be found." in refused.text
    assert create(...).status_code == 400  # required from 2.37
    assert create([{"uuid": "not-a-uuid"}]).status_code == 400
    assert create([{"uuid": env.net.id, "tag": "t"}]).status_code == 400  # no tags in 2.37-2.41
    assert create([{"uuid": env.net.id, "fixed_ip": "10.40.0.9"}], max_count=2).status_code == 400
    assert create([{"uuid": env.net.id, "fixed_ip": "no-ip"}]).status_code == 400
    # A multi-create that runs out of addresses on its third server leaves no server nor port.
    tiny = demo.network.create_network(name="tiny")
    demo.network.create_subnet(
        network_id=tiny.id,
        ip_version=4,
        cidr="10.41.0.0/29",
        enable_dhcp=False,
        allocation_pools=[{"start": "10.41.0.2", "end": "10.41.0.3"}],
    )
    servers_before = len(list(compute.servers()))
    full = create([{"uuid": tiny.id}], min_count=3, max_count=3)
    assert full.status_code == 400 and "No fixed IP addresses available" in full.text
    assert list(demo.network.ports(network_id=tiny.id)) == []
    assert len(list(compute.servers())) == servers_before
    # With two networks, auto is ambiguous (409, as Nova).
    assert create("auto").status_code == 409
    demo.network.delete_network(tiny)
    # From 2.42 a tag is taken again; before 2.37 an omitted `networks` means auto.
    tagged = create([{"uuid": env.net.id, "tag": "eth0"}], version="2.42", min_count=2, max_count=2)
    assert tagged.status_code == 202
    implicit = create(..., version="2.36")
    assert implicit.status_code == 202
    [port] = list(demo.network.ports(device_id=implicit.json()["server"]["id"]))
    assert port.network_id == env.net.id


def test_an_empty_security_groups_list_is_the_default_group(env: Env) -> None:
    """`"security_groups": []` (what Ansible's openstack.cloud.server sends when none are named)
    puts the server in its project's default group, as Nova's `security_groups or ['default']`
    does, not in no group at all."""
    body = {
        "server": {
            "name": "no-groups-named",
            "flavorRef": env.flavor,
            "imageRef": env.image,
            "networks": [{"uuid": env.net.id}],
            "security_groups": [],
        }
    }
    made = env.demo.compute.post("/servers", json=body)
    assert made.status_code == 202, made.text
    assert made.json()["server"]["security_groups"] == [{"name": "default"}]
    server_id = made.json()["server"]["id"]
    groups = env.demo.compute.get(f"/servers/{server_id}/os-security-groups").json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    [port] = list(env.demo.network.ports(device_id=server_id))
    [default] = list(env.demo.network.security_groups(name="default"))
    assert port.security_group_ids == [default.id]


def test_ports_follow_the_server(env: Env, fleet: Fleet) -> None:
    """Bound again to the destination of a live migration; a server that went to ERROR before
    it had a host keeps its port until it is deleted, which frees it."""
    demo, admin = env.demo, env.admin
    server = _boot(env, "mover", networks=[{"uuid": env.net.id}])
    [port] = list(demo.network.ports(device_id=server.id))
    assert admin.network.get_port(port.id).binding_host_id == "net-host1"
    fleet.add("net-host2", vcpus=8, memory_mb=8192)
    admin.compute.live_migrate_server(server, host="net-host2", block_migration="auto")

    def moved() -> bool:
        shown = admin.compute.get_server(server.id)
        return bool(shown.compute_host == "net-host2" and shown.task_state is None)

    wait_for(moved, timeout=30)
    assert admin.network.get_port(port.id).binding_host_id == "net-host2"
    assert _ips(demo.compute.get_server(server.id)) == [port.fixed_ips[0]["ip_address"]]

    huge = admin.compute.create_flavor(name="net.huge", vcpus=1, ram=256, disk=5000)
    failed = demo.compute.create_server(
        name="nowhere", flavor_id=huge.id, image_id=env.image, networks=[{"uuid": env.net.id}]
    )
    failed = wait_status(demo, failed, "ERROR")
    [stranded] = list(demo.network.ports(device_id=failed.id))
    assert admin.network.get_port(stranded.id).binding_host_id in ("", None)
    demo.compute.delete_server(failed)
    demo.compute.wait_for_delete(failed, interval=0.1, wait=30)
    assert list(demo.network.ports(device_id=failed.id)) == []


def test_a_first_placement_syncs_no_firewall_on_either_placement_path(env: Env) -> None:
    """A server placed by a plan (a plain hypervisor placement) and one placed by the ORM path
    (a soft-anti-affinity group's member whose spread cannot be honoured) on a host that
    enforces security groups: neither placement gives the host a firewall_sync (its agent
    applies the ports' rules before it builds the guest); only the host's registration did."""
    db = database(env.cloud)
    try:
        with db.transaction() as session:
            firewall.register_host(session, "net-host1")
        group = env.demo.compute.create_server_group(name="soft", policy="soft-anti-affinity")
        # A group no rule names: making the servers' ports changes no host's firewall.
        env.demo.network.create_security_group(name="lonely")
        on_net = {"networks": [{"uuid": env.net.id}], "security_groups": [{"name": "lonely"}]}
        hints = {"group": group.id}
        _boot(env, "planned", **on_net, scheduler_hints=hints)  # the spread honoured: a plan
        _boot(env, "unspread", **on_net, scheduler_hints=hints)  # one host: not honoured, ORM path
        assert len(list(env.demo.compute.get_server_group(group.id).member_ids)) == 2
        with db.read() as session:
            syncs = session.scalars(
                select(Task.id).where(Task.host == "net-host1", Task.kind == str(TaskKind.FIREWALL_SYNC))
            )
            assert len(list(syncs)) == 1
    finally:
        db.dispose()
