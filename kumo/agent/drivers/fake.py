"""The fake driver: guests are entries in a dict. For density tests and fast functional tests;
a peer of the real drivers, not a special case.

A fake guest's console holds the line kumo's test image prints once booted
(`KUMO-BOOT-OK <hostname> vcpus=<n> mem_kb=<kB> … ip=<its first port's address|none>`), from
its flavor and ports, so what reads a real guest's console reads a fake one's the same way.
`break_host(host, reason)` makes every spawn on a host fail (a broken hypervisor, for the
health canaries' tests) until `mend_host(host)`."""

from __future__ import annotations

import threading
import time
from typing import Any

from kumo.agent.drivers.base import DriverError, HostResources
from kumo.compute.states import PowerState

# Fake guests of every fake host in this process, so a migration can hand a guest over.
_GUESTS: dict[str, dict[str, int]] = {}
# The port ids of the NICs hot-plugged into each fake guest (by instance uuid).
PLUGGED: dict[str, set[str]] = {}
_CONSOLES: dict[str, str] = {}  # instance uuid → its console
_BROKEN: dict[str, str] = {}  # host → why every spawn there fails
_LOCK = threading.Lock()


def break_host(host: str, reason: str) -> None:
    with _LOCK:
        _BROKEN[host] = reason


def mend_host(host: str) -> None:
    with _LOCK:
        _BROKEN.pop(host, None)


def boot_line(instance: dict[str, Any]) -> str:
    """The test image's boot marker, as this guest would print it."""
    flavor = instance.get("flavor") or {}
    addresses = [
        ip["ip_address"] for port in instance.get("ports") or () for ip in port.get("fixed_ips") or ()
    ]
    name = instance.get("hostname") or instance.get("name") or "unknown"
    vcpus, mem_kb = int(flavor.get("vcpus") or 1), int(flavor.get("ram") or 0) * 1024
    disk_bytes, ip = int(flavor.get("disk") or 0) << 30, addresses[0] if addresses else "none"
    return (
        f"KUMO-BOOT-OK {name} vcpus={vcpus} mem_kb={mem_kb} disk_bytes={disk_bytes} boots=1 ip={ip} ssh=off\n"
    )


class FakeDriver:
    def __init__(
        self,
        host: str,
        vcpus: int = 32,
        memory_mb: int = 131072,
        disk_gb: int = 2000,
        delay: float = 0.0,
        **_: object,
    ) -> None:
        self.host = host
        self._resources = HostResources(int(vcpus), int(memory_mb), int(disk_gb), "fake")
        self.delay = float(delay)
        with _LOCK:
            self._guests = _GUESTS.setdefault(host, {})

    def _work(self) -> None:
        if self.delay:
            time.sleep(self.delay)

    def resources(self) -> HostResources:
        return self._resources

    def _set(self, uuid: str, state: PowerState) -> int:
        with _LOCK:
            self._guests[uuid] = int(state)
        return int(state)

    def _require(self, uuid: str) -> None:
        if uuid not in self._guests:
            raise DriverError(f"Instance {uuid} could not be found on host {self.host}.")

    def spawn(self, instance: dict[str, Any]) -> int:
        self._work()
        if instance.get("metadata", {}).get("fake_spawn_error"):
            raise DriverError(instance["metadata"]["fake_spawn_error"])
        broken = _BROKEN.get(self.host)
        if broken is not None:
            raise DriverError(f"host {self.host} is broken: {broken}")
        with _LOCK:
            _CONSOLES[instance["uuid"]] = boot_line(instance)
        return self._set(instance["uuid"], PowerState.RUNNING)

    def destroy(self, instance: dict[str, Any]) -> None:
        self._work()
        with _LOCK:
            self._guests.pop(instance["uuid"], None)
            PLUGGED.pop(instance["uuid"], None)
            _CONSOLES.pop(instance["uuid"], None)

    def power_on(self, instance: dict[str, Any]) -> int:
        self._require(instance["uuid"])
        return self._set(instance["uuid"], PowerState.RUNNING)

    def power_off(self, instance: dict[str, Any]) -> int:
        self._require(instance["uuid"])
        return self._set(instance["uuid"], PowerState.SHUTDOWN)

    def reboot(self, instance: dict[str, Any], hard: bool) -> int:
        self._require(instance["uuid"])
        self._work()
        return self._set(instance["uuid"], PowerState.RUNNING)

    def rebuild(self, instance: dict[str, Any], image_ref: str) -> int:
        self._work()
        return self._set(instance["uuid"], PowerState.RUNNING)

    def attach_interface(self, instance: dict[str, Any], port: dict[str, Any]) -> None:
        """Records the port as plugged; the instance metadata's `fake_interface_error` fails it."""
        self._require(instance["uuid"])
        self._work()
        if instance.get("metadata", {}).get("fake_interface_error"):
            raise DriverError(instance["metadata"]["fake_interface_error"])
        with _LOCK:
            PLUGGED.setdefault(instance["uuid"], set()).add(str(port["id"]))

    def detach_interface(self, instance: dict[str, Any], port: dict[str, Any]) -> None:
        self._work()
        with _LOCK:
            PLUGGED.get(instance["uuid"], set()).discard(str(port["id"]))

    def prepare_migration(self, instance: dict[str, Any]) -> dict[str, Any]:
        return {"host": self.host}

    def abort_migration(self, instance: dict[str, Any]) -> None:
        return None

    def migrate(
        self, instance: dict[str, Any], dest: str, live: bool, target: dict[str, Any] | None = None
    ) -> int:
        uuid = instance["uuid"]
        with _LOCK:
            if dest == self.host:
                raise DriverError(f"Cannot migrate instance {uuid} to its own host.")
            state = self._guests.pop(uuid, int(PowerState.RUNNING))
            # A destination agent in another process learns of the guest from its own spawn
            # state; in-process agents (kumo up, tests) see it at once.
            _GUESTS.setdefault(dest, {})[uuid] = state
        return state

    def image_cache_report(self) -> list[dict[str, Any]]:
        return []  # fake guests need no image

    def console_output(self, instance: dict[str, Any], lines: int | None = None) -> str:
        self._require(instance["uuid"])
        text = _CONSOLES.get(instance["uuid"], "")
        if lines is None or lines < 0:
            return text
        return "".join(text.splitlines(keepends=True)[-lines:]) if lines else ""

    def power_states(self) -> dict[str, int]:
        with _LOCK:
            return dict(self._guests)
