"""The deploy interface every kumo driver shares: boot the machine into its image from disk and
wait until the machine itself says the deploy is done.

Ironic's direct deploy writes the image with its agent and learns completion from the agent's
call-back. kumo learns it from the machine's serial console: the deploy is complete when the
marker (by default `KUMO-BOOT-OK`, which kumo's test image prints on ttyS0 once it is up) shows
up on the console after the power-on. Where the console comes from is the driver's business: a
log file the BMC's serial-over-LAN is captured to (`driver_info["kumo_console_log"]`), or the fake
machine's in-memory console. Without a console, completion is the BMC reporting the power on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from kumo.baremetal.drivers.base import (
    BOOT_DISK,
    POWER_OFF,
    POWER_ON,
    BMCError,
    Console,
    DeployAborted,
    DeployRequest,
    DeployTimeout,
    ManagementInterface,
    PowerInterface,
)

DEFAULT_MARKER = "KUMO-BOOT-OK"
POLL_SECONDS = 0.2
log = logging.getLogger("kumo.conductor")


class LogFileConsole:
    """A serial console captured to a file (libvirt's <serial><log file=…/>, an SOL logger)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    def mark(self) -> int:
        return self._size()

    def read_since(self, position: int) -> str:
        if self._size() < position:  # the log was truncated or replaced: all of it is new
            position = 0
        try:
            with open(self.path, "rb") as f:
                f.seek(position)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


class ConsoleDeploy:
    """power off → boot from disk (persistent) → power on → the marker on the console."""

    def __init__(
        self,
        label: str,
        power: PowerInterface,
        management: ManagementInterface,
        console: Console | None,
        marker: str = DEFAULT_MARKER,
    ) -> None:
        self.label = label
        self.power = power
        self.management = management
        self.console = console
        self.marker = marker

    def deploy(self, request: DeployRequest, stop: threading.Event) -> None:
        if self.power.get_power_state() != POWER_OFF:
            self.power.set_power_state(POWER_OFF)
        self.management.set_boot_device(BOOT_DISK, persistent=True)
        position = self.console.mark() if self.console is not None else 0
        started = time.monotonic()
        self.power.set_power_state(POWER_ON)
        if self.console is None:
            log.warning("node %s has no console to watch: deploy complete on power on", self.label)
            return
        deadline = started + request.timeout
        while self.marker not in self.console.read_since(position):
            if stop.wait(POLL_SECONDS):
                raise DeployAborted(f"deploy of node {self.label} abandoned: the conductor is stopping")
            if time.monotonic() > deadline:
                self._power_off_after_failure()
                raise DeployTimeout(
                    f"Timeout reached while waiting for the deploy of node {self.label} to complete: "
                    f"no {self.marker!r} on its console after {request.timeout:g} s"
                )
        log.info("node %s deployed in %.1f s", self.label, time.monotonic() - started)

    def _power_off_after_failure(self) -> None:
        # As Ironic's power_off_after_deploy_failure: a failed deploy is left off, not half up.
        try:
            self.power.set_power_state(POWER_OFF)
        except BMCError as exc:
            log.warning("node %s: power off after the failed deploy failed too: %s", self.label, exc)

    def tear_down(self) -> None:
        self.power.set_power_state(POWER_OFF)
        self.management.set_boot_device(BOOT_DISK, persistent=True)
