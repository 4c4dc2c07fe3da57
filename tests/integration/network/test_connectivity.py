"""L2 per network, isolation between networks, security groups on the tap (physdev + conntrack):
rules changed live, anti-spoofing."""

from __future__ import annotations

from dataclasses import replace

from kumo.agent.network.spec import PortFirewall, Rule
from tests.integration.network.conftest import Client, Lab, mac_of, wait_until

EGRESS_ANY = Rule("egress")


def up(lab: Lab, client: Client, prefixlen: int) -> str:
    ip = client.dhcp()
    assert ip is not None, f"{client.name} got no lease"
    client.configure(ip, prefixlen)
    return ip


def test_clients_on_one_network_reach_each_other_and_not_another_network(lab: Lab) -> None:
    blue = lab.network("10.176.0.0/24", reservations=2)
    green = lab.network("10.177.0.0/24", reservations=1)
    lab.host.reconcile(blue)
    lab.host.reconcile(green)
    b0, b1 = lab.client(blue, mac_of(0)), lab.client(blue, mac_of(1))
    g0 = lab.client(green, mac_of(0))
    up(lab, b0, 24)
    b1_ip = up(lab, b1, 24)
    g0_ip = up(lab, g0, 24)
    lab.procs += [b1.listen(8080), g0.listen(8080)]

    assert b0.connect(b1_ip, 8080)
    assert not b0.connect(g0_ip, 8080)
    # Even a client that puts itself in the other network's subnet is on the wrong L2.
    b0.exec("ip", "addr", "add", "10.177.0.99/24", "dev", "eth0")
    assert not b0.connect(g0_ip, 8080, source="10.177.0.99")


def test_security_group_rules_apply_live_and_spoofing_is_dropped(lab: Lab) -> None:
    spec = lab.network("10.178.0.0/24", reservations=2)
    lab.host.reconcile(spec)
    web, client = lab.client(spec, mac_of(0)), lab.client(spec, mac_of(1))
    web_ip, client_ip = spec.reservations[0].ip, spec.reservations[1].ip

    def port(c: Client, ip: str, *rules: Rule) -> PortFirewall:
        return PortFirewall(c.port_id, c.mac, (ip,), rules=(EGRESS_ANY, *rules), tap=c.tap)

    # Rules first (keyed on tap names), as before a guest starts; DHCP still works through them.
    lab.host.plug(spec.id, spec.mtu, [port(web, web_ip), port(client, client_ip)])
    assert up(lab, web, 24) == web_ip and up(lab, client, 24) == client_ip
    lab.procs += [web.listen(8080), client.listen(8080)]
    assert not client.connect(web_ip, 8080)  # no ingress rule: closed

    lab.host.plug(
        spec.id,
        spec.mtu,
        [port(web, web_ip, Rule("ingress", protocol="tcp", port_range_min=8080, port_range_max=8080))],
    )
    assert wait_until(lambda: client.connect(web_ip, 8080), timeout=2.0)  # opened live
    assert not web.connect(client_ip, 8080)  # the client's own ingress is still closed

    # The client forges another source address: dropped by the anti-spoofing chain.
    client.exec("ip", "addr", "add", "10.178.0.200/24", "dev", "eth0")
    assert not client.connect(web_ip, 8080, source="10.178.0.200")
    assert client.connect(web_ip, 8080, source=client_ip)

    # A remote-group rule admits only the group's members.
    only_other = Rule("ingress", protocol="tcp", remote_ips=("10.178.0.77",))
    lab.host.plug(spec.id, spec.mtu, [port(web, web_ip, only_other)])
    assert wait_until(lambda: not client.connect(web_ip, 8080), timeout=2.0)
    lab.host.plug(spec.id, spec.mtu, [port(web, web_ip, replace(only_other, remote_ips=(client_ip,)))])
    assert client.connect(web_ip, 8080)

    # Port security off: no filtering at all, even for a forged source.
    lab.host.plug(spec.id, spec.mtu, [port(web, web_ip, Rule("ingress", protocol="tcp"))])
    lab.host.plug(
        spec.id,
        spec.mtu,
        [PortFirewall(client.port_id, client.mac, (client_ip,), port_security_enabled=False, tap=client.tap)],
    )
    assert client.tap not in lab.host.firewall.taps()
    assert client.connect(web_ip, 8080, source="10.178.0.200")
