"""Every networking command an operator or an application developer types, through the
unmodified `openstack` CLI, on SQLite and on PostgreSQL (`any_osc`): networks (shared, provider
attributes, port security), subnets (pools, DNS, host routes, no DHCP, no gateway), ports
(fixed IPs, MACs, security groups, port security), security groups and their rules, network
quotas, the empty collections (routers, floating IPs), discovery (extensions, availability
zones), and what a member may not do (another project's network, admin attributes).

CLI calls cost 1-2 s each: each test walks one resource's whole life."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import DEMO_CLOUD, CLIError, OpenStackCLI
from tests.conftest import Fleet, wait_for

pytestmark = pytest.mark.cli


def _fails(osc: OpenStackCLI, *args: str, cloud: str = DEMO_CLOUD) -> str:
    """Run a command that must fail; its stderr."""
    with pytest.raises(CLIError) as failed:
        osc.run_openstack(*args, cloud=cloud)
    return failed.value.stderr


def test_networks_and_subnets(any_osc: OpenStackCLI) -> None:
    osc = any_osc
    # An admin's provider network, shared with every project.
    provider = osc.run(
        "network", "create", "--share", "--provider-network-type", "vlan",
        "--provider-physical-network", "physnet1", "--provider-segment", "120", "public",
    )  # fmt: skip
    assert (provider["provider:network_type"], provider["provider:physical_network"]) == ("vlan", "physnet1")
    assert provider["provider:segmentation_id"] == 120 and provider["shared"] is True
    osc.run("network", "create", "admin-only")
    # A member: its own network, port security off; it sees the shared one, not admin-only.
    mine = osc.run("network", "create", "--disable-port-security", "net1", cloud=DEMO_CLOUD)
    assert mine["port_security_enabled"] is False and mine["shared"] is False
    assert "provider:network_type" not in mine or mine["provider:network_type"] is None
    listed = {n["Name"] for n in osc.run("network", "list", cloud=DEMO_CLOUD)}
    assert listed == {"net1", "public"}
    assert {n["Name"] for n in osc.run("network", "list")} == {"net1", "public", "admin-only"}
    assert "admin-only" in _fails(osc, "network", "show", "admin-only")
    # Admin attributes: 403 in Neutron's format for a member.
    assert "403" in _fails(
        osc, "network", "create", "--provider-network-type", "flat", "--provider-physical-network", "p", "x"
    )
    assert "403" in _fails(osc, "network", "create", "--share", "x")
    # --external: test_network_cli.py's test_an_external_network_as_an_operator_makes_it
    assert "policy" in _fails(osc, "network", "set", "--name", "mine-now", "public").lower()
    osc.run(
        "network", "set", "--name", "app", "--description", "the app's", "--mtu", "1400",
        "--enable-port-security", "net1", json=False, cloud=DEMO_CLOUD,
    )  # fmt: skip
    shown = osc.run("network", "show", "app", cloud=DEMO_CLOUD)
    assert (shown["description"], shown["mtu"], shown["port_security_enabled"]) == ("the app's", 1400, True)

    # Subnets: a pool, DNS, a host route; no DHCP and no gateway.
    subnet = osc.run(
        "subnet", "create", "s1", "--network", "app", "--subnet-range", "10.30.0.0/24",
        "--allocation-pool", "start=10.30.0.100,end=10.30.0.150", "--dns-nameserver", "10.30.0.53",
        "--host-route", "destination=172.16.0.0/12,gateway=10.30.0.254", cloud=DEMO_CLOUD,
    )  # fmt: skip
    assert subnet["allocation_pools"] == [{"start": "10.30.0.100", "end": "10.30.0.150"}]
    assert subnet["dns_nameservers"] == ["10.30.0.53"] and subnet["enable_dhcp"] is True
    assert subnet["host_routes"] == [{"destination": "172.16.0.0/12", "nexthop": "10.30.0.254"}]
    bare = osc.run(
        "subnet", "create", "s2", "--network", "app", "--subnet-range", "10.31.0.0/24", "--no-dhcp",
        "--gateway", "none", cloud=DEMO_CLOUD,
    )  # fmt: skip
    assert bare["gateway_ip"] is None and bare["enable_dhcp"] is False
    assert (
        "overlap"
        in _fails(
            osc, "subnet", "create", "s3", "--network", "app", "--subnet-range", "10.30.0.128/25"
        ).lower()
    )
    rows = osc.run("subnet", "list", "--network", "app", cloud=DEMO_CLOUD)
    assert sorted((r["Name"], r["Subnet"]) for r in rows) == [("s1", "10.30.0.0/24"), ("s2", "10.31.0.0/24")]
    osc.run(
        "subnet", "set", "--name", "first", "--dns-nameserver", "10.30.0.54", "--no-host-route", "s1",
        json=False, cloud=DEMO_CLOUD,
    )  # fmt: skip
    changed = osc.run("subnet", "show", "first", cloud=DEMO_CLOUD)
    assert sorted(changed["dns_nameservers"]) == ["10.30.0.53", "10.30.0.54"] and changed["host_routes"] == []
    # As Neutron: a gateway inside the allocation pool (all of s2's range) is refused.
    assert "conflicts with allocation pool" in _fails(osc, "subnet", "set", "--gateway", "10.31.0.1", "s2")
    osc.run("subnet", "set", "--dhcp", "s2", json=False, cloud=DEMO_CLOUD)
    assert osc.run("subnet", "show", "s2", cloud=DEMO_CLOUD)["enable_dhcp"] is True
    osc.run("subnet", "delete", "s2", json=False, cloud=DEMO_CLOUD)
    osc.run("network", "delete", "app", json=False, cloud=DEMO_CLOUD)  # its subnet and DHCP port go
    assert osc.run("subnet", "list", cloud=DEMO_CLOUD) == []

    # What exists of the rest of Neutron: empty collections and discovery.
    assert osc.run("router", "list", cloud=DEMO_CLOUD) == []
    assert osc.run("floating", "ip", "list", cloud=DEMO_CLOUD) == []
    aliases = {e["Alias"] for e in osc.run("extension", "list", "--network")}
    assert {"security-group", "port-security", "provider", "quotas"} <= aliases
    assert osc.run("availability", "zone", "list", "--network") == []
    # Neutron's agents API is not served (kumo's network hosts are internal): a clean 404.
    assert "404" in _fails(osc, "network", "agent", "list", cloud="kumo")


def test_ports(any_osc: OpenStackCLI) -> None:
    osc = any_osc
    osc.run("network", "create", "net1", cloud=DEMO_CLOUD)
    subnet = osc.run(
        "subnet", "create", "s1", "--network", "net1", "--subnet-range", "10.60.0.0/24", cloud=DEMO_CLOUD
    )  # fmt: skip
    osc.run("security", "group", "create", "web", cloud=DEMO_CLOUD)
    web = osc.run("security", "group", "show", "web", cloud=DEMO_CLOUD)
    default = osc.run("security", "group", "show", "default", cloud=DEMO_CLOUD)
    port = osc.run(
        "port", "create", "p1", "--network", "net1", "--fixed-ip", "subnet=s1,ip-address=10.60.0.77",
        "--mac-address", "fa:16:3e:00:11:22", "--security-group", "web", cloud=DEMO_CLOUD,
    )  # fmt: skip
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.60.0.77"}]
    assert port["mac_address"] == "fa:16:3e:00:11:22" and port["security_group_ids"] == [web["id"]]
    assert "fa:16:3e:00:11:22" in _fails(
        osc, "port", "create", "p2", "--network", "net1", "--mac-address", "fa:16:3e:00:11:22"
    )
    plain = osc.run("port", "create", "p2", "--network", "net1", cloud=DEMO_CLOUD)
    assert plain["security_group_ids"] == [default["id"]] and plain["port_security_enabled"] is True
    none = osc.run("port", "create", "p3", "--network", "net1", "--no-security-group", cloud=DEMO_CLOUD)
    assert none["security_group_ids"] == []
    open_port = osc.run(
        "port", "create", "p4", "--network", "net1", "--disable-port-security", "--no-security-group",
        cloud=DEMO_CLOUD,
    )  # fmt: skip
    assert open_port["port_security_enabled"] is False
    assert "port security" in _fails(osc, "port", "set", "--security-group", "web", "p4").lower().replace(
        "_", " "
    ).replace("-", " ")
    osc.run(
        "port", "set", "--name", "p2-web", "--security-group", "web", "--description", "two",
        "--fixed-ip", "subnet=s1,ip-address=10.60.0.78", "p2", json=False, cloud=DEMO_CLOUD,
    )  # fmt: skip
    changed = osc.run("port", "show", "p2-web", cloud=DEMO_CLOUD)
    assert sorted(changed["security_group_ids"]) == sorted([default["id"], web["id"]])
    assert "10.60.0.78" in [ip["ip_address"] for ip in changed["fixed_ips"]]
    osc.run("port", "set", "--no-security-group", "p2-web", json=False, cloud=DEMO_CLOUD)
    assert osc.run("port", "show", "p2-web", cloud=DEMO_CLOUD)["security_group_ids"] == []
    osc.run("port", "unset", "--security-group", "web", "p1", json=False, cloud=DEMO_CLOUD)
    assert osc.run("port", "show", "p1", cloud=DEMO_CLOUD)["security_group_ids"] == []
    names = sorted(p["Name"] for p in osc.run("port", "list", "--network", "net1", cloud=DEMO_CLOUD))
    assert names == ["", "p1", "p2-web", "p3", "p4"]  # "": the network's DHCP port
    # The admin sets the binding; a member may not.
    assert "403" in _fails(osc, "port", "set", "--host", "h1", "p3")
    osc.run("port", "set", "--host", "h1", "p3", json=False)
    assert osc.run("port", "show", "p3")["binding_host_id"] == "h1"
    # A network with ports of its users' cannot go (409).
    assert "409" in _fails(osc, "network", "delete", "net1")
    osc.run("port", "delete", "p1", "p2-web", "p3", "p4", json=False, cloud=DEMO_CLOUD)
    assert [p["Name"] for p in osc.run("port", "list", "--network", "net1", cloud=DEMO_CLOUD)] == [""]


def test_security_groups_and_rules(any_osc: OpenStackCLI) -> None:
    osc = any_osc
    osc.run("security", "group", "create", "--description", "front", "web", cloud=DEMO_CLOUD)
    osc.run("security", "group", "create", "db", cloud=DEMO_CLOUD)
    osc.run("security", "group", "set", "--name", "www", "--description", "the front", "web", json=False,
            cloud=DEMO_CLOUD)  # fmt: skip
    shown = osc.run("security", "group", "show", "www", cloud=DEMO_CLOUD)
    assert shown["description"] == "the front" and len(shown["rules"]) == 2  # egress v4 and v6

    def rule(*args: str) -> dict[str, object]:
        made: dict[str, object] = osc.run("security", "group", "rule", "create", *args, cloud=DEMO_CLOUD)
        return made

    ranged = rule("--protocol", "tcp", "--dst-port", "8000:8080", "--remote-ip", "10.0.0.0/8", "www")
    assert (ranged["port_range_min"], ranged["port_range_max"]) == (8000, 8080)
    assert (ranged["remote_ip_prefix"], ranged["direction"]) == ("10.0.0.0/8", "ingress")
    dns = rule("--protocol", "udp", "--dst-port", "53", "--egress", "www")
    assert (dns["direction"], dns["port_range_min"], dns["port_range_max"]) == ("egress", 53, 53)
    ping = rule("--protocol", "icmp", "--icmp-type", "8", "--icmp-code", "0", "www")
    assert (ping["protocol"], ping["port_range_min"], ping["port_range_max"]) == ("icmp", 8, 0)
    peer = rule("--protocol", "tcp", "--dst-port", "5432", "--remote-group", "www", "db")
    assert peer["remote_group_id"] == shown["id"] and peer["remote_ip_prefix"] is None
    v6 = rule("--ethertype", "IPv6", "--protocol", "ipv6-icmp", "www")
    assert (v6["ether_type"], v6["remote_ip_prefix"]) == ("IPv6", "::/0")
    assert (
        "port"
        in _fails(
            osc, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "90:80", "www"
        ).lower()
    )
    assert (
        "exists"
        in _fails(
            osc,
            "security",
            "group",
            "rule",
            "create",
            "--protocol",
            "udp",
            "--dst-port",
            "53",
            "--egress",
            "www",
        ).lower()
    )
    rules = osc.run("security", "group", "rule", "list", "www", cloud=DEMO_CLOUD)
    assert len(rules) == 6
    ingress = osc.run("security", "group", "rule", "list", "--ingress", "--protocol", "tcp", "www",
                      cloud=DEMO_CLOUD)  # fmt: skip
    assert [r["ID"] for r in ingress] == [ranged["id"]]
    shown_rule = osc.run("security", "group", "rule", "show", str(ping["id"]), cloud=DEMO_CLOUD)
    assert shown_rule["protocol"] == "icmp"
    osc.run("security", "group", "rule", "delete", str(ping["id"]), json=False, cloud=DEMO_CLOUD)
    # A group a port uses cannot go (409); one that is only another's remote group can, and
    # takes the rules naming it along (Neutron's cascade).
    osc.run("network", "create", "n0", cloud=DEMO_CLOUD)
    osc.run("port", "create", "--network", "n0", "--security-group", "www", "p0", cloud=DEMO_CLOUD)
    assert "409" in _fails(osc, "security", "group", "delete", "www")
    osc.run("port", "delete", "p0", json=False, cloud=DEMO_CLOUD)
    osc.run("network", "delete", "n0", json=False, cloud=DEMO_CLOUD)
    osc.run("security", "group", "delete", "www", json=False, cloud=DEMO_CLOUD)
    db_rules = osc.run("security", "group", "rule", "list", "db", cloud=DEMO_CLOUD)
    assert peer["id"] not in [r["ID"] for r in db_rules] and len(db_rules) == 2
    osc.run("security", "group", "delete", "db", json=False, cloud=DEMO_CLOUD)
    assert [g["Name"] for g in osc.run("security", "group", "list", cloud=DEMO_CLOUD)] == ["default"]
    # An admin sees every project's groups; --project narrows it.
    assert {g["Name"] for g in osc.run("security", "group", "list", "--project", "demo")} == {"default"}

    osc.run(
        "quota", "set", "--networks", "2", "--subnets", "3", "--ports", "10", "--secgroups", "4",
        "--secgroup-rules", "30", "demo", json=False,
    )  # fmt: skip
    quota = {row["Resource"]: row["Limit"] for row in osc.run("quota", "show", "--network", "demo")}
    assert (quota["networks"], quota["subnets"], quota["ports"]) == (2, 3, 10)
    assert (quota["security_groups"], quota["security_group_rules"]) == (4, 30)
    osc.run("network", "create", "n1", cloud=DEMO_CLOUD)
    osc.run("network", "create", "n2", cloud=DEMO_CLOUD)
    assert "quota" in _fails(osc, "network", "create", "n3").lower()
    usage = {r["Resource"]: r for r in osc.run("quota", "show", "--usage", "--network", "demo")}
    assert usage["networks"]["In Use"] == 2
    assert "403" in _fails(osc, "quota", "set", "--networks", "9", "demo")


def test_servers_nics_and_interfaces(any_osc: OpenStackCLI, any_fleet: Fleet, tmp_path: Path) -> None:
    """`server create` with --network, --nic port-id=, --nic none, --nic auto; `server add/remove
    port`, `server add/remove network`, `server add/remove security group`; `port list --server`."""
    osc = any_osc
    any_fleet.add("cli-nic-host", vcpus=8, memory_mb=8192)
    osc.run("flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "--public", "n.tiny")
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"\0" * 4096)
    osc.run(
        "image", "create", "--file", str(disk), "--disk-format", "raw", "--container-format", "bare",
        "--public", "img",
    )  # fmt: skip
    osc.run("network", "create", "front", cloud=DEMO_CLOUD)
    osc.run(
        "subnet",
        "create",
        "front-s",
        "--network",
        "front",
        "--subnet-range",
        "10.70.0.0/24",
        cloud=DEMO_CLOUD,
    )
    boot = ("server", "create", "--flavor", "n.tiny", "--image", "img", "--wait")
    by_net = osc.run(*boot, "--network", "front", "vm-net", cloud=DEMO_CLOUD)
    [address] = by_net["addresses"]["front"]
    assert address.startswith("10.70.0.")
    port = osc.run("port", "create", "--network", "front", "mine", cloud=DEMO_CLOUD)
    by_port = osc.run(*boot, "--nic", f"port-id={port['id']}", "vm-port", cloud=DEMO_CLOUD)
    assert by_port["addresses"] == {"front": [port["fixed_ips"][0]["ip_address"]]}
    bare = osc.run(*boot, "--nic", "none", "vm-bare", cloud=DEMO_CLOUD)
    assert bare["addresses"] == {}
    auto = osc.run(*boot, "--nic", "auto", "vm-auto", cloud=DEMO_CLOUD)
    assert list(auto["addresses"]) == ["front"]
    [listed] = osc.run("port", "list", "--server", "vm-port", cloud=DEMO_CLOUD)
    assert listed["ID"] == port["id"]

    # Interfaces of a running server: a network, then a port; removed again.
    osc.run("network", "create", "back", cloud=DEMO_CLOUD)
    osc.run(
        "subnet", "create", "back-s", "--network", "back", "--subnet-range", "10.71.0.0/24", cloud=DEMO_CLOUD
    )
    osc.run("server", "add", "network", "vm-bare", "back", json=False, cloud=DEMO_CLOUD)
    spare = osc.run("port", "create", "--network", "front", "spare", cloud=DEMO_CLOUD)
    osc.run("server", "add", "port", "vm-bare", "spare", json=False, cloud=DEMO_CLOUD)
    shown = osc.run("server", "show", "vm-bare", cloud=DEMO_CLOUD)
    assert sorted(shown["addresses"]) == ["back", "front"]
    assert shown["addresses"]["front"] == [spare["fixed_ips"][0]["ip_address"]]
    assert "in use" in _fails(osc, "server", "add", "port", "vm-net", "spare")
    [back_port] = osc.run("port", "list", "--server", "vm-bare", "--network", "back", cloud=DEMO_CLOUD)
    osc.run("server", "remove", "port", "vm-bare", "spare", json=False, cloud=DEMO_CLOUD)
    osc.run("server", "remove", "network", "vm-bare", "back", json=False, cloud=DEMO_CLOUD)

    def detached() -> bool:
        return osc.run("port", "list", "--server", "vm-bare", cloud=DEMO_CLOUD) == []

    wait_for(detached, timeout=60, interval=1)
    assert osc.run("port", "show", "spare", cloud=DEMO_CLOUD)["device_id"] == ""  # kept, unbound
    assert back_port["ID"] not in [p["ID"] for p in osc.run("port", "list", cloud=DEMO_CLOUD)]  # made: gone

    # Security groups of a server: on every port of it.
    osc.run("security", "group", "create", "web", cloud=DEMO_CLOUD)
    osc.run("server", "add", "security", "group", "vm-net", "web", json=False, cloud=DEMO_CLOUD)
    groups = {g["name"] for g in osc.run("server", "show", "vm-net", cloud=DEMO_CLOUD)["security_groups"]}
    assert groups == {"default", "web"}
    osc.run("server", "remove", "security", "group", "vm-net", "web", json=False, cloud=DEMO_CLOUD)
    groups = {g["name"] for g in osc.run("server", "show", "vm-net", cloud=DEMO_CLOUD)["security_groups"]}
    assert groups == {"default"}
