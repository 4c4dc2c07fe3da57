"""Which instance a metadata request comes from: (network, source address) → instance uuid.

The data plane fills it as it plugs and unplugs ports (it knows each port's network, fixed IPs
and device); the responder only reads it. Source addresses can be trusted only because the
data plane drops spoofed ones (anti-spoofing on every port)."""

from __future__ import annotations

import ipaddress
import threading


def _normal(address: str) -> str:
    """One spelling per address ('::ffff:10.0.0.5' and '10.0.0.5' are the same guest)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class SourceMap:
    """A small in-memory map; safe to change from the agent's threads while the responder's
    event loop reads it (a read is one dict lookup)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._map: dict[tuple[str, str], str] = {}

    def set(self, network_id: str, address: str, instance_uuid: str) -> None:
        with self._lock:
            self._map[(network_id, _normal(address))] = instance_uuid

    def remove(self, network_id: str, address: str) -> None:
        with self._lock:
            self._map.pop((network_id, _normal(address)), None)

    def remove_instance(self, instance_uuid: str) -> None:
        with self._lock:
            for key in [k for k, v in self._map.items() if v == instance_uuid]:
                del self._map[key]

    def lookup(self, network_id: str, address: str) -> str | None:
        found = self._map.get((network_id, address))
        if found is None and ":" in address:
            try:
                found = self._map.get((network_id, _normal(address)))
            except ValueError:
                return None
        return found

    def __len__(self) -> int:
        return len(self._map)
