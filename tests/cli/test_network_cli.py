"""The unmodified `openstack` CLI against kumo's Neutron subset: networks, subnets, ports,
security groups and rules, and the networking side of `quota set`/`quota show`."""

from __future__ import annotations

import pytest

from tests.cli.conftest import DEMO_CLOUD, CLIError, OpenStackCLI

pytestmark = pytest.mark.cli


def test_network_subnet_and_port(osc: OpenStackCLI) -> None:
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


def test_security_group_rule_and_network_quota(osc: OpenStackCLI) -> None:
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
