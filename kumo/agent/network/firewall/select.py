"""Which firewall driver this host can run, probed once at agent start.

iptables(-nft) with physdev needs bridged IPv4 to reach iptables (br_netfilter, with
net.bridge.bridge-nf-call-iptables=1); its layer-2 half ebtables-nft (the iptables package), whose
nat table needs no bridge conntrack. An nftables bridge-family driver would need conntrack in
the bridge family (nf_conntrack_bridge), which this project's test kernels lack; it is not built.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kumo.agent.network.firewall.base import Firewall
from kumo.agent.network.firewall.iptables import IptablesFirewall
from kumo.agent.network.run import NetworkError

BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


def unusable_reason(bridge_nf: Path = BRIDGE_NF) -> str | None:
    """Why security groups cannot be enforced here, or None."""
    if shutil.which("iptables-restore") is None:
        return "iptables-restore is not installed (scripts/install-network)"
    if shutil.which("ebtables-nft-restore") is None:
        return "ebtables-nft-restore is not installed (iptables package; scripts/install-network)"
    try:
        if bridge_nf.read_text().strip() != "1":
            return f"{bridge_nf} is not 1: bridged traffic would bypass iptables"
    except OSError:
        return "br_netfilter is not loaded (modprobe br_netfilter; scripts/install-network)"
    return None


def select_firewall() -> Firewall:
    reason = unusable_reason()
    if reason is not None:
        raise NetworkError(f"no usable firewall for security groups: {reason}")
    return IptablesFirewall()
