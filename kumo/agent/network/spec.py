"""What a network host must realise: one network's links, DHCP and each port's firewall.

Typed, frozen input built by the agent from what the API hands it (`network_from_json`,
`port_firewall_from_json`); nothing here does I/O. Names follow Neutron's Linux bridge and DHCP
agents: bridge `brq<network[:11]>`, tap `tap<port[:11]>`, namespace `qdhcp-<network>`, and the
DHCP port's veth `tap<dhcp port[:11]>` (bridge side) / `ns-<dhcp port[:11]>` (namespace side).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kumo.network.names import namespace_name

METADATA_IP = "169.254.169.254"
DEFAULT_LEASE_SECONDS = 86400


class SpecError(ValueError):
    """The spec handed to the data plane is malformed (a bug on the sending side)."""


def bridge_name(network_id: str) -> str:
    return "brq" + network_id[:11]


def tap_name(port_id: str) -> str:
    return "tap" + port_id[:11]


def ns_interface_name(port_id: str) -> str:
    return "ns-" + port_id[:11]


def host_gateway_name(network_id: str) -> str:
    """The root namespace's end of an external network's gateway veth: holds the gateways."""
    return "gw-" + network_id[:11]


def host_gateway_port_name(network_id: str) -> str:
    """The bridge's end of an external network's gateway veth (a bridge port like a guest's tap,
    so the host's traffic to a guest is bridged and crosses the guest's security groups)."""
    return "gwp" + network_id[:11]


@dataclass(frozen=True)
class HostRoute:
    destination: str  # a CIDR
    nexthop: str


@dataclass(frozen=True)
class SubnetSpec:
    id: str
    cidr: str
    gateway_ip: str | None
    dhcp_ip: str  # the DHCP port's address in this subnet
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[HostRoute, ...] = ()
    lease_seconds: int = DEFAULT_LEASE_SECONDS

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen


@dataclass(frozen=True)
class Reservation:
    """One DHCP host entry: this MAC gets this IP (and hostname). One per port and address."""

    port_id: str
    mac: str
    ip: str
    hostname: str = ""


@dataclass(frozen=True)
class NetworkSpec:
    id: str
    dhcp_port_id: str
    mtu: int = 1500
    subnets: tuple[SubnetSpec, ...] = ()
    reservations: tuple[Reservation, ...] = ()
    # The API's DHCP generation this spec was rendered from; reported back once applied.
    generation: int = 0
    # router:external: the host itself is the gateway of the network's subnets (their
    # gateway_ip on `gw-<network>` in the root namespace), so this machine routes to its guests.
    external: bool = False
    # "gateway_ip/prefixlen" of every subnet that has a gateway, served by DHCP or not.
    gateways: tuple[str, ...] = ()

    @property
    def bridge(self) -> str:
        return bridge_name(self.id)

    @property
    def namespace(self) -> str:
        return namespace_name(self.id)

    @property
    def bridge_veth(self) -> str:
        return tap_name(self.dhcp_port_id)

    @property
    def ns_veth(self) -> str:
        return ns_interface_name(self.dhcp_port_id)

    @property
    def has_dhcp(self) -> bool:
        return bool(self.subnets)

    @property
    def host_gateway(self) -> str:
        return host_gateway_name(self.id)

    @property
    def host_gateway_port(self) -> str:
        return host_gateway_port_name(self.id)

    @property
    def host_addresses(self) -> tuple[str, ...]:
        """What the root namespace holds for this network: its gateways when it is external,
        nothing otherwise (a tenant network stays apart from the host)."""
        return self.gateways if self.external else ()


@dataclass(frozen=True)
class Rule:
    """One security-group rule as the firewall applies it (Neutron's rule fields)."""

    direction: str  # "ingress" | "egress"
    ethertype: str = "IPv4"  # "IPv4" | "IPv6"
    protocol: str | None = None  # None (any) | "tcp" | "udp" | "icmp" | a number "0".."255"
    port_range_min: int | None = None  # icmp: type
    port_range_max: int | None = None  # icmp: code
    remote_ip_prefix: str | None = None
    # remote_group_id resolved by the sender to the group's members' addresses; None when the
    # rule has no remote group (an empty tuple: a group with no members, matching nothing).
    remote_ips: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PortFirewall:
    port_id: str
    mac: str
    ips: tuple[str, ...]
    port_security_enabled: bool = True
    rules: tuple[Rule, ...] = ()
    tap: str = field(default="")

    def __post_init__(self) -> None:
        if not self.tap:
            object.__setattr__(self, "tap", tap_name(self.port_id))

    @property
    def chain_id(self) -> str:
        """What names this port's chains: the 11 characters its tap carries after "tap"."""
        return self.tap[3:] if self.tap.startswith("tap") else self.tap[-11:]


# -- From the API's JSON --------------------------------------------------------------------------

PROTOCOLS = {"tcp": "6", "udp": "17", "icmp": "1"}


def _req(data: Mapping[str, Any], key: str) -> Any:
    try:
        return data[key]
    except (KeyError, TypeError):
        raise SpecError(f"missing {key!r}") from None


def _ip(text: Any, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except (ValueError, TypeError):
        raise SpecError(f"{what}: {text!r} is not an IPv4 address") from None


def _cidr(text: Any, what: str) -> str:
    try:
        return str(ipaddress.IPv4Network(text, strict=False))
    except (ValueError, TypeError):
        raise SpecError(f"{what}: {text!r} is not an IPv4 CIDR") from None


def _mac(text: Any) -> str:
    value = str(text).lower()
    parts = value.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise SpecError(f"{text!r} is not a MAC address")
    return value


def _id(text: Any, what: str) -> str:
    value = str(text)
    if not value or not all(c.isalnum() or c == "-" for c in value):
        raise SpecError(f"{what}: {text!r} is not an id")
    return value


def subnet_from_json(data: Mapping[str, Any]) -> SubnetSpec:
    cidr = _cidr(_req(data, "cidr"), "cidr")
    gateway = data.get("gateway_ip")
    dhcp_ip = _ip(_req(data, "dhcp_ip"), "dhcp_ip")
    network = ipaddress.IPv4Network(cidr)
    if ipaddress.IPv4Address(dhcp_ip) not in network:
        raise SpecError(f"dhcp_ip {dhcp_ip} is outside {cidr}")
    return SubnetSpec(
        id=_id(_req(data, "id"), "subnet id"),
        cidr=cidr,
        gateway_ip=_ip(gateway, "gateway_ip") if gateway is not None else None,
        dhcp_ip=dhcp_ip,
        dns_nameservers=tuple(_ip(d, "dns_nameservers") for d in data.get("dns_nameservers") or ()),
        host_routes=tuple(
            HostRoute(_cidr(r.get("destination"), "host_routes"), _ip(r.get("nexthop"), "host_routes"))
            for r in data.get("host_routes") or ()
        ),
        lease_seconds=int(data.get("lease_seconds") or DEFAULT_LEASE_SECONDS),
    )


def _gateway(text: Any) -> str:
    """ "ip/prefixlen" with the address inside its prefix (a subnet's gateway and its CIDR)."""
    try:
        if "/" not in str(text):
            raise ValueError(text)
        interface = ipaddress.IPv4Interface(text)
    except (ValueError, TypeError):
        raise SpecError(f"gateways: {text!r} is not an IPv4 address with its prefix") from None
    if interface.ip in (interface.network.network_address, interface.network.broadcast_address) and (
        interface.network.prefixlen < 31
    ):
        raise SpecError(f"gateways: {text!r} is its subnet's network or broadcast address")
    return str(interface)


def network_from_json(data: Mapping[str, Any]) -> NetworkSpec:
    """`{"id", "dhcp_port_id", "mtu", "generation", "external", "gateways": ["ip/len"],
    "subnets": [...], "reservations": [{"port_id", "mac", "ip", "hostname"}]}` → NetworkSpec;
    SpecError on anything malformed."""
    mtu = int(data.get("mtu") or 1500)
    if not 68 <= mtu <= 9000:
        raise SpecError(f"mtu {mtu} is out of range")
    external = data.get("external", False)
    if not isinstance(external, bool):
        raise SpecError(f"external: {external!r} is not a boolean")
    return NetworkSpec(
        id=_id(_req(data, "id"), "network id"),
        dhcp_port_id=_id(_req(data, "dhcp_port_id"), "dhcp_port_id"),
        mtu=mtu,
        subnets=tuple(subnet_from_json(s) for s in data.get("subnets") or ()),
        reservations=tuple(
            Reservation(
                port_id=_id(_req(r, "port_id"), "port_id"),
                mac=_mac(_req(r, "mac")),
                ip=_ip(_req(r, "ip"), "reservation ip"),
                hostname=str(r.get("hostname") or ""),
            )
            for r in data.get("reservations") or ()
        ),
        generation=int(data.get("generation") or 0),
        external=external,
        gateways=tuple(sorted({_gateway(g) for g in data.get("gateways") or ()})),
    )


def rule_from_json(data: Mapping[str, Any]) -> Rule:
    direction = _req(data, "direction")
    if direction not in ("ingress", "egress"):
        raise SpecError(f"direction {direction!r}")
    ethertype = data.get("ethertype") or "IPv4"
    if ethertype not in ("IPv4", "IPv6"):
        raise SpecError(f"ethertype {ethertype!r}")
    protocol = data.get("protocol")
    if protocol is not None:
        protocol = str(protocol).lower()
        if protocol not in PROTOCOLS and not (protocol.isdigit() and 0 <= int(protocol) <= 255):
            raise SpecError(f"protocol {protocol!r}")
    remote_ips = data.get("remote_ips")
    return Rule(
        direction=direction,
        ethertype=ethertype,
        protocol=protocol,
        port_range_min=data.get("port_range_min"),
        port_range_max=data.get("port_range_max"),
        remote_ip_prefix=data.get("remote_ip_prefix"),
        remote_ips=tuple(remote_ips) if remote_ips is not None else None,
    )


def port_firewall_from_json(data: Mapping[str, Any]) -> PortFirewall:
    """`{"id", "mac_address", "fixed_ips": [{"ip_address"}], "port_security_enabled", "tap"?,
    "rules": [...]}` (the shared port contract plus the resolved rules) → PortFirewall."""
    port_id = _id(_req(data, "id"), "port id")
    return PortFirewall(
        port_id=port_id,
        mac=_mac(_req(data, "mac_address")),
        ips=tuple(_ip(f.get("ip_address"), "fixed_ips") for f in data.get("fixed_ips") or ()),
        port_security_enabled=bool(data.get("port_security_enabled", True)),
        rules=tuple(rule_from_json(r) for r in data.get("rules") or ()),
        tap=str(data.get("tap") or tap_name(port_id)),
    )


def network_from_dhcp_state(state: Mapping[str, Any]) -> NetworkSpec:
    """The API's desired DHCP state of a network (`kumo/network/dhcp.py:dhcp_state`, served to the
    network host by `network_sync`) → NetworkSpec. A subnet is served when DHCP is enabled on it
    and the network's DHCP port has an address in it; hosts outside served subnets are left out.
    The gateways are every subnet's with a gateway_ip, served or not (the host of an external
    network is the gateway of all its subnets)."""
    dhcp_port = state.get("dhcp_port") or None
    dhcp_ips: dict[str, str] = {}
    if dhcp_port is not None:
        for fixed in dhcp_port.get("fixed_ips") or ():
            dhcp_ips.setdefault(str(_req(fixed, "subnet_id")), _ip(_req(fixed, "ip_address"), "dhcp port"))
    subnets = [
        {**subnet, "dhcp_ip": dhcp_ips[str(subnet.get("id"))]}
        for subnet in state.get("subnets") or ()
        if subnet.get("enable_dhcp", True) and str(subnet.get("id")) in dhcp_ips
    ]
    served = {str(subnet["id"]) for subnet in subnets}
    network_id = _req(state, "network_id")
    gateways = []
    for subnet in state.get("subnets") or ():
        if subnet.get("gateway_ip") is not None:
            cidr = ipaddress.IPv4Network(_cidr(_req(subnet, "cidr"), "cidr"))
            gateways.append(f"{_ip(subnet['gateway_ip'], 'gateway_ip')}/{cidr.prefixlen}")
    return network_from_json(
        {
            "id": network_id,
            "dhcp_port_id": dhcp_port["id"] if dhcp_port is not None else network_id,
            "mtu": state.get("mtu"),
            "generation": state.get("generation"),
            "external": state.get("router:external", False),
            "gateways": gateways,
            "subnets": subnets,
            "reservations": [
                {
                    "port_id": host.get("port_id"),
                    "mac": host.get("mac_address"),
                    "ip": host.get("ip_address"),
                    "hostname": host.get("hostname"),
                }
                for host in state.get("hosts") or ()
                if str(host.get("subnet_id")) in served
            ],
        }
    )
