"""The pure part of kumo/network/firewall.py: a host's ports and their groups' rules → what the
agent applies (remote groups resolved to members, protocols as numbers, no rules without port
security), and the agent's parser and iptables agreeing on every protocol the API accepts."""

from __future__ import annotations

import pytest

from kumo.agent.network.firewall.iptables import rule_lines
from kumo.agent.network.spec import port_firewall_from_json
from kumo.network.firewall import IP_PROTOCOL_NUMBERS, PortRow, RuleRow, protocol_number, resolve
from kumo.network.security_groups import NAMED_PROTOCOLS

WEB, DB = "g-web", "g-db"


def rule(
    direction: str = "ingress", protocol: str | None = None, low: int | None = None, **kw: str
) -> RuleRow:
    return RuleRow(
        direction, kw.get("ethertype", "IPv4"), protocol, low, low, kw.get("prefix"), kw.get("remote")
    )


def test_rules_of_every_group_once_with_remote_groups_resolved() -> None:
    ports = [
        PortRow("p1", "fa:16:3e:00:00:01", True, "tapp1"),
        PortRow("p2", "fa:16:3e:00:00:02", False, "tapp2"),
    ]
    (p1, p2) = resolve(
        ports,
        addresses={"p1": ["10.0.0.5"], "p2": ["10.0.0.6"]},
        groups_of={"p1": [WEB, DB], "p2": [WEB]},
        rules_of={
            WEB: [rule("egress"), rule(protocol="tcp", low=22)],
            DB: [rule("egress"), rule(protocol="sctp", low=5432, remote=WEB), rule(remote="g-empty")],
        },
        members={WEB: ["10.0.0.9", "10.0.0.5", "10.0.0.9"], "g-empty": []},
    )
    assert p1["fixed_ips"] == [{"ip_address": "10.0.0.5"}] and p1["tap"] == "tapp1"
    protocols = [
        (r["direction"], r["protocol"], r["port_range_min"], r.get("remote_ips")) for r in p1["rules"]
    ]
    assert protocols == [
        ("egress", None, None, None),  # the same rule in two groups: once
        ("ingress", "6", 22, None),
        ("ingress", "132", 5432, ["10.0.0.5", "10.0.0.9"]),
        ("ingress", None, None, []),  # a group without members matches no one
    ]
    assert p2["port_security_enabled"] is False and p2["rules"] == []
    parsed = port_firewall_from_json(p1)
    assert parsed.rules[2].remote_ips == ("10.0.0.5", "10.0.0.9")


@pytest.mark.parametrize("name", sorted(NAMED_PROTOCOLS))
def test_every_protocol_the_api_accepts_reaches_iptables_as_asked(name: str) -> None:
    number = protocol_number(name)
    assert number is not None and 0 <= int(number) <= 255
    if not name.isdigit():
        assert int(number) == IP_PROTOCOL_NUMBERS[name]
    parsed = port_firewall_from_json(
        {
            "id": "p1",
            "mac_address": "fa:16:3e:00:00:01",
            "rules": [{"direction": "ingress", "protocol": number}],
        }
    )
    (line,) = rule_lines("c", parsed.rules[0])
    assert " -p " in line and line.endswith("-j RETURN")


def test_numbers_stay_numbers_and_any_stays_any() -> None:
    assert protocol_number(None) is None
    assert protocol_number("47") == "47"
    assert protocol_number("TCP") == "6"
