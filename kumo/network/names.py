"""Names that the API, the network hosts and the canaries must agree on, with no dependency of
their own (any layer imports them)."""

from __future__ import annotations


def namespace_name(network_id: str) -> str:
    """A network's namespace on its network host (Neutron's DHCP agent's name)."""
    return "qdhcp-" + network_id
