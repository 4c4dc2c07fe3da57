from __future__ import annotations

import pytest

from kumo.agent.network.firewall.iptables import (
    open_after,
    parse_state,
    port_lines,
    restore6_text,
    restore_text,
    rule_lines,
    teardown_text,
)
from kumo.agent.network.spec import PortFirewall, Rule

PORT = PortFirewall(
    "65c0ee9f-d6aa",
    "FA:16:3E:C9:CB:F0",
    ("10.0.0.5", "10.0.1.5"),
    rules=(Rule("egress"), Rule("ingress", protocol="tcp", port_range_min=22, port_range_max=22)),
)


@pytest.mark.parametrize(
    ("rule", "lines"),
    [
        (Rule("ingress"), ["-A c -j RETURN"]),
        (Rule("ingress", remote_ip_prefix="0.0.0.0/0"), ["-A c -j RETURN"]),
        (
            Rule("ingress", protocol="tcp", port_range_min=22, port_range_max=22),
            ["-A c -p tcp -m tcp --dport 22 -j RETURN"],
        ),
        (
            Rule("ingress", protocol="udp", port_range_min=1000, port_range_max=2000),
            ["-A c -p udp -m udp --dport 1000:2000 -j RETURN"],
        ),
        (Rule("ingress", protocol="6", port_range_min=1, port_range_max=65535), ["-A c -p tcp -j RETURN"]),
        (Rule("ingress", protocol="icmp"), ["-A c -p icmp -j RETURN"]),
        (
            Rule("ingress", protocol="icmp", port_range_min=8),
            ["-A c -p icmp -m icmp --icmp-type 8 -j RETURN"],
        ),
        (
            Rule("ingress", protocol="icmp", port_range_min=8, port_range_max=0),
            ["-A c -p icmp -m icmp --icmp-type 8/0 -j RETURN"],
        ),
        (Rule("ingress", protocol="47"), ["-A c -p 47 -j RETURN"]),
        # Protocols the API sends by number, with a port match module of their own ...
        (
            Rule("ingress", protocol="132", port_range_min=22, port_range_max=22),
            ["-A c -p sctp -m sctp --dport 22 -j RETURN"],
        ),
        (
            Rule("ingress", protocol="33", port_range_min=5000, port_range_max=5010),
            ["-A c -p dccp -m dccp --dport 5000:5010 -j RETURN"],
        ),
        (Rule("ingress", protocol="136"), ["-A c -p udplite -j RETURN"]),
        # ... or without one: a range iptables cannot match is never widened to all ports.
        (Rule("ingress", protocol="136", port_range_min=53, port_range_max=53), []),
        (
            Rule("ingress", protocol="136", port_range_min=1, port_range_max=65535),
            ["-A c -p udplite -j RETURN"],
        ),
        (Rule("ingress", remote_ip_prefix="10.9.0.0/16"), ["-A c -s 10.9.0.0/16 -j RETURN"]),
        (
            Rule("egress", protocol="tcp", remote_ip_prefix="10.9.0.0/16"),
            ["-A c -d 10.9.0.0/16 -p tcp -j RETURN"],
        ),
        (
            Rule("ingress", remote_ips=("10.0.0.7", "10.0.0.6", "10.0.0.7")),
            ["-A c -s 10.0.0.6/32 -j RETURN", "-A c -s 10.0.0.7/32 -j RETURN"],
        ),
        (Rule("ingress", remote_ips=()), []),  # a remote group with no members matches nothing
        (Rule("ingress", ethertype="IPv6"), []),
    ],
)
def test_rule_lines(rule: Rule, lines: list[str]) -> None:
    assert rule_lines("c", rule) == lines


def test_port_chains_golden() -> None:
    assert port_lines(PORT) == [
        "-A kumo-i-65c0ee9f-d6 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        "-A kumo-i-65c0ee9f-d6 -m conntrack --ctstate INVALID -j DROP",
        "-A kumo-i-65c0ee9f-d6 -p udp -m udp --sport 67 --dport 68 -j RETURN",
        "-A kumo-i-65c0ee9f-d6 -p tcp -m tcp --dport 22 -j RETURN",
        "-A kumo-i-65c0ee9f-d6 -j DROP",
        "-A kumo-o-65c0ee9f-d6 -s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67"
        " -j RETURN",
        "-A kumo-o-65c0ee9f-d6 -j kumo-s-65c0ee9f-d6",
        "-A kumo-o-65c0ee9f-d6 -p udp -m udp --sport 68 --dport 67 -j RETURN",
        "-A kumo-o-65c0ee9f-d6 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j RETURN",
        "-A kumo-o-65c0ee9f-d6 -p udp -m udp --sport 67 --dport 68 -j DROP",
        "-A kumo-o-65c0ee9f-d6 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        "-A kumo-o-65c0ee9f-d6 -m conntrack --ctstate INVALID -j DROP",
        "-A kumo-o-65c0ee9f-d6 -j RETURN",
        "-A kumo-o-65c0ee9f-d6 -j DROP",
        "-A kumo-s-65c0ee9f-d6 -s 10.0.0.5/32 -m mac --mac-source fa:16:3e:c9:cb:f0 -j RETURN",
        "-A kumo-s-65c0ee9f-d6 -s 10.0.1.5/32 -m mac --mac-source fa:16:3e:c9:cb:f0 -j RETURN",
        "-A kumo-s-65c0ee9f-d6 -j DROP",
    ]


def test_one_transaction_rebuilds_the_top_chain_and_touches_only_named_ports() -> None:
    text = restore_text(keep={"aaaaaaaaaaa", "bbbbbbbbbbb"}, apply=[PORT], drop={"bbbbbbbbbbb"})
    lines = text.splitlines()
    assert lines[0] == "*filter" and lines[-1] == "COMMIT"
    assert ":kumo-fw - [0:0]" in lines
    # The applied port's chains are declared (created or flushed) and filled.
    assert {
        ":kumo-i-65c0ee9f-d6 - [0:0]",
        ":kumo-o-65c0ee9f-d6 - [0:0]",
        ":kumo-s-65c0ee9f-d6 - [0:0]",
    } <= set(lines)
    # The kept port keeps its jumps but its chains are not rewritten; the dropped one is deleted.
    assert (
        "-A kumo-fw -m physdev --physdev-in tapaaaaaaaaaaa --physdev-is-bridged -j kumo-o-aaaaaaaaaaa"
        in lines
    )
    assert not any(line.startswith((":kumo-i-aaaaaaaaaaa", "-A kumo-i-aaaaaaaaaaa")) for line in lines)
    assert not any("tapbbbbbbbbbbb" in line for line in lines)
    assert {"-X kumo-i-bbbbbbbbbbb", "-X kumo-o-bbbbbbbbbbb", "-X kumo-s-bbbbbbbbbbb"} <= set(lines)
    assert lines.index("-A kumo-fw -o brq+ -j ACCEPT") > lines.index(
        "-A kumo-fw -m physdev --physdev-out tap65c0ee9f-d6 --physdev-is-bridged -j kumo-i-65c0ee9f-d6"
    )


KNOWN_TAIL = [
    "-A kumo-fw -o brq+ -m physdev --physdev-in tap+ --physdev-is-bridged -j kumo-fw-in",
    "-A kumo-fw -o brq+ -m physdev --physdev-out tap+ --physdev-is-bridged -j kumo-fw-out",
    "-A kumo-fw -o brq+ -j ACCEPT",
]


def test_port_security_disabled_removes_the_ports_chains_and_opens_its_tap() -> None:
    open_port = PortFirewall("65c0ee9f-d6aa", "fa:16:3e:c9:cb:f0", ("10.0.0.5",), port_security_enabled=False)
    lines = restore_text(keep={"65c0ee9f-d6"}, apply=[open_port], drop=set()).splitlines()
    assert "-X kumo-i-65c0ee9f-d6" in lines
    assert not any(" -j kumo-i-65c0ee9f-d6" in line or " -j kumo-o-65c0ee9f-d6" in line for line in lines)
    # Never seen before: no chains, only its tap known (open), every other tap closed.
    assert restore_text(keep=set(), apply=[open_port], drop=set()).splitlines() == [
        "*filter",
        ":kumo-fw - [0:0]",
        ":kumo-fw-in - [0:0]",
        ":kumo-fw-out - [0:0]",
        *KNOWN_TAIL,
        "-A kumo-fw-in -m physdev --physdev-in tap65c0ee9f-d6 --physdev-is-bridged -j RETURN",
        "-A kumo-fw-out -m physdev --physdev-out tap65c0ee9f-d6 --physdev-is-bridged -j RETURN",
        "-A kumo-fw-in -j DROP",
        "-A kumo-fw-out -j DROP",
        "COMMIT",
    ]


def test_unknown_taps_are_closed_known_ones_stay_known_until_dropped() -> None:
    # Open ports stay open across a commit that names others; a dropped or now secured one
    # leaves the open set; a secured port is known through its chains.
    assert open_after({"a", "b", "c"}, [PORT], {"b"}) == {"a", "c"}
    secured_a = PortFirewall("x", "fa:16:3e:00:00:01", (), tap="tapa")
    assert open_after({"a"}, [secured_a], set()) == set()
    lines = restore_text(keep={"s"}, apply=(), drop={"o2"}, opened={"o1", "o2"}).splitlines()
    known = [line for line in lines if line.startswith("-A kumo-fw-in")]
    assert known == [
        "-A kumo-fw-in -m physdev --physdev-in tapo1 --physdev-is-bridged -j RETURN",
        "-A kumo-fw-in -m physdev --physdev-in taps --physdev-is-bridged -j RETURN",
        "-A kumo-fw-in -j DROP",
    ]
    # The secured ports' jumps come before the known-tap checks (an open port's packet to a
    # secured one still passes that one's ingress chain).
    assert lines.index(
        "-A kumo-fw -m physdev --physdev-out taps --physdev-is-bridged -j kumo-i-s"
    ) < lines.index(KNOWN_TAIL[0])


def test_state_reads_secured_open_and_the_jump() -> None:
    saved = (
        "*filter\n:kumo-fw - [0:0]\n:kumo-i-sss - [0:0]\n"
        "-A FORWARD -m physdev --physdev-is-bridged -j kumo-fw\n"
        "-A kumo-fw-in -m physdev --physdev-in tapsss --physdev-is-bridged -j RETURN\n"
        "-A kumo-fw-in -m physdev --physdev-in tapooo --physdev-is-bridged -j RETURN\n"
        "-A kumo-fw-in -j DROP\nCOMMIT\n"
    )
    assert parse_state(saved) == ({"sss"}, {"ooo"}, True)
    assert parse_state("*filter\nCOMMIT\n") == (set(), set(), False)


def test_ipv6_of_secured_ports_is_dropped() -> None:
    assert restore6_text({"65c0ee9f-d6"}).splitlines() == [
        "*filter",
        ":kumo-fw - [0:0]",
        "-A kumo-fw -m physdev --physdev-in tap65c0ee9f-d6 --physdev-is-bridged -j DROP",
        "-A kumo-fw -m physdev --physdev-out tap65c0ee9f-d6 --physdev-is-bridged -j DROP",
        "COMMIT",
    ]


SAVED = """# Generated by iptables-save
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:kumo-fw - [0:0]
:kumo-i-65c0ee9f-d6aa - [0:0]
-A FORWARD -m physdev --physdev-is-bridged -j kumo-fw
-A FORWARD -j DOCKER
-A kumo-fw -m physdev --physdev-in tap65c0ee9f-d6aa --physdev-is-bridged -j kumo-i-65c0ee9f-d6aa
-A kumo-i-65c0ee9f-d6aa -j DROP
COMMIT
"""


def test_teardown_removes_the_jump_and_every_kumo_chain_and_nothing_else() -> None:
    assert teardown_text(SAVED) == (
        "*filter\n-D FORWARD -m physdev --physdev-is-bridged -j kumo-fw\n"
        ":kumo-fw - [0:0]\n:kumo-i-65c0ee9f-d6aa - [0:0]\n"
        "-X kumo-fw\n-X kumo-i-65c0ee9f-d6aa\nCOMMIT\n"
    )
    clean = "*filter\n:FORWARD DROP [0:0]\n:DOCKER - [0:0]\n-A FORWARD -j DOCKER\nCOMMIT\n"
    assert teardown_text(clean) is None
