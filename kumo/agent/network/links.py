"""A network's links on this host: its bridge, its namespace and the veth between them.

    root netns                              netns qdhcp-<network>
    brq<network[:11]> ── tap<dhcp[:11]> ═══ ns-<dhcp[:11]>: DHCP port IPs, gateway IPs,
      (no address)                                          169.254.169.254/32

`ensure_links(spec)` reads what exists (`ip -j`) and issues only the missing changes, as one
`ip -batch` per namespace; `remove_links` undoes it. Both are idempotent and safe to repeat after
a crash at any point (a half-made veth is deleted and made again).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kumo.agent.network.run import NetworkError, run
from kumo.agent.network.spec import METADATA_IP, NetworkSpec, bridge_name, namespace_name


@dataclass(frozen=True)
class Link:
    name: str
    kind: str  # "bridge", "veth", "" (other)
    master: str | None
    mtu: int
    up: bool


def namespaces() -> set[str]:
    out = run(["ip", "-j", "netns", "list"])
    return {entry["name"] for entry in json.loads(out or "[]")}


def links(namespace: str | None = None) -> dict[str, Link]:
    argv = (
        ["ip", "-j", "-d", "link", "show"]
        if namespace is None
        else ["ip", "-n", namespace, "-j", "-d", "link", "show"]
    )
    found: dict[str, Link] = {}
    for entry in json.loads(run(argv) or "[]"):
        info = entry.get("linkinfo") or {}
        found[entry["ifname"]] = Link(
            name=entry["ifname"],
            kind=info.get("info_kind", ""),
            master=entry.get("master"),
            mtu=int(entry.get("mtu", 0)),
            up="UP" in entry.get("flags", ()),
        )
    return found


def addresses(namespace: str, device: str) -> set[str]:
    out = run(["ip", "-n", namespace, "-j", "addr", "show", "dev", device])
    found: set[str] = set()
    for entry in json.loads(out or "[]"):
        for addr in entry.get("addr_info", ()):
            if addr.get("family") == "inet":
                found.add(f"{addr['local']}/{addr['prefixlen']}")
    return found


def wanted_addresses(spec: NetworkSpec) -> set[str]:
    """The namespace side of the veth: each subnet's DHCP port IP and gateway, and metadata's."""
    wanted = {f"{METADATA_IP}/32"}
    for subnet in spec.subnets:
        wanted.add(f"{subnet.dhcp_ip}/{subnet.prefixlen}")
        if subnet.gateway_ip:
            wanted.add(f"{subnet.gateway_ip}/{subnet.prefixlen}")
    return wanted


def _batch(commands: list[str], namespace: str | None = None) -> None:
    if not commands:
        return
    argv = ["ip", "-batch", "-"] if namespace is None else ["ip", "-n", namespace, "-batch", "-"]
    run(argv, stdin="\n".join(commands) + "\n")


def ensure_bridge(network_id: str, mtu: int) -> None:
    """The network's bridge, up, with its MTU (compute hosts call this before plugging a tap)."""
    ensure_named_bridge(bridge_name(network_id), mtu)


def ensure_named_bridge(name: str, mtu: int) -> None:
    """Bridge `name` exists, is up, has `mtu` and no address (a tenant network stays apart from
    the host); idempotent. NetworkError when something other than a bridge holds the name.
    libvirt refuses to start a guest whose `<interface type='bridge'>` names a missing bridge,
    so the libvirt driver calls this with each port's bridge before it defines the guest."""
    link = links().get(name)
    commands: list[str] = []
    if link is not None and link.kind != "bridge":
        raise NetworkError(f"{name} exists and is not a bridge ({link.kind or 'unknown kind'})")
    if link is None:
        commands.append(f"link add name {name} mtu {mtu} type bridge")
    elif link.mtu != mtu:
        commands.append(f"link set dev {name} mtu {mtu}")
    if link is None or not link.up:
        commands.append(f"link set dev {name} up")
    _batch(commands)


def ensure_links(spec: NetworkSpec) -> None:
    ns = spec.namespace
    if ns not in namespaces():
        run(["ip", "netns", "add", ns])
    ensure_bridge(spec.id, spec.mtu)
    root = links()
    inside = links(ns)
    commands: list[str] = []
    outer, inner = spec.bridge_veth, spec.ns_veth
    if outer in root and inner not in inside:  # half made (a crash between two steps): again
        commands.append(f"link del dev {outer}")
        del root[outer]
    if outer not in root:
        if inner in inside:
            run(["ip", "-n", ns, "link", "del", "dev", inner])
        commands.append(f"link add name {outer} mtu {spec.mtu} type veth peer name {inner} netns {ns}")
        current = None
    else:
        current = root[outer]
    if current is None or current.master != spec.bridge:
        commands.append(f"link set dev {outer} master {spec.bridge}")
    if current is not None and current.mtu != spec.mtu:
        commands.append(f"link set dev {outer} mtu {spec.mtu}")
    if current is None or not current.up:
        commands.append(f"link set dev {outer} up")
    _batch(commands)

    inside = links(ns)
    commands = []
    if not inside.get("lo", Link("lo", "", None, 0, False)).up:
        commands.append("link set dev lo up")
    if inside[inner].mtu != spec.mtu:
        commands.append(f"link set dev {inner} mtu {spec.mtu}")
    if not inside[inner].up:
        commands.append(f"link set dev {inner} up")
    have = addresses(ns, inner)
    wanted = wanted_addresses(spec)
    dhcp = {f"{subnet.dhcp_ip}/{subnet.prefixlen}" for subnet in spec.subnets}
    commands += [f"addr del {cidr} dev {inner}" for cidr in sorted(have - wanted)]
    # The DHCP port's addresses first: the first address of a subnet is dnsmasq's server id.
    dhcp_first = sorted(wanted - have, key=lambda cidr: (cidr not in dhcp, cidr))
    commands += [f"addr add {cidr} dev {inner}" for cidr in dhcp_first]
    _batch(commands, ns)


def remove_links(network_id: str, dhcp_port_id: str | None = None) -> None:
    """The veth, the bridge and the namespace of a network, whichever exist."""
    ns = namespace_name(network_id)
    root = links()
    commands: list[str] = []
    if dhcp_port_id is not None and ("tap" + dhcp_port_id[:11]) in root:
        commands.append(f"link del dev tap{dhcp_port_id[:11]}")
    if bridge_name(network_id) in root:
        commands.append(f"link del dev {bridge_name(network_id)}")
    _batch(commands)
    if ns in namespaces():
        run(["ip", "netns", "del", ns])
