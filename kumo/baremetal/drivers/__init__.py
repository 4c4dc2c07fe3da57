"""BMC drivers. A driver is a module with `hardware(node, limiter) -> Hardware` (the power,
management and deploy interfaces of kumo.baremetal.drivers.base), registered here."""

from __future__ import annotations

from collections.abc import Callable

from kumo.baremetal.drivers.base import BMCError, Hardware, Limiter, Node

# Ironic's names; "fake" for short.
DRIVERS = ("redfish", "fake-hardware", "fake")


def load_hardware(node: Node, limiter: Limiter) -> Hardware:
    factory: Callable[[Node, Limiter], Hardware]
    if node.driver in ("fake-hardware", "fake"):
        from kumo.baremetal.drivers import fake

        factory = fake.hardware
    elif node.driver == "redfish":  # imports sushy: only when asked for
        from kumo.baremetal.drivers import redfish

        factory = redfish.hardware
    else:
        raise BMCError(f"unknown driver {node.driver!r} for node {node.label}; known: {', '.join(DRIVERS)}")
    return factory(node, limiter)
