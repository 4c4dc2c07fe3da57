"""BMC driver interfaces, after Ironic's: a node's *hardware* is a power, a management and a
deploy interface, each a handful of typed methods. A driver is a module that builds them for
one node (`drivers/load.py:load_hardware`); the fake driver is a peer of the real ones.

Everything a BMC can do wrong (unreachable, refused, timed out, a deploy that never reported
completion) leaves a driver as a `BMCError` whose message is fit for `last_error` and a
server's fault: the conductor reports it, it never sees sushy's or requests' exceptions.

Every operation is idempotent: a conductor restarted mid-task (or the one that takes a dead
conductor's nodes over) runs the task again from the start.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

# Ironic's power states (what `openstack baremetal node show` prints).
POWER_ON = "power on"
POWER_OFF = "power off"
SOFT_POWER_OFF = "soft power off"
REBOOTING = "rebooting"
POWER_STATES = (POWER_ON, POWER_OFF)

# Ironic's boot devices.
BOOT_DISK = "disk"
BOOT_PXE = "pxe"
BOOT_CDROM = "cdrom"
BOOT_DEVICES = (BOOT_DISK, BOOT_PXE, BOOT_CDROM)

DEFAULT_POWER_TIMEOUT = 60.0


class BMCError(Exception):
    """A BMC failure translated at the driver boundary; the message reaches the operator."""


class BMCUnreachable(BMCError):
    """The BMC did not answer (refused, timed out, no route)."""


class PowerTimeout(BMCError):
    """The BMC accepted a power request but the machine did not get there in time."""


class DeployTimeout(BMCError):
    """The machine did not report deploy completion in time."""


class DeployAborted(BMCError):
    """The conductor is stopping: the deploy is abandoned, its task left for the next owner."""


@dataclass(frozen=True)
class Node:
    """A node as its conductor sees it (the API's NodeForConductor)."""

    uuid: str
    driver: str
    driver_info: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    power_state: str | None = None
    provision_state: str | None = None
    maintenance: bool = False
    instance_uuid: str | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Node:
        return cls(
            uuid=str(raw["uuid"]),
            driver=str(raw["driver"]),
            driver_info=dict(raw.get("driver_info") or {}),
            name=raw.get("name"),
            power_state=raw.get("power_state"),
            provision_state=raw.get("provision_state"),
            maintenance=bool(raw.get("maintenance", False)),
            instance_uuid=raw.get("instance_uuid"),
        )

    @property
    def label(self) -> str:
        return self.name or self.uuid


class PowerInterface(Protocol):
    def get_power_state(self) -> str:
        """POWER_ON or POWER_OFF."""
        ...

    def set_power_state(self, target: str, timeout: float = DEFAULT_POWER_TIMEOUT) -> None:
        """POWER_ON, POWER_OFF (hard) or SOFT_POWER_OFF; returns once the BMC reports it."""
        ...

    def reboot(self, soft: bool = False, timeout: float = DEFAULT_POWER_TIMEOUT) -> None:
        """Restart (powers on a machine that is off)."""
        ...


class ManagementInterface(Protocol):
    def get_boot_device(self) -> str | None: ...

    def set_boot_device(self, device: str, persistent: bool = False) -> None: ...


@dataclass(frozen=True)
class DeployRequest:
    timeout: float
    instance: Mapping[str, Any] = field(default_factory=dict)
    image_ref: str | None = None


class DeployInterface(Protocol):
    def deploy(self, request: DeployRequest, stop: threading.Event) -> None:
        """Boot the machine into its image and wait until it reports completion. Raises
        DeployTimeout after `request.timeout` (the machine is then powered off), DeployAborted
        when `stop` is set."""
        ...

    def tear_down(self) -> None:
        """Power off and clean: the machine is left off, booting from disk."""
        ...


class Console(Protocol):
    """A machine's serial console, as text written since a position."""

    def mark(self) -> int:
        """A position: what is written after now is read with read_since(mark)."""
        ...

    def read_since(self, position: int) -> str: ...


@dataclass(frozen=True)
class Hardware:
    """One node's interfaces (Ironic's hardware type, bound to a node). `console` is None when
    the node has none kumo can read (a Redfish node without `kumo_console_log`)."""

    power: PowerInterface
    management: ManagementInterface
    deploy: DeployInterface
    console: Console | None = None


# Bounds concurrent BMC calls: a threading.Semaphore shared by all of a conductor's nodes.
Limiter = AbstractContextManager[Any]


def unlimited() -> Limiter:
    return threading.Semaphore(1 << 30)
