"""The compute driver interface: inventory in, guest lifecycle out. Drivers never choose hosts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kumo.compute.states import PowerState

# Where a snapshot's bytes go: takes the chunks (pulled one at a time, so memory stays bounded)
# and returns once they are all stored; raises DriverError when the upload fails.
Upload = Callable[[Iterable[bytes]], None]


class DriverError(Exception):
    """A hypervisor failure, translated at the driver boundary; the message reaches the user."""


# A power state as the diagnostics' `state` names it (the compute API's 2.48 shape).
STATE_NAMES: dict[int, str] = {
    PowerState.NOSTATE: "pending",
    PowerState.RUNNING: "running",
    PowerState.PAUSED: "paused",
    PowerState.SHUTDOWN: "shutdown",
    PowerState.CRASHED: "crashed",
    PowerState.SUSPENDED: "suspended",
}


# A disk's counters in the diagnostics.
DISK_COUNTERS = ("read_bytes", "read_requests", "write_bytes", "write_requests", "errors_count")


def nic_counters(mac: str, counters: tuple[int, ...] = (0,) * 8) -> dict[str, Any]:
    """One NIC of the diagnostics from its interface counters (rx bytes, packets, errors, drops,
    then the same for tx: libvirt's interfaceStats order)."""
    rx_b, rx_p, rx_e, rx_d, tx_b, tx_p, tx_e, tx_d = counters
    return {
        "mac_address": mac,
        "rx_octets": rx_b,
        "rx_packets": rx_p,
        "rx_errors": rx_e,
        "rx_drop": rx_d,
        "rx_rate": None,
        "tx_octets": tx_b,
        "tx_packets": tx_p,
        "tx_errors": tx_e,
        "tx_drop": tx_d,
        "tx_rate": None,
    }


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

    # -- day-2 actions (kumo.compute.day2): each returns the guest's power state afterwards
    def pause(self, instance: dict[str, Any]) -> int:
        """Freeze the running guest in memory (its vCPUs stop)."""
        ...

    def unpause(self, instance: dict[str, Any]) -> int: ...

    def suspend(self, instance: dict[str, Any]) -> int:
        """Save the guest's memory to disk and stop it (libvirt's managed save)."""
        ...

    def resume(self, instance: dict[str, Any]) -> int:
        """Start a suspended guest again from its saved memory."""
        ...

    def rescue(self, instance: dict[str, Any], image_ref: str, admin_pass: str | None) -> int:
        """Boot the guest from a fresh disk of `image_ref`, its own disk attached second."""
        ...

    def unrescue(self, instance: dict[str, Any]) -> int:
        """Boot the guest from its own disk again (the rescue disk goes)."""
        ...

    def resize(self, instance: dict[str, Any]) -> int:
        """On this host: give the guest the spec's flavor (memory, vCPUs, a larger root disk),
        booting it again if it was running."""
        ...

    def trigger_crash_dump(self, instance: dict[str, Any]) -> None:
        """Inject an NMI into the running guest."""
        ...

    def diagnostics(self, instance: dict[str, Any]) -> dict[str, Any]:
        """The guest's diagnostics in the compute API's 2.48 shape (kumo.compute.day2)."""

    def cpu_stats(self) -> CpuSample:
        """Every guest's per-vCPU run and delay counters, in one cheap call."""
        ...

    def image_cache_report(self) -> list[dict[str, Any]]:
        """The host's image cache: one entry per cached image (id, size, os_hash_value,
        the instances using it, last use). Empty for drivers without a cache."""
        ...

    def snapshot(self, instance: dict[str, Any], upload: Upload) -> int:
        """Upload a consistent copy of the guest's root disk (qcow2) through `upload`: the
        guest quiesced while the copy is taken (paused, or shut off already) and left as it
        was; returns its power state afterwards."""
        ...

    def serial_console(self, instance: dict[str, Any]) -> dict[str, Any]:
        """The TCP endpoint of the guest's serial console on this host: {"host", "port"}
        (a raw byte stream both ways). DriverError when the guest has none."""
        ...
