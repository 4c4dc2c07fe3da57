"""The conductor's loader of BMC drivers: every driver module, imported here (sushy with the
Redfish one), so the API, which needs only the names (kumo.baremetal.drivers.DRIVERS), never
loads them."""

from __future__ import annotations

from collections.abc import Callable

from kumo.baremetal.drivers import DRIVERS, fake, redfish
from kumo.baremetal.drivers.base import BMCError, Hardware, Limiter, Node

_HARDWARE: dict[str, Callable[[Node, Limiter], Hardware]] = {
    "redfish": redfish.hardware,
    "fake-hardware": fake.hardware,
    "fake": fake.hardware,
}


def load_hardware(node: Node, limiter: Limiter) -> Hardware:
    factory = _HARDWARE.get(node.driver)
    if factory is None:
        raise BMCError(f"unknown driver {node.driver!r} for node {node.label}; known: {', '.join(DRIVERS)}")
    return factory(node, limiter)
