"""Pure IPv4 addressing rules of subnets (Neutron's semantics), no I/O: the CIDR, the gateway, the
allocation pools and which free address a port gets. kumo/network/ipam.py applies them under
the database's guarantees."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from kumo.network.errors import GatewayConflictWithAllocationPools, InvalidInput

BASE_MAC = (0xFA, 0x16, 0x3E)  # Neutron's default base_mac


@dataclass(frozen=True)
class Pool:
    first: ipaddress.IPv4Address
    last: ipaddress.IPv4Address

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"

    def __contains__(self, address: object) -> bool:
        return isinstance(address, ipaddress.IPv4Address) and self.first <= address <= self.last


# Addresses a tenant subnet may not cover: the metadata service's link-local range (a port
# could otherwise hold 169.254.169.254), loopback, multicast and the reserved ranges.
_RESERVED = tuple(
    ipaddress.ip_network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/3")
)


def parse_cidr(text: object) -> ipaddress.IPv4Network:
    """The subnet's network, normalised ("10.0.0.5/24" → 10.0.0.0/24); /31 and /32 hold no host
    a pool could hand out, a prefix shorter than /8 more than a DHCP server should, IPv6 is
    refused with its own message, and so is a subnet over the reserved ranges (`_RESERVED`)."""
    if not isinstance(text, str):
        raise InvalidInput(f"'{text}' is not a valid IP subnet")
    written = text.strip()
    try:
        network = ipaddress.ip_network(written, strict=False)
    except ValueError:
        raise InvalidInput(f"'{text}' is not a valid IP subnet") from None
    if network.version != 4:
        raise InvalidInput("IPv6 subnets are not supported by this cloud")
    if network.prefixlen > 30:
        raise InvalidInput(f"'{text}' is too small: a subnet needs a prefix length of 30 or less")
    if network.prefixlen < 8:
        raise InvalidInput(f"'{text}' is too large: a subnet needs a prefix length of 8 or more")
    for reserved in _RESERVED:
        if network.overlaps(reserved):
            raise InvalidInput(f"'{text}' overlaps {reserved}, which this cloud reserves")
    return network


def parse_address(text: object, what: str = "IP address") -> ipaddress.IPv4Address:
    if not isinstance(text, str):
        raise InvalidInput(f"'{text}' is not a valid {what}")
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidInput(f"'{text}' is not a valid {what}") from None
    if address.version != 4:
        raise InvalidInput("IPv6 addresses are not supported by this cloud")
    return address


def default_gateway(network: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    return network.network_address + 1


def check_gateway(network: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address | None) -> None:
    if gateway is None:
        return
    if gateway not in network or gateway in (network.network_address, network.broadcast_address):
        raise InvalidInput(f"Gateway IP {gateway} is not a host address of subnet {network}")


def default_pools(network: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address | None) -> list[Pool]:
    """Every host address but the gateway, as Neutron does (.2–.254 for a /24 with gateway .1)."""
    first, last = network.network_address + 1, network.broadcast_address - 1
    if gateway is None or not first <= gateway <= last:
        return [Pool(first, last)]
    pools = []
    if gateway > first:
        pools.append(Pool(first, gateway - 1))
    if gateway < last:
        pools.append(Pool(gateway + 1, last))
    return pools


def parse_pools(
    network: ipaddress.IPv4Network, raw: object, gateway: ipaddress.IPv4Address | None
) -> list[Pool]:
    """`[{"start", "end"}, …]` checked: inside the subnet's host range, start ≤ end, no overlap,
    not holding the gateway (409 GatewayConflictWithAllocationPools). Sorted by start."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("allocation_pools must be a non-empty list of {start, end}")
    pools = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"start", "end"}:
            raise InvalidInput("each allocation pool must be an object with exactly 'start' and 'end'")
        pool = Pool(parse_address(item["start"]), parse_address(item["end"]))
        if pool.first > pool.last:
            raise InvalidInput(f"allocation pool {pool}: start is after end")
        hosts = Pool(network.network_address + 1, network.broadcast_address - 1)
        if pool.first not in hosts or pool.last not in hosts:
            raise InvalidInput(f"The allocation pool {pool} spans beyond the subnet cidr {network}.")
        pools.append(pool)
    pools.sort(key=lambda p: p.first)
    for before, after in zip(pools, pools[1:], strict=False):
        if after.first <= before.last:
            raise InvalidInput(f"Found overlapping allocation pools: {before} and {after}")
    if gateway is not None:
        for pool in pools:
            if gateway in pool:
                raise GatewayConflictWithAllocationPools(str(gateway), str(pool))
    return pools


def check_no_overlap(network: ipaddress.IPv4Network, others: Iterable[str]) -> None:
    """A network's subnets never overlap one another (Neutron: 400)."""
    for other in others:
        if network.overlaps(ipaddress.ip_network(other)):
            raise InvalidInput(
                f"Requested subnet with cidr: {network} overlaps with another subnet ({other})"
            )


def choose_address(
    pools: Sequence[Pool], taken: Collection[str], after: ipaddress.IPv4Address | None = None
) -> str | None:
    """The first address of the pools after `after` that is not taken, wrapping round to the
    pools' start, or None when they are full (`after` None: the lowest free one).

    Next-fit, like PIDs: `after` is the subnet's last address handed out automatically, so a
    freed address is handed out again only once the pools wrapped. A DHCP server still holding
    the freed address's reservation (kumo/agent/network/dnsmasq.py holds removed ones until a
    reload) then rarely sees it again, and a guest's stale ARP entries and firewall memories of
    it have long expired. A fresh subnet gives the same order as lowest-first (the DHCP port
    gets the first address). Walks at most len(taken) + 1 addresses before it finds one."""
    ordered = sorted(pools, key=lambda p: p.first)
    if not ordered:
        return None
    start = 0
    first = ordered[0].first
    if after is not None:
        for index, pool in enumerate(ordered):
            if pool.last > after:
                start, first = index, max(pool.first, after + 1)
                break
    # One lap: from `first` to the end of its pool, the pools after it, the pools before it,
    # and the beginning of the starting pool.
    laps = [Pool(first, ordered[start].last), *ordered[start + 1 :], *ordered[:start]]
    if first > ordered[start].first:
        laps.append(Pool(ordered[start].first, first - 1))
    for pool in laps:
        address = pool.first
        while address <= pool.last:
            if str(address) not in taken:
                return str(address)
            address += 1
    return None


def random_mac(rng: random.Random | None = None) -> str:
    """fa:16:3e plus three random bytes (Neutron's base_mac)."""
    rng = rng or random.SystemRandom()
    tail = [rng.randrange(256) for _ in range(3)]
    return ":".join(f"{b:02x}" for b in (*BASE_MAC, *tail))


def normalise_mac(text: object) -> str:
    """A unicast MAC as lower-case colon-separated hex, or InvalidInput."""
    if isinstance(text, str):
        parts = text.strip().replace("-", ":").split(":")
        if len(parts) == 6 and all(len(p) == 2 for p in parts):
            try:
                octets = [int(p, 16) for p in parts]
            except ValueError:
                octets = []
            if octets and not octets[0] & 1 and any(octets):
                return ":".join(f"{b:02x}" for b in octets)
    raise InvalidInput(f"'{text}' is not a valid MAC address")


def parse_host_routes(raw: object) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise InvalidInput("host_routes must be a list of {destination, nexthop}")
    routes = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
            raise InvalidInput("each host route must be an object with exactly 'destination' and 'nexthop'")
        destination = parse_cidr_any(item["destination"])
        nexthop = parse_address(item["nexthop"], "nexthop")
        routes.append({"destination": str(destination), "nexthop": str(nexthop)})
    return routes


def parse_cidr_any(text: object) -> ipaddress.IPv4Network:
    """A destination or remote prefix (any length, /0 included), IPv4."""
    if not isinstance(text, str):
        raise InvalidInput(f"'{text}' is not a valid IP prefix")
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise InvalidInput(f"'{text}' is not a valid IP prefix") from None
    if network.version != 4:
        raise InvalidInput("IPv6 prefixes are not supported by this cloud")
    return network


def parse_nameservers(raw: object) -> list[str]:
    if not isinstance(raw, list):
        raise InvalidInput("dns_nameservers must be a list of IP addresses")
    servers = [str(parse_address(item, "nameserver")) for item in raw]
    if len(set(servers)) != len(servers):
        raise InvalidInput("Duplicate nameserver in dns_nameservers")
    return servers
