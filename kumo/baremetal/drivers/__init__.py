"""BMC drivers. A driver is a module with `hardware(node, limiter) -> Hardware` (the power,
management and deploy interfaces of kumo.baremetal.drivers.base), registered in DRIVERS and in
the conductor's loader (kumo.baremetal.drivers.load)."""

from __future__ import annotations

# Ironic's names; "fake" for short.
DRIVERS = ("redfish", "fake-hardware", "fake")
