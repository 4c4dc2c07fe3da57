"""Cutting the connections a firewall change no longer allows (conntrack-tools' `conntrack -D`).

A port chain RETURNs RELATED,ESTABLISHED packets before its rules, so without this a flow admitted
once outlives the rule that admitted it. When a port's allowed set shrinks, the entries of the
flows the removed part admitted are deleted, after the new rules are committed:

- a rule removed (or one member address of a remote group gone): the entries whose original
  direction matches it: for an ingress rule, destination = one of the port's addresses, source =
  the rule's remote, its protocol and (single) destination port; for an egress rule the reverse.
  A port range or a protocol conntrack cannot filter on widens the filter to the protocol or to
  every protocol, never narrows it;
- an address the port no longer holds, or the port gone (removed, or secured no more is NOT a
  shrink): every entry from or to that address.

The precision is per rule, not per flow: a flow the removed rule matched but another remaining
rule also allows loses its entry too; its next packet from the side the rules allow makes a new
one (TCP's loose pickup, UDP), the other side's packets are judged by the rules until then. The
previous set is what this process applied last (kept in memory): after an agent restart, changes
made while it was down cut nothing. Entries live in conntrack zone 0 (no per-network zones), so
the same address on two networks shares the filter.
"""

from __future__ import annotations

from kumo.agent.network.run import run
from kumo.agent.network.spec import PortFirewall, Rule

# Protocol names conntrack's -p takes (the API sends numbers).
_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "132": "sctp", "33": "dccp", "136": "udplite"}
_PORTS = frozenset({"tcp", "udp", "sctp", "dccp", "udplite"})
Atom = tuple[str, str | None, int | None, int | None, str | None]  # direction, proto, min, max, remote


def atoms(port: PortFirewall) -> set[Atom]:
    """The port's IPv4 rules, one per remote address of a remote-group rule."""
    found: set[Atom] = set()
    for rule in port.rules:
        if rule.ethertype != "IPv4":
            continue
        head = (rule.direction, _protocol(rule), rule.port_range_min, rule.port_range_max)
        if rule.remote_ips is not None:
            found |= {(*head, f"{ip}/32") for ip in rule.remote_ips}
        else:
            prefix = rule.remote_ip_prefix
            found.add((*head, None if prefix in (None, "0.0.0.0/0") else prefix))
    return found


def _protocol(rule: Rule) -> str | None:
    protocol = _NAMES.get(rule.protocol or "", rule.protocol)
    return None if protocol in (None, "0") else protocol


def _atom_filter(atom: Atom, ip: str) -> list[str]:
    direction, protocol, low, high, remote = atom
    local, far = ("-d", "-s") if direction == "ingress" else ("-s", "-d")
    argv = [local, ip]
    if remote is not None:
        argv += [far, remote]
    if protocol is not None and protocol in _NAMES.values():
        argv += ["-p", protocol]
        if protocol in _PORTS and low is not None and low == high:
            argv += ["--dport", str(low)]
        elif protocol == "icmp" and low is not None:
            argv += ["--icmp-type", str(low)] + (["--icmp-code", str(high)] if high is not None else [])
    return argv


def filters(old: PortFirewall | None, new: PortFirewall | None) -> list[list[str]]:
    """The `conntrack -D` filters (without the command) that going from `old` to `new` (None: no
    rules of this port, i.e. gone or unsecured) calls for; nothing when nothing was allowed
    before (None or unsecured) or nothing shrank."""
    if old is None or not old.port_security_enabled:
        return []
    if new is not None and not new.port_security_enabled:
        return []  # everything is allowed now
    old_ips = set(old.ips)
    kept_ips = set(new.ips) if new is not None else set()
    out: list[list[str]] = []
    for ip in sorted(old_ips - kept_ips):
        out += [["-s", ip], ["-d", ip]]
    removed = atoms(old) - (atoms(new) if new is not None else set())
    for ip in sorted(old_ips & kept_ips):
        out += [_atom_filter(atom, ip) for atom in sorted(removed, key=repr)]
    return out


def live(filters_: list[list[str]], listing: str) -> list[list[str]]:
    """The filters whose port address has an entry in that direction, from a `conntrack -L`
    listing (the first src= and dst= of a line are the original direction's): one listing spares
    a `conntrack -D` per filter that could match nothing."""
    sources: set[str] = set()
    destinations: set[str] = set()
    for line in listing.splitlines():
        words = line.split()
        src = next((w[4:] for w in words if w.startswith("src=")), None)
        dst = next((w[4:] for w in words if w.startswith("dst=")), None)
        if src is not None:
            sources.add(src)
        if dst is not None:
            destinations.add(dst)
    return [f for f in filters_ if f[1] in (sources if f[0] == "-s" else destinations)]


def flush(all_filters: list[list[str]], conntrack: str = "conntrack") -> int:
    """Deletes the matching IPv4 entries (conntrack exits 1 when a filter matched none); returns
    how many `conntrack -D` ran."""
    wanted = live(all_filters, run([conntrack, "-L", "-f", "ipv4"], check=False)) if all_filters else []
    for argv in wanted:
        run([conntrack, "-D", "-f", "ipv4", *argv], check=False)
    return len(wanted)
