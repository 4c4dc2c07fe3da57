from __future__ import annotations

from dataclasses import replace

from kumo.agent.network.firewall.conntrack import filters, live
from kumo.agent.network.spec import PortFirewall, Rule

SSH = Rule("ingress", protocol="tcp", port_range_min=22, port_range_max=22)
WEB = Rule("ingress", protocol="6", port_range_min=80, port_range_max=80, remote_ip_prefix="10.9.0.0/16")
OUT = Rule("egress")
PORT = PortFirewall("p", "fa:16:3e:00:00:01", ("10.0.0.5",), rules=(OUT, SSH, WEB))


def test_growing_or_unchanged_cuts_nothing() -> None:
    assert filters(PORT, PORT) == []
    assert filters(PORT, replace(PORT, rules=(*PORT.rules, Rule("ingress", protocol="icmp")))) == []
    assert filters(None, PORT) == []  # first seen by this process
    assert filters(PORT, replace(PORT, port_security_enabled=False)) == []  # everything allowed now
    assert filters(replace(PORT, port_security_enabled=False), replace(PORT, rules=())) == []


def test_a_removed_rule_cuts_the_flows_it_matched_in_its_direction() -> None:
    assert filters(PORT, replace(PORT, rules=(OUT, WEB))) == [
        ["-d", "10.0.0.5", "-p", "tcp", "--dport", "22"]
    ]
    assert filters(PORT, replace(PORT, rules=(OUT, SSH))) == [
        ["-d", "10.0.0.5", "-s", "10.9.0.0/16", "-p", "tcp", "--dport", "80"]
    ]
    assert filters(PORT, replace(PORT, rules=(SSH, WEB))) == [["-s", "10.0.0.5"]]
    ranged = Rule("ingress", protocol="udp", port_range_min=1000, port_range_max=2000)
    assert filters(replace(PORT, rules=(ranged,)), replace(PORT, rules=())) == [
        ["-d", "10.0.0.5", "-p", "udp"]
    ]
    gre = Rule("ingress", protocol="47")
    assert filters(replace(PORT, rules=(gre,)), replace(PORT, rules=())) == [["-d", "10.0.0.5"]]
    ping = Rule("ingress", protocol="icmp", port_range_min=8, port_range_max=0)
    assert filters(replace(PORT, rules=(ping,)), replace(PORT, rules=())) == [
        ["-d", "10.0.0.5", "-p", "icmp", "--icmp-type", "8", "--icmp-code", "0"]
    ]


def test_a_remote_group_member_removed_cuts_only_that_member() -> None:
    group = Rule("ingress", protocol="tcp", remote_ips=("10.0.0.7", "10.0.0.8"))
    before = replace(PORT, rules=(group,))
    after = replace(PORT, rules=(replace(group, remote_ips=("10.0.0.8",)),))
    assert filters(before, after) == [["-d", "10.0.0.5", "-s", "10.0.0.7/32", "-p", "tcp"]]


def test_an_address_or_the_port_gone_cuts_all_its_flows() -> None:
    two = replace(PORT, ips=("10.0.0.5", "10.0.0.6"))
    assert filters(two, PORT) == [["-s", "10.0.0.6"], ["-d", "10.0.0.6"]]
    assert filters(PORT, None) == [["-s", "10.0.0.5"], ["-d", "10.0.0.5"]]


LISTING = """\
tcp 6 431999 ESTABLISHED src=10.0.0.9 dst=10.0.0.5 sport=40000 dport=22 src=10.0.0.5 dst=10.0.0.9
udp      17 20 src=10.0.0.6 dst=10.0.0.1 sport=5000 dport=53 [UNREPLIED] src=10.0.0.1 dst=10.0.0.6
conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.
"""


def test_only_filters_whose_address_has_an_entry_in_that_direction_run() -> None:
    wanted = [["-d", "10.0.0.5", "-p", "tcp"], ["-s", "10.0.0.5"], ["-s", "10.0.0.6"], ["-d", "10.0.0.7"]]
    # 10.0.0.5 is only the original destination (its reply source does not count).
    assert live(wanted, LISTING) == [["-d", "10.0.0.5", "-p", "tcp"], ["-s", "10.0.0.6"]]
    assert live(wanted, "") == []
