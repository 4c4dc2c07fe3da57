"""The unmodified `openstack` CLI against kumo's Neutron subset: networks, subnets, ports,
security groups and rules, and the networking side of `quota set`/`quota show`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import DEMO_CLOUD, CLIError, OpenStackCLI
from tests.conftest import Fleet

pytestmark = pytest.mark.cli


def test_network_subnet_and_port(any_osc: OpenStackCLI) -> None:
    osc = any_osc
    net = osc.run("network", "create", "net1", cloud=DEMO_CLOUD)
    assert net["name"] == "net1" and net["status"] == "ACTIVE" and net["mtu"] == 1500
    subnet = osc.run(
        "subnet", "create", "s1", "--network", "net1", "--subnet-range", "10.20.0.0/24",
        "--allocation-pool", "start=10.20.0.10,end=10.20.0.20", "--dns-nameserver", "10.20.0.53",
        "--host-route", "destination=192.168.0.0/16,gateway=10.20.0.254",
        cloud=DEMO_CLOUD,
    )  # fmt: skip
    assert subnet["cidr"] == "10.20.0.0/24" and subnet["gateway_ip"] == "10.20.0.1"
    assert subnet["allocation_pools"] == [{"start": "10.20.0.10", "end": "10.20.0.20"}]
    assert subnet["host_routes"] == [{"destination": "192.168.0.0/16", "nexthop": "10.20.0.254"}]
    port = osc.run(
        "port", "create", "p1", "--network", "net1", "--fixed-ip", "subnet=s1,ip-address=10.20.0.50",
        cloud=DEMO_CLOUD,
    )  # fmt: skip
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.20.0.50"}]
    listed = osc.run("port", "list", "--network", "net1", cloud=DEMO_CLOUD)
    by_name = {p["Name"]: p for p in listed}
    assert set(by_name) == {"", "p1"}  # the DHCP port took the pool's first address
    assert by_name[""]["Fixed IP Addresses"] == [{"subnet_id": subnet["id"], "ip_address": "10.20.0.10"}]
    with pytest.raises(CLIError) as taken:
        osc.run(
            "port",
            "create",
            "p2",
            "--network",
            "net1",
            "--fixed-ip",
            "ip-address=10.20.0.50",
            cloud=DEMO_CLOUD,
        )
    assert "10.20.0.50" in taken.value.stderr
    assert [n["Name"] for n in osc.run("network", "list", cloud=DEMO_CLOUD)] == ["net1"]
    osc.run("port", "delete", "p1", json=False, cloud=DEMO_CLOUD)
    osc.run("network", "delete", "net1", json=False, cloud=DEMO_CLOUD)
    assert osc.run("network", "list", cloud=DEMO_CLOUD) == []


def test_security_group_rule_and_network_quota(any_osc: OpenStackCLI) -> None:
    osc = any_osc
    osc.run("security", "group", "create", "web", cloud=DEMO_CLOUD)
    rule = osc.run(
        "security",
        "group",
        "rule",
        "create",
        "web",
        "--protocol",
        "tcp",
        "--dst-port",
        "22",
        cloud=DEMO_CLOUD,
    )
    assert (rule["protocol"], rule["port_range_min"], rule["remote_ip_prefix"]) == ("tcp", 22, "0.0.0.0/0")
    rules = osc.run("security", "group", "rule", "list", "web", cloud=DEMO_CLOUD)
    assert sorted(r["IP Protocol"] or "any" for r in rules) == ["any", "any", "tcp"]
    groups = {g["Name"] for g in osc.run("security", "group", "list", cloud=DEMO_CLOUD)}
    assert groups == {"default", "web"}

    osc.run(
        "quota",
        "set",
        "--networks",
        "3",
        "--ports",
        "40",
        "--subnets",
        "5",
        "--secgroups",
        "7",
        "demo",
        json=False,
    )
    quota = osc.run("quota", "show", "demo")
    by_resource = {row["Resource"]: row["Limit"] for row in quota}
    assert (by_resource["networks"], by_resource["ports"], by_resource["subnets"]) == (3, 40, 5)
    assert by_resource["security_groups"] == 7
    usage = {row["Resource"]: row for row in osc.run("quota", "show", "--usage", "demo")}
    assert usage["security_groups"]["In Use"] == 2 and usage["networks"]["In Use"] == 0


def test_server_on_a_network(any_osc: OpenStackCLI, any_fleet: Fleet, tmp_path: Path) -> None:
    """`server create --nic net-id=` gets an address shown by `server list`/`server show`; its
    port is in `port list --server`; deleting the server frees the address."""
    osc, fleet = any_osc, any_fleet
    fleet.add("cli-net-host", vcpus=4, memory_mb=8192)
    osc.run("flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "--public", "n.tiny")
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"\0" * 4096)
    osc.run(
        "image", "create", "--file", str(disk), "--disk-format", "raw", "--container-format", "bare",
        "--public", "img",
    )  # fmt: skip
    net = osc.run("network", "create", "net1", cloud=DEMO_CLOUD)
    osc.run(
        "subnet", "create", "s1", "--network", "net1", "--subnet-range", "10.50.0.0/24",
        "--allocation-pool", "start=10.50.0.10,end=10.50.0.20", cloud=DEMO_CLOUD,
    )  # fmt: skip
    server = osc.run(
        "server", "create", "--flavor", "n.tiny", "--image", "img", "--nic", f"net-id={net['id']}",
        "--wait", "vm1", cloud=DEMO_CLOUD,
    )  # fmt: skip
    [port] = osc.run("port", "list", "--server", "vm1", cloud=DEMO_CLOUD)
    [fixed] = port["Fixed IP Addresses"]
    address = fixed["ip_address"]
    assert address.startswith("10.50.0.")
    assert server["addresses"] == {"net1": [address]}
    assert osc.run("server", "show", "vm1", cloud=DEMO_CLOUD)["addresses"] == {"net1": [address]}
    [listed] = osc.run("server", "list", cloud=DEMO_CLOUD)
    assert listed["Networks"] == {"net1": [address]}
    # Without --nic the CLI sends "auto": the project's one network.
    osc.run("server", "create", "--flavor", "n.tiny", "--image", "img", "--wait", "vm2", cloud=DEMO_CLOUD)
    assert list(osc.run("server", "show", "vm2", cloud=DEMO_CLOUD)["addresses"]) == ["net1"]
    osc.run("server", "delete", "--wait", "vm1", json=False, cloud=DEMO_CLOUD)
    ports = osc.run("port", "list", "--network", "net1", cloud=DEMO_CLOUD)
    assert address not in [ip["ip_address"] for p in ports for ip in p["Fixed IP Addresses"]]
    again = osc.run(
        "server", "create", "--flavor", "n.tiny", "--image", "img", "--nic",
        f"net-id={net['id']},v4-fixed-ip={address}", "--wait", "vm3", cloud=DEMO_CLOUD,
    )  # fmt: skip
    assert again["addresses"] == {"net1": [address]}


def test_an_external_network_as_an_operator_makes_it(any_osc: OpenStackCLI) -> None:
    """`network create --external --share` (admin), seen and used by a member, `network set
    --internal`; a member may not make one."""
    osc = any_osc
    net = osc.run("network", "create", "--external", "--share", "public")
    assert net["router:external"] is True and net["shared"] is True
    osc.run("subnet", "create", "public-subnet", "--network", "public", "--subnet-range", "172.24.4.0/24")
    listed = osc.run("network", "list", "--external", cloud=DEMO_CLOUD)
    assert [n["Name"] for n in listed] == ["public"]
    with pytest.raises(CLIError) as refused:
        osc.run("network", "create", "--external", "mine", cloud=DEMO_CLOUD)
    assert "Policy doesn't allow this operation to be performed" in refused.value.stderr
    osc.run("network", "set", "--internal", "public", json=False)
    assert osc.run("network", "show", "public")["router:external"] is False
