"""The Redfish driver, through the `sushy` client library (what Ironic's redfish hardware type
uses): ComputerSystem.Reset for power, boot source override for the boot device, the shared
console deploy (deploy.py) for the rest.

driver_info (Ironic's names): redfish_address (`https://bmc.example` or `host:port`, https when
no scheme is given), redfish_system_id (`/redfish/v1/Systems/<id>` or just `<id>`; may be left
out when the BMC has a single system), redfish_username, redfish_password, redfish_verify_ca
(true / false / a CA bundle path). kumo's own: kumo_console_log (the file the machine's serial
console is captured to; deploy completion is the marker on it), kumo_deploy_marker.

One sushy client (one HTTP session, one Redfish session when the BMC offers them) per BMC
address and credentials, shared by all the nodes behind that BMC and all conductor threads.
Every HTTP call runs under the conductor's limiter, so a conductor never has more than its
bound of Redfish requests in flight, whatever the number of nodes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sushy
from sushy import exceptions as sushy_exc
from sushy.connector import Connector

from kumo.baremetal.drivers.base import (
    BOOT_CDROM,
    BOOT_DISK,
    BOOT_PXE,
    DEFAULT_POWER_TIMEOUT,
    POWER_OFF,
    POWER_ON,
    SOFT_POWER_OFF,
    BMCError,
    BMCUnreachable,
    Hardware,
    Limiter,
    Node,
    PowerTimeout,
)
from kumo.baremetal.drivers.deploy import DEFAULT_MARKER, ConsoleDeploy, LogFileConsole

log = logging.getLogger("kumo.conductor")

CONNECT_TIMEOUT = 5.0  # a BMC that does not answer fails fast
REQUEST_TIMEOUT = 30.0
POWER_POLL_SECONDS = 0.5

_BOOT = {BOOT_DISK: sushy.BootSource.HDD, BOOT_PXE: sushy.BootSource.PXE, BOOT_CDROM: sushy.BootSource.CD}
_BOOT_REV = {v: k for k, v in _BOOT.items()}
# Ironic's mapping: a transition in progress counts as where it is going.
_POWER = {
    sushy.PowerState.ON: POWER_ON,
    sushy.PowerState.POWERING_ON: POWER_ON,
    sushy.PowerState.OFF: POWER_OFF,
    sushy.PowerState.POWERING_OFF: POWER_OFF,
}

_clients: dict[tuple[str, str, str, str], tuple[sushy.Sushy, Connector]] = {}
_clients_lock = threading.Lock()
_creating: dict[tuple[str, str, str, str], threading.Lock] = {}


def _verify(value: Any) -> bool | str:
    if value is None or isinstance(value, bool):
        return True if value is None else value
    text = str(value).strip()
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    return text  # a CA bundle


def _address(raw: str) -> str:
    raw = raw.strip().rstrip("/")
    return raw if "://" in raw else f"https://{raw}"


class RedfishSystem:
    """Power and management of one ComputerSystem."""

    def __init__(self, node: Node, limiter: Limiter) -> None:
        info = node.driver_info
        if not info.get("redfish_address"):
            raise BMCError(f"node {node.label}: driver_info has no redfish_address")
        self.node = node
        self.limiter = limiter
        self.address = _address(str(info["redfish_address"]))
        self.username = str(info.get("redfish_username") or "")
        self.password = str(info.get("redfish_password") or "")
        self.verify = _verify(info.get("redfish_verify_ca"))
        system_id = str(info.get("redfish_system_id") or "").strip()
        if system_id and not system_id.startswith("/"):
            system_id = f"/redfish/v1/Systems/{system_id}"
        self.system_id = system_id or None

    # -- the boundary: sushy's exceptions become BMCError ------------------------------------
    @contextmanager
    def _bmc(self, what: str) -> Iterator[None]:
        try:
            with self.limiter:
                yield
        except sushy_exc.ConnectionError as exc:
            self._forget_client()
            raise BMCUnreachable(
                f"Redfish BMC {self.address} of node {self.node.label} is unreachable ({what}): "
                f"{_first_line(exc)}"
            ) from exc
        except sushy_exc.ResourceNotFoundError as exc:
            raise BMCError(
                f"Redfish system {self.system_id or '(default)'} not found at {self.address} "
                f"(node {self.node.label})"
            ) from exc
        except sushy_exc.AccessError as exc:
            self._forget_client()
            raise BMCError(
                f"Redfish BMC {self.address} refused the credentials of node {self.node.label}"
            ) from exc
        except sushy_exc.SushyError as exc:
            raise BMCError(f"Redfish {what} failed on node {self.node.label}: {_first_line(exc)}") from exc

    def _key(self) -> tuple[str, str, str, str]:
        return (self.address, self.username, self.password, str(self.verify))

    def _client(self) -> tuple[sushy.Sushy, Connector]:
        """The BMC's client, created once even when many threads ask at the same time (a BMC
        allows few sessions); clients of different BMCs are created in parallel."""
        key = self._key()
        with _clients_lock:
            found = _clients.get(key)
            creating = _creating.setdefault(key, threading.Lock())
        if found is not None:
            return found
        with creating:
            with _clients_lock:
                found = _clients.get(key)
            if found is not None:
                return found
            return self._connect(key)

    def _connect(self, key: tuple[str, str, str, str]) -> tuple[sushy.Sushy, Connector]:
        connector = Connector(
            self.address,
            verify=self.verify,
            default_request_timeout=REQUEST_TIMEOUT,
            connect_timeout=CONNECT_TIMEOUT,
        )
        client = sushy.Sushy(
            self.address + "/redfish/v1/",
            username=self.username or None,
            password=self.password or None,
            verify=self.verify,
            connector=connector,
        )
        with _clients_lock:
            _clients[key] = (client, connector)
        return client, connector

    def _forget_client(self) -> None:
        with _clients_lock:
            _clients.pop(self._key(), None)

    def _system(self) -> Any:
        return self._client()[0].get_system(self.system_id)

    # -- power --------------------------------------------------------------------------------
    def get_power_state(self) -> str:
        """The power sync's call: the same GET of the ComputerSystem through sushy's connector
        (auth, retries, errors), without building sushy's System object."""
        with self._bmc("get power state"):
            if self.system_id is None:
                raw = self._system().power_state
            else:
                body = self._client()[1].get(self.system_id).json()
                try:
                    raw = sushy.PowerState(body.get("PowerState"))
                except ValueError:
                    raw = body.get("PowerState")
        state = _POWER.get(raw)
        if state is None:
            raise BMCError(f"node {self.node.label}: the BMC reports power state {raw!r}")
        return state

    def set_power_state(self, target: str, timeout: float = DEFAULT_POWER_TIMEOUT) -> None:
        with self._bmc(f"set power state {target}"):
            system = self._system()
            current = _POWER.get(system.power_state)
            if target == POWER_ON:
                if current != POWER_ON:
                    system.reset_system(sushy.ResetType.ON)
            elif target == POWER_OFF:
                if current != POWER_OFF:
                    system.reset_system(sushy.ResetType.FORCE_OFF)
            elif target == SOFT_POWER_OFF:
                if current != POWER_OFF:
                    system.reset_system(sushy.ResetType.GRACEFUL_SHUTDOWN)
            else:
                raise BMCError(f"unsupported power state {target!r}")
        self._wait_power(POWER_OFF if target == SOFT_POWER_OFF else target, timeout)

    def reboot(self, soft: bool = False, timeout: float = DEFAULT_POWER_TIMEOUT) -> None:
        with self._bmc("reboot"):
            system = self._system()
            if _POWER.get(system.power_state) != POWER_ON:
                system.reset_system(sushy.ResetType.ON)
            else:
                system.reset_system(
                    sushy.ResetType.GRACEFUL_RESTART if soft else sushy.ResetType.FORCE_RESTART
                )
        self._wait_power(POWER_ON, timeout)

    def _wait_power(self, target: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            state = self.get_power_state()
            if state == target:
                return
            if time.monotonic() > deadline:
                raise PowerTimeout(
                    f"node {self.node.label} did not reach {target!r} within {timeout:g} s (it is {state!r})"
                )
            time.sleep(POWER_POLL_SECONDS)

    # -- management ---------------------------------------------------------------------------
    def get_boot_device(self) -> str | None:
        with self._bmc("get boot device"):
            target = self._system().boot.target
        return _BOOT_REV.get(target)

    def set_boot_device(self, device: str, persistent: bool = False) -> None:
        if device not in _BOOT:
            raise BMCError(f"unsupported boot device {device!r}")
        enabled = (
            sushy.BootSourceOverrideEnabled.CONTINUOUS if persistent else sushy.BootSourceOverrideEnabled.ONCE
        )
        with self._bmc(f"set boot device {device}"):
            self._system().set_system_boot_options(_BOOT[device], enabled=enabled)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def hardware(node: Node, limiter: Limiter) -> Hardware:
    system = RedfishSystem(node, limiter)
    console_log = node.driver_info.get("kumo_console_log")
    console = LogFileConsole(str(console_log)) if console_log else None
    marker = str(node.driver_info.get("kumo_deploy_marker") or DEFAULT_MARKER)
    deploy = ConsoleDeploy(node.label, system, system, console, marker)
    return Hardware(power=system, management=system, deploy=deploy, console=console)


def forget_clients() -> None:
    """Drop cached sessions (tests; a conductor reconnects on demand)."""
    with _clients_lock:
        _clients.clear()
