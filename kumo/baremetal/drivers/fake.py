"""The fake driver: an in-memory BMC per node, a peer of the Redfish driver (same interfaces,
same deploy logic, a console in memory) for unit tests and density runs.

driver_info options (all optional):
  fake_latency       seconds each BMC call takes (a slow BMC)
  fake_boot_seconds  seconds from power on to the deploy-complete marker (default 0.05)
  fake_boots         false: the machine never prints the marker (a deploy that times out)
  fake_unreachable   true: every BMC call fails as if the BMC did not answer
  fake_power_state   the machine's power state when first seen ("power on" for adoption)

`machine(uuid)` is the node's machine, for tests to inspect (power cycles, boot device) or to
break (`unreachable = True`). Machines live in this process, shared by all its conductors, as
physical servers outlive the conductor that drives them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kumo.baremetal.drivers.base import (
    BOOT_DEVICES,
    BOOT_DISK,
    DEFAULT_POWER_TIMEOUT,
    POWER_OFF,
    POWER_ON,
    SOFT_POWER_OFF,
    BMCError,
    BMCUnreachable,
    Hardware,
    Limiter,
    Node,
)
from kumo.baremetal.drivers.deploy import DEFAULT_MARKER, ConsoleDeploy


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass
class FakeMachine:
    uuid: str
    power: str = POWER_OFF
    boot_device: str = BOOT_DISK
    boot_persistent: bool = True
    unreachable: bool = False
    boots: bool = True
    boot_seconds: float = 0.05
    latency: float = 0.0
    calls: int = 0
    power_ons: int = 0
    power_offs: int = 0
    _console: list[str] = field(default_factory=list)
    _boot_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def console_text(self) -> str:
        with self.lock:
            if self._boot_at is not None and time.monotonic() >= self._boot_at:
                self._console.append(f"{DEFAULT_MARKER} {self.uuid} boots={self.power_ons}\n")
                self._boot_at = None
            return "".join(self._console)

    def _power_on(self) -> None:
        if self.power != POWER_ON:
            self.power = POWER_ON
            self.power_ons += 1
            self._console.append(f"fake firmware: booting from {self.boot_device}\n")
            self._boot_at = time.monotonic() + self.boot_seconds if self.boots else None

    def _power_off(self) -> None:
        if self.power != POWER_OFF:
            self.power = POWER_OFF
            self.power_offs += 1
            self._boot_at = None


_machines: dict[str, FakeMachine] = {}
_machines_lock = threading.Lock()


def machine(uuid: str, driver_info: dict[str, Any] | None = None) -> FakeMachine:
    """The node's machine, created on first sight from its driver_info."""
    with _machines_lock:
        found = _machines.get(uuid)
        if found is None:
            info = driver_info or {}
            found = _machines[uuid] = FakeMachine(
                uuid,
                power=str(info.get("fake_power_state", POWER_OFF)),
                unreachable=_flag(info.get("fake_unreachable", False)),
                boots=_flag(info.get("fake_boots", True)),
                boot_seconds=float(info.get("fake_boot_seconds", 0.05)),
                latency=float(info.get("fake_latency", 0.0)),
            )
        return found


def forget_all() -> None:
    with _machines_lock:
        _machines.clear()


class FakeBMC:
    """The power and management interfaces of one fake machine."""

    def __init__(self, node: Node, limiter: Limiter) -> None:
        self.node = node
        self.limiter = limiter
        self.machine = machine(node.uuid, dict(node.driver_info))

    def _call(self) -> FakeMachine:
        with self.limiter:
            m = self.machine
            if m.latency:
                time.sleep(m.latency)
            m.calls += 1
            if m.unreachable:
                raise BMCUnreachable(f"BMC of node {self.node.label} is unreachable (fake)")
            return m

    def get_power_state(self) -> str:
        return self._call().power

    def set_power_state(self, target: str, timeout: float = DEFAULT_POWER_TIMEOUT) -> None:
        m = self._call()
        with m.lock:
            if target == POWER_ON:
                m._power_on()
            elif target in (POWER_OFF, SOFT_POWER_OFF):
                m._power_off()
            else:
                raise BMCError(f"unsupported power state {target!r}")

    def reboot(self, soft: bool = False, timeout: float = DEFAULT_POWER_TIMEOUT) -> None:
        m = self._call()
        with m.lock:
            m._power_off()
            m._power_on()

    def get_boot_device(self) -> str | None:
        return self._call().boot_device

    def set_boot_device(self, device: str, persistent: bool = False) -> None:
        if device not in BOOT_DEVICES:
            raise BMCError(f"unsupported boot device {device!r}")
        m = self._call()
        with m.lock:
            m.boot_device, m.boot_persistent = device, persistent


class _MachineConsole:
    def __init__(self, m: FakeMachine) -> None:
        self.m = m

    def mark(self) -> int:
        return len(self.m.console_text())

    def read_since(self, position: int) -> str:
        return self.m.console_text()[position:]


def hardware(node: Node, limiter: Limiter) -> Hardware:
    bmc = FakeBMC(node, limiter)
    console = _MachineConsole(bmc.machine)
    deploy = ConsoleDeploy(node.label, bmc, bmc, console)
    return Hardware(power=bmc, management=bmc, deploy=deploy, console=console)
