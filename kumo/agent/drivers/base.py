"""The compute driver interface: inventory in, guest lifecycle out. Drivers never choose hosts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class DriverError(Exception):
    """A hypervisor failure, translated at the driver boundary; the message reaches the user."""


@dataclass(frozen=True)
class HostResources:
    vcpus: int
    memory_mb: int
    disk_gb: int
    hypervisor_type: str
    host_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class VcpuCounters:
    """One guest's CPU counters, summed over its vCPUs (libvirt's vcpu.N.time and vcpu.N.delay):
    nanoseconds its vCPU threads ran, and nanoseconds they waited runnable in the host's run queue
    (what KVM shows the guest as steal). Both only grow while the guest lives."""

    vcpus: int
    time_ns: int
    delay_ns: int


@dataclass(frozen=True)
class CpuSample:
    """Every guest's counters read at one moment (`at`: seconds of a monotonic clock), with the
    host's cores for guests and its 1-minute load average."""

    at: float
    cores: float
    load1: float
    guests: dict[str, VcpuCounters]


class ComputeDriver(Protocol):
    """Every method is idempotent: an agent restarted mid-task runs the task again."""

    def resources(self) -> HostResources: ...

    def spawn(self, instance: dict[str, Any]) -> int:
        """Create and boot the guest; returns its power state."""
        ...

    def destroy(self, instance: dict[str, Any]) -> None: ...

    def power_on(self, instance: dict[str, Any]) -> int: ...

    def power_off(self, instance: dict[str, Any]) -> int: ...

    def reboot(self, instance: dict[str, Any], hard: bool) -> int: ...

    def rebuild(self, instance: dict[str, Any], image_ref: str) -> int: ...

    def attach_interface(self, instance: dict[str, Any], port: dict[str, Any]) -> None:
        """Plug the NIC of `port` (the agents' port contract) into the guest: live and in its
        definition when it runs, in its definition when it is shut off. Already plugged: done."""
        ...

    def detach_interface(self, instance: dict[str, Any], port: dict[str, Any]) -> None:
        """Unplug the NIC of `port` from the guest (live and definition); returns once the
        guest let it go. Not plugged (or no guest): done."""
        ...

    def prepare_migration(self, instance: dict[str, Any]) -> dict[str, Any]:
        """On the destination, before a move: make ready to receive the guest; returns what
        the source's migrate() needs as `target`."""
        ...

    def abort_migration(self, instance: dict[str, Any]) -> None:
        """On the destination, after a failed move: undo prepare_migration."""
        ...

    def migrate(
        self, instance: dict[str, Any], dest: str, live: bool, target: dict[str, Any] | None = None
    ) -> int:
        """Move the guest to `dest` (another host's agent); returns its power state there."""
        ...

    def console_output(self, instance: dict[str, Any], lines: int | None) -> str:
        """The tail of the guest's serial console log: its last `lines` lines (None: all)."""
        ...

    def power_states(self) -> dict[str, int]:
        """uuid → power state of every guest this host runs (one cheap call)."""
        ...

    def cpu_stats(self) -> CpuSample:
        """Every guest's per-vCPU run and delay counters, in one cheap call."""
        ...

    def image_cache_report(self) -> list[dict[str, Any]]:
        """The host's image cache: one entry per cached image (id, size, os_hash_value,
        the instances using it, last use). Empty for drivers without a cache."""
        ...
