"""A network's links on this host: its bridge, its namespace and the veth between them.

    root netns                              netns qdhcp-<network>
    brq<network[:11]> ── tap<dhcp[:11]> ═══ ns-<dhcp[:11]>: DHCP port IPs, gateway IPs,
      (no address)                                          169.254.169.254/32

A `router:external` network (`ensure_host_gateway`) has its gateways in the root namespace
instead, on a veth of its own, so this machine routes to the network's guests directly:

    brq<network[:11]> ── gwp<network[:11]> ═══ gw-<network[:11]>: each subnet's gateway_ip
                                                (root netns; the subnet's connected route)

The host's traffic to a guest thus enters the bridge through a port, like another guest's, and
is bridged (the guests' security groups apply to it). A gateway whose subnet overlaps a route this
machine already has on another device is refused (NetworkError naming the route): the host would
otherwise send one of the two networks' traffic to the wrong place.

`ensure_links(spec)` reads what exists (`ip -j`) and issues only the missing changes, as one
`ip -batch` per namespace; `remove_links` undoes it. Both are idempotent and safe to repeat after
a crash at any point (a half-made veth is deleted and made again).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kumo.agent.network.run import NetworkError, run
from kumo.agent.network.spec import (
    METADATA_IP,
    NetworkSpec,
    bridge_name,
    host_gateway_name,
    host_gateway_port_name,
)
from kumo.network.names import namespace_name


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


@dataclass(frozen=True)
class Route:
    destination: str  # a CIDR, or "default"
    device: str


def routes() -> list[Route]:
    """The root namespace's IPv4 routes of the main table."""
    found: list[Route] = []
    for entry in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "main"]) or "[]"):
        found.append(Route(str(entry.get("dst", "")), str(entry.get("dev", ""))))
    return found


def route_conflicts(
    gateways: Iterable[str], existing: Iterable[Route], own_device: str | None = None
) -> list[str]:
    """The routes of `existing` (not on `own_device`, not the default route) whose destination
    overlaps the subnet of one of `gateways` ("ip/prefixlen"), as "destination dev device"."""
    subnets = [ipaddress.IPv4Interface(g).network for g in gateways]
    conflicts: list[str] = []
    for route in existing:
        if route.device == own_device or route.destination in ("default", "0.0.0.0/0", ""):
            continue
        try:
            destination = ipaddress.IPv4Network(route.destination, strict=False)
        except ValueError:  # a route type ip prints without a CIDR (unreachable, blackhole…)
            continue
        if any(destination.overlaps(subnet) for subnet in subnets):
            conflicts.append(f"{route.destination} dev {route.device or '?'}")
    return conflicts


def addresses(namespace: str | None, device: str) -> set[str]:
    """The IPv4 addresses ("ip/prefixlen") of `device` in `namespace` (None: the root one)."""
    where = [] if namespace is None else ["-n", namespace]
    out = run(["ip", *where, "-j", "addr", "show", "dev", device])
    found: set[str] = set()
    for entry in json.loads(out or "[]"):
        for addr in entry.get("addr_info", ()):
            if addr.get("family") == "inet":
                found.add(f"{addr['local']}/{addr['prefixlen']}")
    return found


def wanted_addresses(spec: NetworkSpec) -> set[str]:
    """The namespace side of the veth: each subnet's DHCP port IP and gateway (unless the network
    is external: its gateways are the host's), and metadata's."""
    wanted = {f"{METADATA_IP}/32"}
    for subnet in spec.subnets:
        wanted.add(f"{subnet.dhcp_ip}/{subnet.prefixlen}")
        if subnet.gateway_ip and not spec.external:
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


def ensure_host_gateway(spec: NetworkSpec) -> None:
    """The root namespace holds exactly `spec.host_addresses` on the network's gateway veth
    (made, plugged into the bridge, up, with the network's MTU), or has no such veth when there
    is none to hold (a network not external, or without gateways). The bridge must exist
    (`ensure_links` first). NetworkError, changing nothing, when a gateway's subnet overlaps
    another device's route on this machine."""
    host, port = spec.host_gateway, spec.host_gateway_port
    root = links()
    wanted = set(spec.host_addresses)
    if not wanted:
        present = [name for name in (host, port) if name in root]
        if present:
            _batch([f"link del dev {present[0]}"])  # one end: the pair goes with it
        return
    conflicts = route_conflicts(wanted, routes(), host)
    if conflicts:
        raise NetworkError(
            f"network {spec.id} is external but this machine already routes its gateway's subnet "
            f"({', '.join(sorted(wanted))}) elsewhere: {'; '.join(conflicts)}"
        )
    for name in (host, port):
        if name in root and root[name].kind != "veth":
            raise NetworkError(f"{name} exists and is not a veth ({root[name].kind or 'unknown kind'})")
    commands: list[str] = []
    if (host in root) != (port in root):  # half made (a crash between two steps): again
        commands.append(f"link del dev {host if host in root else port}")
        root.pop(host, None)
        root.pop(port, None)
    if host not in root:
        commands.append(f"link add name {host} mtu {spec.mtu} type veth peer name {port}")
    current_port, current_host = root.get(port), root.get(host)
    if current_port is None or current_port.master != spec.bridge:
        commands.append(f"link set dev {port} master {spec.bridge}")
    for name, current in ((port, current_port), (host, current_host)):
        if current is not None and current.mtu != spec.mtu:
            commands.append(f"link set dev {name} mtu {spec.mtu}")
    _batch(commands)
    for name in (host, port):  # before either is up: no IPv6 link between the host and guests
        _disable_ipv6(name)
    _batch(
        [
            f"link set dev {name} up"
            for name, current in ((port, current_port), (host, current_host))
            if current is None or not current.up
        ]
    )
    have = addresses(None, host)
    commands = [f"addr del {cidr} dev {host}" for cidr in sorted(have - wanted)]
    commands += [f"addr add {cidr} dev {host}" for cidr in sorted(wanted - have)]
    _batch(commands)


def _disable_ipv6(device: str) -> None:
    """No IPv6 on a root-namespace device facing guests: kumo's subnets are IPv4, and a guest's
    router advertisement must not give this machine an IPv6 route (a kernel without IPv6: no-op)."""
    path = Path("/proc/sys/net/ipv6/conf") / device / "disable_ipv6"
    try:
        if path.read_text().strip() != "1":
            path.write_text("1\n")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise NetworkError(f"cannot disable IPv6 on {device}: {exc}") from exc


def remove_links(network_id: str, dhcp_port_id: str | None = None) -> None:
    """The veths, the bridge and the namespace of a network, whichever exist."""
    ns = namespace_name(network_id)
    root = links()
    commands: list[str] = []
    for name in (host_gateway_name(network_id), host_gateway_port_name(network_id)):
        if name in root:  # one end is enough: the pair goes with it
            commands.append(f"link del dev {name}")
            break
    if dhcp_port_id is not None and ("tap" + dhcp_port_id[:11]) in root:
        commands.append(f"link del dev tap{dhcp_port_id[:11]}")
    if bridge_name(network_id) in root:
        commands.append(f"link del dev {bridge_name(network_id)}")
    _batch(commands)
    if ns in namespaces():
        run(["ip", "netns", "del", ns])
