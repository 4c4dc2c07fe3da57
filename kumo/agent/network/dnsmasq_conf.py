"""What one network's dnsmasq is given, rendered from its spec (pure: no I/O).

- `command_line`: the process (static ranges only: a MAC with no host entry gets no lease).
- `host_line`: one reservation, the whole content of its file in the hosts directory. Never a
  `set:` tag: dnsmasq 2.90 crashes on SIGHUP when host entries carry tags and a leased one is
  replaced (networking-notes §3.4).
- `options_text`: the per-subnet options file (router, classless routes with the metadata route,
  DNS servers, MTU), keyed by each subnet's range tag.
- `parse_leases`: dnsmasq's lease file, for `dhcp_release` of leases no longer reserved.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from kumo.agent.network.spec import METADATA_IP, NetworkSpec, Reservation, SubnetSpec

_HOSTNAME_BAD = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Paths:
    """Where one network's dnsmasq keeps its state: <root>/<network id>/…"""

    dir: Path

    @property
    def pid(self) -> Path:
        return self.dir / "pid"

    @property
    def leases(self) -> Path:
        return self.dir / "leases"

    @property
    def hosts(self) -> Path:
        return self.dir / "hosts.d"

    @property
    def opts(self) -> Path:
        return self.dir / "opts"

    @property
    def reload_pending(self) -> Path:
        """Present while removed/changed files may not have been reloaded by dnsmasq yet."""
        return self.dir / "reload-pending"

    @property
    def held(self) -> Path:
        """The reservations dnsmasq still holds in memory though their files are gone (removed
        without a SIGHUP), with the pid of the dnsmasq that holds them."""
        return self.dir / "held.json"

    @property
    def log(self) -> Path:
        return self.dir / "dnsmasq.log"


def subnet_tag(subnet: SubnetSpec) -> str:
    return "subnet-" + subnet.id


def command_line(
    spec: NetworkSpec, paths: Paths, binary: str = "dnsmasq", log_dhcp: bool = False
) -> list[str]:
    """The dnsmasq argv (run inside the namespace). Equal specs give equal argvs: adoption
    compares a running process's command line with this one. `log_dhcp` logs every packet
    (debugging; ~15 lines per exchange)."""
    pool = sum(s.network.num_addresses for s in spec.subnets)
    argv = [
        binary,
        "--no-hosts",
        "--no-resolv",
        "--port=0",
        "--bind-interfaces",
        f"--interface={spec.ns_veth}",
        "--except-interface=lo",
        f"--pid-file={paths.pid}",
        f"--dhcp-leasefile={paths.leases}",
        f"--dhcp-hostsdir={paths.hosts}",
        f"--dhcp-optsfile={paths.opts}",
    ]
    for subnet in spec.subnets:
        net = subnet.network
        argv.append(
            f"--dhcp-range=set:{subnet_tag(subnet)},{net.network_address},static,{net.netmask},"
            f"{subnet.lease_seconds}s"
        )
    argv += [
        f"--dhcp-lease-max={max(pool, 16)}",
        "--dhcp-authoritative",
        "--conf-file=/dev/null",
        f"--log-facility={paths.log}",
    ]
    if log_dhcp:
        argv.append("--log-dhcp")
    return argv


def hostname(text: str) -> str:
    """A DNS label dnsmasq accepts (it refuses the entry otherwise): lower case, [a-z0-9-]."""
    label = _HOSTNAME_BAD.sub("-", text.lower()).strip("-")[:63].strip("-")
    return label


def host_line(reservation: Reservation) -> str:
    """`MAC,HOSTNAME,IP` (or `MAC,IP` without a usable hostname); no tags, ever."""
    name = hostname(reservation.hostname)
    if name and not name.isdigit():
        return f"{reservation.mac},{name},{reservation.ip}\n"
    return f"{reservation.mac},{reservation.ip}\n"


def host_files(spec: NetworkSpec) -> dict[str, str]:
    """File name (the port id, and the IP when a port has several) → content."""
    files: dict[str, str] = {}
    for reservation in spec.reservations:
        name = reservation.port_id
        if name in files:
            name = f"{reservation.port_id}_{reservation.ip}"
        files[name] = host_line(reservation)
    return files


def host_key(line: str) -> tuple[str, str]:
    """(MAC, IP) of a host line written by `host_line` (MAC first, IP last)."""
    fields = line.strip().split(",")
    return fields[0].lower(), fields[-1]


def collisions(new: Mapping[str, str], held: Collection[str]) -> list[str]:
    """The names of the `new` host lines (name → line) dnsmasq cannot take beside the `held`
    ones without a reload: a line with a held line's IP (dnsmasq refuses it: "duplicate
    dhcp-host IP address") or MAC (two records for one client), unless it is that very line."""
    ips: set[str] = set()
    macs: set[str] = set()
    for line in held:
        mac, ip = host_key(line)
        macs.add(mac)
        ips.add(ip)
    found = []
    for name, line in new.items():
        mac, ip = host_key(line)
        if line not in held and (ip in ips or mac in macs):
            found.append(name)
    return sorted(found)


def options_text(spec: NetworkSpec) -> str:
    """Per subnet: router, classless static routes (RFC 3442: a client that gets option 121
    ignores option 3, so the default route is repeated in it, as Neutron does), DNS, MTU."""
    lines: list[str] = []
    for subnet in spec.subnets:
        tag = f"tag:{subnet_tag(subnet)}"
        routes = [f"{METADATA_IP}/32", subnet.dhcp_ip]
        for route in subnet.host_routes:
            routes += [route.destination, route.nexthop]
        if subnet.gateway_ip:
            lines.append(f"{tag},option:router,{subnet.gateway_ip}")
            routes += ["0.0.0.0/0", subnet.gateway_ip]
        else:
            lines.append(f"{tag},option:router")
        lines.append(f"{tag},option:classless-static-route,{','.join(routes)}")
        # No DNS service here (--port=0): with no nameservers, send none rather than our own IP.
        lines.append(f"{tag},option:dns-server" + "".join("," + d for d in subnet.dns_nameservers))
        lines.append(f"{tag},option:mtu,{spec.mtu}")
    return "".join(line + "\n" for line in lines)


@dataclass(frozen=True)
class Lease:
    expiry: int
    mac: str
    ip: str
    hostname: str
    client_id: str | None


def parse_leases(text: str) -> list[Lease]:
    """dnsmasq's lease file: `expiry mac ip hostname client-id` per line ("*" for none)."""
    leases: list[Lease] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or not fields[0].isdigit() or ":" not in fields[1]:
            continue  # e.g. "duid …" lines of DHCPv6
        client_id = fields[4] if len(fields) > 4 and fields[4] != "*" else None
        leases.append(Lease(int(fields[0]), fields[1].lower(), fields[2], fields[3], client_id))
    return leases


def stale_leases(leases: list[Lease], spec: NetworkSpec) -> list[Lease]:
    """Leases whose (MAC, IP) is no longer reserved: to be released so the IP can be reused."""
    wanted = {(r.mac.lower(), r.ip) for r in spec.reservations}
    return [lease for lease in leases if (lease.mac, lease.ip) not in wanted]
