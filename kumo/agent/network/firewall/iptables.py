"""Security groups with iptables(-nft) in the bridge path: physdev + conntrack (Neutron's
iptables firewall driver). Needs br_netfilter with net.bridge.bridge-nf-call-iptables=1 (see
scripts/install-network): bridged IPv4 then traverses the filter table's FORWARD chain.

    FORWARD  -m physdev --physdev-is-bridged -j kumo-fw          (one jump, inserted first)
    kumo-fw  per port: --physdev-in  tapX → kumo-o-X             (from the guest: egress)
                       --physdev-out tapX → kumo-i-X             (to the guest: ingress)
             then -o brq+ --physdev-in  tap+ → kumo-fw-in        (from any tap of a kumo bridge)
                  -o brq+ --physdev-out tap+ → kumo-fw-out       (to any tap of a kumo bridge)
             then -o brq+ -j ACCEPT                              (kumo bridges: whatever the policy)
    kumo-s-X the port's (IP, MAC) pairs → RETURN, else DROP      (anti-spoofing)
    kumo-fw-in/-out  every known tap → RETURN, else DROP         (default closed)

A tap is known when it has chains (port security) or is declared open (a port applied with port
security disabled; the DHCP namespace's veth, which NetworkHost declares): a tap of a kumo bridge
that is neither, e.g. a secured port whose rules were lost, passes nothing. Ports not named tap*
(the host gateway's gwp… veth) and bridges not named brq* are not affected.

Always allowed, as Neutron does: DHCP from the guest (its discovery before it has an address,
then from its own address) and the DHCP server's replies to it; the metadata service
(169.254.169.254:80) from its own address. Never: a guest answering DHCP.

A port chain RETURNs what it allows (so a packet between two guests passes the sender's egress
*and* the receiver's ingress chain) and DROPs the rest. Each call is one `iptables-restore
--noflush` transaction: the port's chains and kumo-fw are rebuilt in it, nothing else is touched.
IPv6 from and to a secured port is dropped (kumo's subnets are IPv4; ip6tables gets one DROP pair
per port) so a guest cannot bypass its group or spoof over IPv6.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Iterable, Sequence

from kumo.agent.network.firewall import conntrack
from kumo.agent.network.firewall.ebtables import BridgeGuard
from kumo.agent.network.run import run
from kumo.agent.network.spec import METADATA_IP, PortFirewall, Rule

log = logging.getLogger("kumo.agent.firewall")
TOP = "kumo-fw"
KNOWN_IN, KNOWN_OUT = "kumo-fw-in", "kumo-fw-out"
_PORT_CHAIN = re.compile(r"^:kumo-i-(\S+) ")
_KNOWN = re.compile(rf"^-A {KNOWN_IN} .*--physdev-in tap(\S+) ")
# Protocols iptables names (the API sends numbers); those with a port match module of their own.
_NUMBERS = {"6": "tcp", "17": "udp", "1": "icmp", "132": "sctp", "33": "dccp", "136": "udplite"}
_PORT_MATCH = frozenset({"tcp", "udp", "sctp", "dccp"})
FORWARD_JUMP = ["-m", "physdev", "--physdev-is-bridged", "-j", TOP]


def chains(chain_id: str) -> tuple[str, str, str]:
    """(ingress, egress, anti-spoofing) chain names of a port."""
    return f"kumo-i-{chain_id}", f"kumo-o-{chain_id}", f"kumo-s-{chain_id}"


def rule_lines(chain: str, rule: Rule) -> list[str]:
    """One security-group rule → iptables-restore lines (several for a remote group: one per
    member address; none for an IPv6 rule, a group with no members, or a port range iptables
    cannot match for its protocol: a rule is never widened, so it then opens nothing)."""
    if rule.ethertype != "IPv4":
        return []
    match: list[str] = []
    protocol = _NUMBERS.get(rule.protocol or "", rule.protocol)
    if protocol is not None and protocol != "0":
        match += ["-p", protocol]
        low, high = rule.port_range_min, rule.port_range_max
        if protocol not in ("icmp",) and (low is not None or high is not None):
            low = low if low is not None else 1
            high = high if high is not None else 65535
            if (low, high) != (1, 65535):
                if protocol not in _PORT_MATCH:
                    return []
                match += ["-m", protocol, "--dport", str(low) if low == high else f"{low}:{high}"]
        elif protocol == "icmp" and low is not None:
            match += ["-m", "icmp", "--icmp-type", str(low) if high is None else f"{low}/{high}"]
    flag = "-s" if rule.direction == "ingress" else "-d"
    if rule.remote_ips is not None:
        remotes = [[flag, f"{ip}/32"] for ip in sorted(set(rule.remote_ips))]
    elif rule.remote_ip_prefix and rule.remote_ip_prefix not in ("0.0.0.0/0", "::/0"):
        remotes = [[flag, rule.remote_ip_prefix]]
    else:
        remotes = [[]]
    return [" ".join(["-A", chain, *remote, *match, "-j", "RETURN"]) for remote in remotes]


def port_lines(port: PortFirewall) -> list[str]:
    """The three chains of a port with port security, in iptables-restore form (without the
    chain declarations)."""
    ingress, egress, spoof = chains(port.chain_id)
    lines = [
        f"-A {ingress} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f"-A {ingress} -m conntrack --ctstate INVALID -j DROP",
        f"-A {ingress} -p udp -m udp --sport 67 --dport 68 -j RETURN",
    ]
    for rule in port.rules:
        if rule.direction == "ingress":
            lines += rule_lines(ingress, rule)
    lines.append(f"-A {ingress} -j DROP")
    lines += [
        f"-A {egress} -s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN",
        f"-A {egress} -j {spoof}",
        f"-A {egress} -p udp -m udp --sport 68 --dport 67 -j RETURN",
        f"-A {egress} -d {METADATA_IP}/32 -p tcp -m tcp --dport 80 -j RETURN",
        f"-A {egress} -p udp -m udp --sport 67 --dport 68 -j DROP",
        f"-A {egress} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f"-A {egress} -m conntrack --ctstate INVALID -j DROP",
    ]
    for rule in port.rules:
        if rule.direction == "egress":
            lines += rule_lines(egress, rule)
    lines.append(f"-A {egress} -j DROP")
    mac = port.mac.lower()
    lines += [f"-A {spoof} -s {ip}/32 -m mac --mac-source {mac} -j RETURN" for ip in sorted(set(port.ips))]
    lines.append(f"-A {spoof} -j DROP")
    return lines


def top_lines(chain_ids: Iterable[str], open_ids: Iterable[str] = ()) -> list[str]:
    """kumo-fw (the secured ports' jumps), then kumo-fw-in/-out: the taps known (secured or
    open) RETURN, any other tap of a kumo bridge is dropped."""
    lines: list[str] = []
    secured = sorted(set(chain_ids))
    for chain_id in secured:
        ingress, egress, _ = chains(chain_id)
        tap = "tap" + chain_id
        lines.append(f"-A {TOP} -m physdev --physdev-in {tap} --physdev-is-bridged -j {egress}")
        lines.append(f"-A {TOP} -m physdev --physdev-out {tap} --physdev-is-bridged -j {ingress}")
    lines.append(f"-A {TOP} -o brq+ -m physdev --physdev-in tap+ --physdev-is-bridged -j {KNOWN_IN}")
    lines.append(f"-A {TOP} -o brq+ -m physdev --physdev-out tap+ --physdev-is-bridged -j {KNOWN_OUT}")
    lines.append(f"-A {TOP} -o brq+ -j ACCEPT")
    for chain_id in sorted(set(secured) | set(open_ids)):
        tap = "tap" + chain_id
        lines.append(f"-A {KNOWN_IN} -m physdev --physdev-in {tap} --physdev-is-bridged -j RETURN")
        lines.append(f"-A {KNOWN_OUT} -m physdev --physdev-out {tap} --physdev-is-bridged -j RETURN")
    lines += [f"-A {KNOWN_IN} -j DROP", f"-A {KNOWN_OUT} -j DROP"]
    return lines


def open_after(opened: set[str], apply: Sequence[PortFirewall], drop: set[str]) -> set[str]:
    """The open (known, unsecured) chain ids once `apply` and `drop` are committed."""
    secured = {p.chain_id for p in apply if p.port_security_enabled}
    unsecured = {p.chain_id for p in apply if not p.port_security_enabled} - secured
    return ((opened - drop) - secured) | unsecured


def restore_text(
    keep: set[str], apply: Sequence[PortFirewall], drop: set[str], opened: set[str] | None = None
) -> str:
    """One transaction: rebuild kumo-fw for `keep` ∪ the secured ports of `apply`, (re)fill the
    chains of those, and delete the chains of `drop` (chain ids) and of unsecured ports; the taps
    known are those and the open ones (`opened`, the unsecured ports of `apply`, less `drop`)."""
    secured = [p for p in apply if p.port_security_enabled]
    gone = (drop | {p.chain_id for p in apply if not p.port_security_enabled}) - {p.chain_id for p in secured}
    active = (keep - gone) | {p.chain_id for p in secured}
    lines = ["*filter", f":{TOP} - [0:0]", f":{KNOWN_IN} - [0:0]", f":{KNOWN_OUT} - [0:0]"]
    for port in secured:
        lines += [f":{name} - [0:0]" for name in chains(port.chain_id)]
    for chain_id in sorted(gone & keep):
        lines += [f":{name} - [0:0]" for name in chains(chain_id)]
    lines += top_lines(active, open_after(opened or set(), apply, drop))
    for port in secured:
        lines += port_lines(port)
    for chain_id in sorted(gone & keep):
        lines += [f"-X {name}" for name in chains(chain_id)]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def teardown_text(saved: str) -> str | None:
    """One iptables-restore transaction that removes every rule jumping into a kumo chain from
    another chain (the FORWARD jump) and every kumo chain, from an `iptables-save -t filter`;
    None when there is nothing of kumo's."""
    ours = [line.split()[0][1:] for line in saved.splitlines() if line.startswith(":kumo-")]
    jumps = [
        "-D" + line[2:]
        for line in saved.splitlines()
        if line.startswith("-A ") and not line.split()[1].startswith("kumo-") and " -j kumo-" in line
    ]
    if not ours and not jumps:
        return None
    lines = ["*filter", *jumps]
    lines += [f":{chain} - [0:0]" for chain in ours]  # declared under --noflush: emptied
    lines += [f"-X {chain}" for chain in ours]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def restore6_text(active: set[str]) -> str:
    """ip6tables: every secured port's IPv6 dropped, both ways."""
    lines = ["*filter", f":{TOP} - [0:0]"]
    for chain_id in sorted(active):
        tap = "tap" + chain_id
        lines.append(f"-A {TOP} -m physdev --physdev-in {tap} --physdev-is-bridged -j DROP")
        lines.append(f"-A {TOP} -m physdev --physdev-out {tap} --physdev-is-bridged -j DROP")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def parse_state(saved: str) -> tuple[set[str], set[str], bool]:
    """From an `iptables-save -t filter`: the secured ports' chain ids, the open ones (known
    taps without chains) and whether FORWARD jumps to kumo-fw."""
    ids = {m.group(1) for line in saved.splitlines() if (m := _PORT_CHAIN.match(line))}
    known = {m.group(1) for line in saved.splitlines() if (m := _KNOWN.match(line))}
    jump = "-A FORWARD " + " ".join(FORWARD_JUMP)
    return ids, known - ids, any(line.strip() == jump for line in saved.splitlines())


# One per process: every IptablesFirewall (the firewall sync's, the network host's) reads the
# same tables and rewrites kumo-fw whole.
_LOCK = threading.Lock()


class IptablesFirewall:
    """Security groups (iptables), with the bridge-level anti-spoofing (`bridge`, ebtables)
    applied first and the conntrack entries a shrinking rule set no longer allows deleted after
    (`conntrack_tool`; None: not cut)."""

    name = "iptables"

    def __init__(
        self,
        iptables: str = "iptables",
        ip6tables: str | None = "ip6tables",
        bridge: BridgeGuard | None = None,
        conntrack_tool: str | None = "conntrack",
    ) -> None:
        self.iptables = iptables
        self.ip6tables = ip6tables
        self.bridge = bridge if bridge is not None else BridgeGuard()
        self.conntrack = conntrack_tool if conntrack_tool and shutil.which(conntrack_tool) else None
        if conntrack_tool and self.conntrack is None:
            log.warning(
                "%s is not installed: a removed rule leaves established flows (scripts/install-network)",
                conntrack_tool,
            )
        self._lock = _LOCK  # read state + commit, one caller at a time
        self._applied: dict[str, PortFirewall] = {}  # chain id → as last applied by this process

    def _state(self) -> tuple[set[str], set[str], bool]:
        return parse_state(run([f"{self.iptables}-save", "-t", "filter"]))

    def _commit(
        self, keep: set[str], apply: Sequence[PortFirewall], drop: set[str], jumped: bool, opened: set[str]
    ) -> None:
        run([f"{self.iptables}-restore", "-w", "--noflush"], stdin=restore_text(keep, apply, drop, opened))
        secured = {p.chain_id for p in apply if p.port_security_enabled}
        unsecured = drop | ({p.chain_id for p in apply} - secured)
        active = (keep - unsecured) | secured
        if not jumped:
            run([self.iptables, "-w", "-I", "FORWARD", "1", *FORWARD_JUMP])
        if self.ip6tables:
            run([f"{self.ip6tables}-restore", "-w", "--noflush"], stdin=restore6_text(active))
            if run([self.ip6tables, "-w", "-S", "FORWARD"]).find(" ".join(FORWARD_JUMP)) < 0:
                run([self.ip6tables, "-w", "-I", "FORWARD", "1", *FORWARD_JUMP])

    def _cut(self, changes: Iterable[tuple[PortFirewall | None, PortFirewall | None]]) -> None:
        """After a commit: delete the conntrack entries the change no longer allows."""
        wanted = [argv for old, new in changes for argv in conntrack.filters(old, new)]
        if self.conntrack is not None and wanted:
            conntrack.flush(wanted, self.conntrack)

    def apply(self, ports: Sequence[PortFirewall]) -> None:
        with self._lock:
            self.bridge.apply(ports)
            keep, opened, jumped = self._state()
            self._commit(keep, ports, set(), jumped, opened)
            self._cut([(self._applied.get(p.chain_id), p) for p in ports])
            self._applied.update((p.chain_id, p) for p in ports)

    def remove(self, taps: Sequence[str]) -> None:
        with self._lock:
            self.bridge.remove(taps)
            keep, opened, jumped = self._state()
            drop = {tap[3:] for tap in taps if tap.startswith("tap")} & (keep | opened)
            if drop:
                self._commit(keep, (), drop, jumped, opened)
            self._cut([(self._applied.pop(chain_id, None), None) for chain_id in sorted(drop)])

    def taps(self) -> set[str]:
        """The taps with rules: secured ones and the open ones (known, unfiltered)."""
        ids, opened, _ = self._state()
        return {"tap" + chain_id for chain_id in ids | opened}

    def teardown(self) -> None:
        with self._lock:
            self.bridge.teardown()
            for tool in (self.iptables, self.ip6tables):
                if tool is None:
                    continue
                text = teardown_text(run([f"{tool}-save", "-t", "filter"]))
                if text is not None:
                    run([f"{tool}-restore", "-w", "--noflush"], stdin=text)
