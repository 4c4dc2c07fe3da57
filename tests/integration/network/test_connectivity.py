"""L2 per network, isolation between networks, security groups on the tap (physdev + conntrack):
rules changed live, anti-spoofing at L3 and L2 (MAC, ARP), removed rules cutting established
flows, unknown taps closed."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
from dataclasses import replace

from kumo.agent.network.spec import PortFirewall, Rule
from tests.integration.network.conftest import Client, Lab, mac_of, sh, wait_until

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
    assert client.tap in lab.host.firewall.taps()  # known: open, not closed
    assert client.connect(web_ip, 8080, source="10.178.0.200")


SEND = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
for _ in range(int(sys.argv[2])):
    s.send(bytes.fromhex(sys.argv[1]))
"""

SNIFF = """
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind(("eth0", 0))
s.settimeout(0.2)
print("up", flush=True)
end, seen = time.time() + float(sys.argv[1]), set()
while time.time() < end:
    try:
        f = s.recv(2048)
    except socket.timeout:
        continue
    if len(f) >= 42:
        seen.add((f[22:28].hex(":"), socket.inet_ntoa(f[28:32])))
print(repr(sorted(seen)), flush=True)
"""


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def frame(dst: str, src: str, ethertype: int, payload: bytes) -> str:
    body = mac_bytes(dst) + mac_bytes(src) + ethertype.to_bytes(2, "big") + payload
    return body.ljust(60, b"\0").hex()


def arp_reply(sender_mac: str, sender_ip: str, target_mac: str, target_ip: str) -> bytes:
    head = bytes.fromhex("0001080006040002")
    return (
        head
        + mac_bytes(sender_mac)
        + socket.inet_aton(sender_ip)
        + mac_bytes(target_mac)
        + socket.inet_aton(target_ip)
    )


def send(client: Client, hexframe: str, count: int = 5) -> None:
    client.exec(sys.executable, "-c", SEND, hexframe, str(count))


def fdb_port(bridge: str, mac: str) -> set[str]:
    entries = json.loads(sh("bridge", "-j", "fdb", "show", "br", bridge).stdout or "[]")
    return {e["ifname"] for e in entries if e.get("mac") == mac and "permanent" not in e.get("state", "")}


def test_a_secured_port_cannot_steal_a_mac_or_forge_arp(lab: Lab) -> None:
    spec = lab.network("10.179.0.0/24", reservations=3)
    lab.host.reconcile(spec)
    victim, observer, attacker = (lab.client(spec, mac_of(i)) for i in range(3))
    v_ip, o_ip, a_ip = (r.ip for r in spec.reservations)
    attacker_port = PortFirewall(
        attacker.port_id, attacker.mac, (a_ip,), rules=(EGRESS_ANY, Rule("ingress")), tap=attacker.tap
    )
    lab.host.plug(spec.id, spec.mtu, [attacker_port])
    assert up(lab, victim, 24) == v_ip and up(lab, observer, 24) == o_ip and up(lab, attacker, 24) == a_ip
    lab.procs.append(victim.listen(8080))
    assert observer.connect(v_ip, 8080)
    assert fdb_port(spec.bridge, victim.mac) == {victim.tap}

    # Frames with the victim's source MAC, of an ethertype iptables never sees and of IPv4:
    # dropped before the bridge learns, so the victim's FDB entry and traffic stay its own.
    send(attacker, frame("ff:ff:ff:ff:ff:ff", victim.mac, 0x88B5, b"steal"), 20)
    send(attacker, frame(observer.mac, victim.mac, 0x0800, b"\x45" + b"\0" * 19), 20)
    assert fdb_port(spec.bridge, victim.mac) == {victim.tap}
    assert observer.connect(v_ip, 8080)

    # ARP: a reply claiming the victim's address (with the attacker's own MAC, or the victim's)
    # never reaches the observer; the attacker's truthful ARP does.
    sniffer = subprocess.Popen(
        ["ip", "netns", "exec", observer.name, sys.executable, "-c", SNIFF, "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    lab.procs.append(sniffer)
    assert sniffer.stdout is not None and sniffer.stdout.readline().strip() == "up"
    for sender_mac in (attacker.mac, victim.mac):
        send(
            attacker, frame(observer.mac, sender_mac, 0x0806, arp_reply(sender_mac, v_ip, observer.mac, o_ip))
        )
    send(
        attacker, frame(observer.mac, attacker.mac, 0x0806, arp_reply(attacker.mac, a_ip, observer.mac, o_ip))
    )
    seen = ast.literal_eval(sniffer.stdout.readline().strip())
    assert (attacker.mac, a_ip) in seen
    assert not any(ip == v_ip for _, ip in seen), seen
    # Legitimate ARP through the secured port still resolves (a fresh neighbour entry).
    observer.exec("ip", "neigh", "flush", "all")
    lab.procs.append(attacker.listen(8081))
    assert observer.connect(a_ip, 8081)


ECHO = """
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8); print("up", flush=True)
def serve(c):
    while (d := c.recv(100)):
        c.sendall(d)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

HOLD = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), 2); c.settimeout(2)
print("up", flush=True)
for _ in sys.stdin:
    try:
        c.sendall(b"x"); ok = c.recv(10) == b"x"
    except OSError:
        ok = False
    print("ok" if ok else "cut", flush=True)
"""


def test_removing_a_rule_cuts_the_flows_it_admitted_and_only_those(lab: Lab) -> None:
    spec = lab.network("10.180.0.0/24", reservations=2)
    lab.host.reconcile(spec)
    web, client = lab.client(spec, mac_of(0)), lab.client(spec, mac_of(1))
    web_ip = spec.reservations[0].ip
    rule_a = Rule("ingress", protocol="tcp", port_range_min=8080, port_range_max=8080)
    rule_b = Rule("ingress", protocol="tcp", port_range_min=9090, port_range_max=9090)

    def web_port(*rules: Rule) -> PortFirewall:
        return PortFirewall(web.port_id, web.mac, (web_ip,), rules=(EGRESS_ANY, *rules), tap=web.tap)

    lab.host.plug(spec.id, spec.mtu, [web_port(rule_a, rule_b)])
    assert up(lab, web, 24) == web_ip
    up(lab, client, 24)
    holds: dict[int, subprocess.Popen[str]] = {}
    for port in (8080, 9090):
        server = subprocess.Popen(
            ["ip", "netns", "exec", web.name, sys.executable, "-c", ECHO, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        lab.procs.append(server)
        assert server.stdout is not None and server.stdout.readline().strip() == "up"
        hold = subprocess.Popen(
            ["ip", "netns", "exec", client.name, sys.executable, "-c", HOLD, web_ip, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        lab.procs.append(hold)
        holds[port] = hold

    def echo(port: int) -> str:
        hold = holds[port]
        assert hold.stdin is not None and hold.stdout is not None
        hold.stdin.write("\n")
        hold.stdin.flush()
        return hold.stdout.readline().strip()

    for port in (8080, 9090):
        assert holds[port].stdout is not None and holds[port].stdout.readline().strip() == "up"
        assert echo(port) == "ok"
    lab.host.plug(spec.id, spec.mtu, [web_port(rule_b)])  # 8080 no longer allowed
    assert echo(8080) == "cut"
    assert echo(9090) == "ok"  # the rule still there: its established flow untouched
    assert not client.connect(web_ip, 8080)


def test_a_tap_the_firewall_does_not_know_passes_nothing(lab: Lab) -> None:
    spec = lab.network("10.181.0.0/24", reservations=2)
    lab.host.reconcile(spec)
    known, stray = lab.client(spec, mac_of(0)), lab.client(spec, mac_of(1))
    known_ip, stray_ip = up(lab, known, 24), up(lab, stray, 24)
    lab.procs.append(known.listen(8080))
    assert stray.connect(known_ip, 8080)
    # Its rules lost (e.g. a secured port whose chains went): closed, both ways; DHCP too.
    lab.host.unplug([stray.tap])
    assert stray.tap not in lab.host.firewall.taps()
    assert not stray.connect(known_ip, 8080)
    lab.procs.append(stray.listen(8080))
    assert not known.connect(stray_ip, 8080)
    assert stray.dhcp(tries=1) is None
    # Declared open again (port security off): passes.
    lab.host.plug(
        spec.id,
        spec.mtu,
        [PortFirewall(stray.port_id, stray.mac, (), port_security_enabled=False, tap=stray.tap)],
    )
    assert stray.connect(known_ip, 8080)
