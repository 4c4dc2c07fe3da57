from __future__ import annotations

from pathlib import Path

import pytest

from kumo.agent.network.dnsmasq_conf import (
    Paths,
    collisions,
    command_line,
    host_files,
    host_key,
    host_line,
    options_text,
    parse_leases,
    stale_leases,
)
from kumo.agent.network.spec import HostRoute, Reservation
from tests.unit.agent.network.builders import network, subnet


def test_host_line_has_no_tags() -> None:
    assert (
        host_line(Reservation("p1", "fa:16:3e:00:00:11", "10.0.0.11", "vm1"))
        == "fa:16:3e:00:00:11,vm1,10.0.0.11\n"
    )
    # A hostname dnsmasq would refuse is cleaned or left out, never passed through.
    assert host_line(Reservation("p1", "fa:16:3e:00:00:11", "10.0.0.11", "My VM_1!")) == (
        "fa:16:3e:00:00:11,my-vm-1,10.0.0.11\n"
    )
    assert host_line(Reservation("p1", "fa:16:3e:00:00:11", "10.0.0.11", "set:x")) == (
        "fa:16:3e:00:00:11,set-x,10.0.0.11\n"
    )
    assert (
        host_line(Reservation("p1", "fa:16:3e:00:00:11", "10.0.0.11", "")) == "fa:16:3e:00:00:11,10.0.0.11\n"
    )
    assert (
        host_line(Reservation("p1", "fa:16:3e:00:00:11", "10.0.0.11", "123"))
        == "fa:16:3e:00:00:11,10.0.0.11\n"
    )


def test_one_file_per_port_and_address() -> None:
    spec = network(
        reservations=(
            Reservation("p1", "fa:16:3e:00:00:11", "10.0.0.11"),
            Reservation("p1", "fa:16:3e:00:00:11", "10.0.1.11"),
            Reservation("p2", "fa:16:3e:00:00:12", "10.0.0.12"),
        )
    )
    assert sorted(host_files(spec)) == ["p1", "p1_10.0.1.11", "p2"]


def test_command_line_is_static_per_subnet() -> None:
    spec = network(subnet("s1", "10.0.0.0/24"), subnet("s2", "10.0.1.0/28", "10.0.1.1", "10.0.1.2"))
    argv = command_line(spec, Paths(Path("/state/n1")))
    assert argv[0] == "dnsmasq"
    assert "--port=0" in argv and "--dhcp-authoritative" in argv
    assert f"--interface={spec.ns_veth}" in argv
    assert "--dhcp-hostsdir=/state/n1/hosts.d" in argv
    assert "--pid-file=/state/n1/pid" in argv
    assert [a for a in argv if a.startswith("--dhcp-range")] == [
        "--dhcp-range=set:subnet-s1,10.0.0.0,static,255.255.255.0,86400s",
        "--dhcp-range=set:subnet-s2,10.0.1.0,static,255.255.255.240,86400s",
    ]
    assert "--dhcp-lease-max=272" in argv
    assert command_line(spec, Paths(Path("/state/n1"))) == argv  # adoption compares them


def test_options_route_metadata_through_the_dhcp_port() -> None:
    spec = network(
        subnet(dns=("9.9.9.9", "1.1.1.1"), routes=(HostRoute("192.168.0.0/16", "10.0.0.254"),)),
        subnet("s2", "10.0.1.0/24", None, "10.0.1.2"),
        mtu=1450,
    )
    assert options_text(spec) == (
        "tag:subnet-s1,option:router,10.0.0.1\n"
        "tag:subnet-s1,option:classless-static-route,169.254.169.254/32,10.0.0.2,"
        "192.168.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1\n"
        "tag:subnet-s1,option:dns-server,9.9.9.9,1.1.1.1\n"
        "tag:subnet-s1,option:mtu,1450\n"
        "tag:subnet-s2,option:router\n"
        "tag:subnet-s2,option:classless-static-route,169.254.169.254/32,10.0.1.2\n"
        "tag:subnet-s2,option:dns-server\n"
        "tag:subnet-s2,option:mtu,1450\n"
    )


def test_stale_leases_are_those_no_longer_reserved() -> None:
    leases = parse_leases(
        "1796698404 fa:16:3e:00:00:11 10.0.0.11 vm1 01:fa:16:3e:00:00:11\n"
        "1796698404 FA:16:3E:00:00:12 10.0.0.12 * *\n"
        "1796698404 fa:16:3e:00:00:13 10.0.0.13 vm3 *\n"
        "duid 00:01:00:01:2c:8e\n"
    )
    assert [(lease.mac, lease.ip, lease.client_id) for lease in leases] == [
        ("fa:16:3e:00:00:11", "10.0.0.11", "01:fa:16:3e:00:00:11"),
        ("fa:16:3e:00:00:12", "10.0.0.12", None),
        ("fa:16:3e:00:00:13", "10.0.0.13", None),
    ]
    spec = network(
        reservations=(
            Reservation("p2", "fa:16:3e:00:00:12", "10.0.0.12"),
            Reservation("p3", "fa:16:3e:00:00:99", "10.0.0.13"),  # the IP moved to a new MAC
        )
    )
    assert [lease.ip for lease in stale_leases(leases, spec)] == ["10.0.0.11", "10.0.0.13"]


def line(mac_tail: str, ip: str, name: str = "vm") -> str:
    return host_line(Reservation("p", f"fa:16:3e:00:00:{mac_tail}", ip, name))


def test_host_key_is_mac_and_ip_with_or_without_a_hostname() -> None:
    assert host_key(line("11", "10.0.0.11")) == ("fa:16:3e:00:00:11", "10.0.0.11")
    assert host_key(line("11", "10.0.0.11", "")) == ("fa:16:3e:00:00:11", "10.0.0.11")
    assert host_key("FA:16:3E:00:00:AB,10.0.0.1\n") == ("fa:16:3e:00:00:ab", "10.0.0.1")


HELD = {line("11", "10.0.0.11"), line("12", "10.0.0.12", "")}


@pytest.mark.parametrize(
    ("new", "collides"),
    [
        (line("21", "10.0.0.21"), False),  # a new MAC, a new address: inotify serves it
        (line("11", "10.0.0.11"), False),  # the very line held (a port removed and put back)
        (line("21", "10.0.0.11"), True),  # a held address, another MAC: dnsmasq would refuse it
        (line("11", "10.0.0.31"), True),  # a held MAC with another address: two records
        (line("11", "10.0.0.11", "renamed"), True),  # same MAC and address, another hostname
        (line("12", "10.0.0.12", "named"), True),
    ],
)
def test_a_new_line_collides_with_a_held_one_by_address_or_mac(new: str, collides: bool) -> None:
    assert collisions({"port-new": new}, HELD) == (["port-new"] if collides else [])


def test_collisions_name_every_colliding_file_and_nothing_collides_with_nothing_held() -> None:
    new = {"b": line("21", "10.0.0.11"), "a": line("12", "10.0.0.40"), "c": line("30", "10.0.0.30")}
    assert collisions(new, HELD) == ["a", "b"]
    assert collisions(new, set()) == []
