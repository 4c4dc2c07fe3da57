"""A network host: converges this machine onto networks' specs (links, DHCP) and ports' firewalls.

What the agent's `network_sync` task calls: `reconcile(spec)` → the generation it applied.
Safe to repeat after any crash; a running dnsmasq is adopted, never restarted without cause.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kumo.agent.network import links
from kumo.agent.network.dnsmasq import DhcpChange, DnsmasqManager
from kumo.agent.network.firewall.base import Firewall
from kumo.agent.network.spec import NetworkSpec, PortFirewall, tap_name


@dataclass(frozen=True)
class Applied:
    network_id: str
    generation: int
    dhcp: DhcpChange


class NetworkHost:
    def __init__(
        self, state_dir: Path, firewall: Firewall, dnsmasq_binary: str = "dnsmasq", log_dhcp: bool = False
    ) -> None:
        self.state_dir = state_dir
        self.firewall = firewall
        self.dnsmasq = DnsmasqManager(state_dir / "dhcp", binary=dnsmasq_binary, log_dhcp=log_dhcp)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, network_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(network_id, threading.Lock())

    def reconcile(self, spec: NetworkSpec, rescan: bool = False) -> Applied:
        """Bridge, namespace, veth and addresses, then dnsmasq and its files, then the host's
        gateways of an external network (last: a gateway refused for a route conflict fails the
        sync with its reason, and the network's DHCP and metadata are served all the same)."""
        with self._lock(spec.id):
            # The DHCP namespace's veth is a tap of the bridge: declared open before it exists,
            # as the firewall closes the taps of kumo bridges it does not know.
            if spec.bridge_veth not in self.firewall.taps():
                self.firewall.apply(
                    [
                        PortFirewall(
                            spec.dhcp_port_id, "", (), port_security_enabled=False, tap=spec.bridge_veth
                        )
                    ]
                )
            links.ensure_links(spec)
            dhcp = self.dnsmasq.reconcile(spec, rescan=rescan)
            links.ensure_host_gateway(spec)
            return Applied(spec.id, spec.generation, dhcp)

    def remove(self, network_id: str, dhcp_port_id: str | None = None) -> None:
        """Everything of a network on this host: dnsmasq, links (the host's gateways with them),
        namespace, state files."""
        with self._lock(network_id):
            self.dnsmasq.stop(network_id)
            links.remove_links(network_id, dhcp_port_id)
            if dhcp_port_id is not None:
                self.firewall.remove([tap_name(dhcp_port_id)])
            shutil.rmtree(self.dnsmasq.paths(network_id).dir, ignore_errors=True)

    def plug(self, network_id: str, mtu: int, ports: Sequence[PortFirewall]) -> None:
        """Before a guest starts on a compute host: its network's bridge and its ports' rules."""
        links.ensure_bridge(network_id, mtu)
        self.firewall.apply(ports)

    def unplug(self, taps: Sequence[str]) -> None:
        self.firewall.remove(taps)

    def supervise(self) -> list[str]:
        return self.dnsmasq.supervise()
