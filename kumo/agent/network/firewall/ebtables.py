"""Layer-2 anti-spoofing for secured ports: ebtables(-nft), bridge family, nat PREROUTING
(Neutron's linuxbridge `prevent_arp_spoofing` plus its source-MAC check).

A bridge learns a frame's source MAC (its FDB) after the bridge PREROUTING hook, so a frame
dropped there never moves a neighbour's MAC to the sender's port; the iptables FORWARD checks
(kumo/agent/network/firewall/iptables.py) come too late for that, and never see ARP.

    PREROUTING  -j kumo-fw                                  (one jump, inserted first)
    kumo-fw     per secured port: -i tapX -j kumo-m-X
    kumo-m-X    source MAC ≠ the port's                     → DROP
                ARP with sender MAC = the port's and sender IP ∈ the port's IPs (or 0.0.0.0, an
                RFC 5227 probe, as DHCP clients send)       → RETURN
                any other ARP                               → DROP
                IPv4                                        → RETURN (iptables filters it)
                RARP (QEMU's announce after a migration)    → RETURN (the port's own MAC only)
                any other ethertype (IPv6, …)               → DROP

Each call is one `ebtables-nft-restore --noflush` transaction of the nat table: kumo-fw and the
chains of the ports given are rebuilt in it, nothing else is touched. Frames from ports without
port security and from non-kumo ports pass untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from kumo.agent.network.run import run
from kumo.agent.network.spec import PortFirewall

TOP = "kumo-fw"
_PORT_CHAIN = re.compile(r"^:kumo-m-(\S+) ")
PREROUTING_JUMP = ["-j", TOP]


def chain(chain_id: str) -> str:
    return f"kumo-m-{chain_id}"


def port_lines(port: PortFirewall) -> list[str]:
    """The port's chain, in ebtables-restore form (without its declaration)."""
    name, mac = chain(port.chain_id), port.mac.lower()
    lines = [f"-A {name} -s ! {mac} -j DROP"]
    for ip in ["0.0.0.0", *sorted(set(port.ips))]:
        lines.append(f"-A {name} -p ARP --arp-mac-src {mac} --arp-ip-src {ip} -j RETURN")
    lines += [f"-A {name} -p ARP -j DROP", f"-A {name} -p IPv4 -j RETURN", f"-A {name} -p RARP -j RETURN"]
    lines.append(f"-A {name} -j DROP")
    return lines


def top_lines(chain_ids: Iterable[str]) -> list[str]:
    return [f"-A {TOP} -i tap{chain_id} -j {chain(chain_id)}" for chain_id in sorted(chain_ids)]


def restore_text(keep: set[str], apply: Sequence[PortFirewall], drop: set[str]) -> str:
    """One transaction: rebuild kumo-fw for `keep` ∪ the secured ports of `apply`, (re)fill the
    chains of those, and delete the chains of `drop` (chain ids) and of unsecured ports."""
    secured = [p for p in apply if p.port_security_enabled]
    gone = (drop | {p.chain_id for p in apply if not p.port_security_enabled}) - {p.chain_id for p in secured}
    active = (keep - gone) | {p.chain_id for p in secured}
    lines = ["*nat", f":{TOP} ACCEPT"]  # declared under --noflush: emptied
    lines += [f":{chain(p.chain_id)} RETURN" for p in secured]
    lines += [f":{chain(chain_id)} RETURN" for chain_id in sorted(gone & keep)]
    lines += top_lines(active)
    for port in secured:
        lines += port_lines(port)
    lines += [f"-X {chain(chain_id)}" for chain_id in sorted(gone & keep)]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def teardown_text(saved: str) -> str | None:
    """One transaction removing the jumps into kumo chains from other chains and every kumo
    chain, from an `ebtables-save -t nat`; None when there is nothing of kumo's."""
    ours = [line.split()[0][1:] for line in saved.splitlines() if line.startswith(":kumo-")]
    jumps = [
        "-D" + line[2:]
        for line in saved.splitlines()
        if line.startswith("-A ") and not line.split()[1].startswith("kumo-") and " -j kumo-" in line
    ]
    if not ours and not jumps:
        return None
    lines = ["*nat", *jumps, *[f":{name} RETURN" for name in ours], *[f"-X {name}" for name in ours]]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


class BridgeGuard:
    """The ebtables half of the firewall; its caller serialises calls (IptablesFirewall's lock)."""

    def __init__(self, ebtables: str = "ebtables-nft") -> None:
        self.ebtables = ebtables

    def _state(self) -> tuple[set[str], bool]:
        saved = run([f"{self.ebtables}-save", "-t", "nat"])
        ids = {m.group(1) for line in saved.splitlines() if (m := _PORT_CHAIN.match(line))}
        jump = "-A PREROUTING " + " ".join(PREROUTING_JUMP)
        return ids, any(line.strip() == jump for line in saved.splitlines())

    def _commit(self, apply: Sequence[PortFirewall], drop: Iterable[str]) -> None:
        keep, jumped = self._state()
        dropped = {tap[3:] for tap in drop if tap.startswith("tap")} & keep
        if not apply and not dropped:
            return
        run([f"{self.ebtables}-restore", "--noflush"], stdin=restore_text(keep, apply, dropped))
        if not jumped:
            run([self.ebtables, "-t", "nat", "-I", "PREROUTING", "1", *PREROUTING_JUMP])

    def apply(self, ports: Sequence[PortFirewall]) -> None:
        self._commit(ports, ())

    def remove(self, taps: Sequence[str]) -> None:
        self._commit((), taps)

    def taps(self) -> set[str]:
        return {"tap" + chain_id for chain_id in self._state()[0]}

    def teardown(self) -> None:
        text = teardown_text(run([f"{self.ebtables}-save", "-t", "nat"]))
        if text is not None:
            run([f"{self.ebtables}-restore", "--noflush"], stdin=text)
