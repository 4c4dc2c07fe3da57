"""An external network's gateway on the host: this machine (the root namespace) reaches a client
on the network directly, through the client's security groups; the gateway moves back into the
namespace when the network stops being external, a route conflict is refused with DHCP still
served, and removing the network leaves no address or link behind."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from kumo.agent.network import links
from kumo.agent.network.run import NetworkError
from kumo.agent.network.spec import NetworkSpec, PortFirewall, Rule
from tests.integration.network.conftest import Lab, mac_of, sh, wait_until


def random_cidr() -> str:
    """A /24 no other test of this run picks (172.24.0.0/16 minus devstack's 172.24.4.0/24)."""
    return f"172.24.{random.randint(100, 250)}.0/24"


def external(spec: NetworkSpec) -> NetworkSpec:
    gateways = tuple(f"{s.gateway_ip}/{s.prefixlen}" for s in spec.subnets if s.gateway_ip)
    return replace(spec, external=True, gateways=gateways)


def route_device(ip: str) -> str:
    return str(json.loads(sh("ip", "-j", "route", "get", ip).stdout)[0].get("dev"))


def host_reaches(ip: str, port: int) -> bool:
    try:
        socket.create_connection((ip, port), 1.5).close()
        return True
    except OSError:
        return False


def test_the_host_reaches_a_client_through_its_security_groups(lab: Lab) -> None:
    spec = external(lab.network(random_cidr(), reservations=1))
    gateway = spec.gateways[0]
    lab.host.reconcile(spec)
    lab.host.reconcile(spec)  # again: nothing changes, no error
    assert links.addresses(None, spec.host_gateway) == {gateway}
    assert route_device(spec.reservations[0].ip) == spec.host_gateway
    assert gateway not in links.addresses(spec.namespace, spec.ns_veth)  # one holder only
    assert links.links()[spec.host_gateway_port].master == spec.bridge
    for device in (spec.host_gateway, spec.host_gateway_port):  # IPv4 only towards guests
        assert Path(f"/proc/sys/net/ipv6/conf/{device}/disable_ipv6").read_text().strip() == "1"

    client = lab.client(spec, mac_of(0))
    ip = client.dhcp()
    assert ip == spec.reservations[0].ip
    client.configure(ip, 24)
    lab.procs.append(client.listen(2222))

    def port(*rules: Rule) -> PortFirewall:
        return PortFirewall(client.port_id, client.mac, (ip,), rules=(Rule("egress"), *rules), tap=client.tap)

    # The host's packets are bridged through the client's tap: its group decides.
    lab.host.plug(spec.id, spec.mtu, [port()])
    assert not host_reaches(ip, 2222)
    lab.host.plug(spec.id, spec.mtu, [port(Rule("ingress", protocol="tcp", port_range_min=2222))])
    assert wait_until(lambda: host_reaches(ip, 2222), timeout=3.0)
    # The client's default route (the DHCP router option) is the host.
    assert (
        client.exec("busybox", "ping", "-c", "1", "-W", "2", gateway.split("/")[0], check=False).returncode
        == 0
    )

    # No longer external: the gateway goes back into the namespace, the host loses the route.
    internal = replace(spec, external=False)
    lab.host.reconcile(internal)
    assert spec.host_gateway not in links.links() and spec.host_gateway_port not in links.links()
    assert gateway in links.addresses(spec.namespace, spec.ns_veth)
    assert route_device(ip) != spec.host_gateway  # (what the default route leads to is not ours)
    lab.host.reconcile(spec)
    assert wait_until(lambda: host_reaches(ip, 2222), timeout=3.0)

    lab.host.remove(spec.id, spec.dhcp_port_id)
    assert spec.host_gateway not in links.links() and spec.bridge not in links.links()
    assert not any(r.device == spec.host_gateway for r in links.routes())


def test_a_gateway_over_a_route_of_the_machine_is_refused_and_dhcp_still_served(lab: Lab) -> None:
    cidr = random_cidr()
    other = "kcfl" + uuid.uuid4().hex[:8]  # another device routing the subnet
    sh("ip", "link", "add", other, "type", "bridge")
    try:
        sh("ip", "addr", "add", cidr.replace(".0/24", ".200/24"), "dev", other)
        sh("ip", "link", "set", other, "up")
        spec = external(lab.network(cidr, reservations=1))
        with pytest.raises(NetworkError, match=f"{cidr} dev {other}"):
            lab.host.reconcile(spec)
        assert spec.host_gateway not in links.links()
        client = lab.client(spec, mac_of(0))
        assert client.dhcp() == spec.reservations[0].ip
    finally:
        subprocess.run(["ip", "link", "del", other], capture_output=True)
