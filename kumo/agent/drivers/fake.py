"""The fake driver: guests are entries in a dict. For density tests and fast functional tests;
a peer of the real drivers, not a special case.

A fake guest's console holds a short boot log ending with the line kumo's test image prints
once booted (`KUMO-BOOT-OK <hostname> vcpus=<n> mem_kb=<kB> … ip=<its first port's address|none>`),
from its flavor and ports, so what reads a real guest's console reads a fake one's the same way.
A guest with a port (or a config drive) also prints, before it, the image's line of what it
read from its metadata (`KUMO-MD source=… uuid=… hostname=… keys=…`), from what its host was
handed: the instance's uuid, hostname (and the DHCP domain, as the metadata says it) and key.
`break_host(host, reason)` makes every spawn on a host fail (a broken hypervisor, for the
health canaries' tests) and `misroute_metadata(host)` makes its guests read another instance's
metadata (a metadata service answering for the wrong source address), until `mend_host(host)`."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from typing import Any

from kumo.agent.console_tail import tail_lines
from kumo.agent.drivers.base import (
    DISK_COUNTERS,
    STATE_NAMES,
    CpuSample,
    DriverError,
    HostResources,
    Upload,
    VcpuCounters,
    nic_counters,
)
from kumo.compute.states import PowerState
from kumo.metadata.bundle import DHCP_DOMAIN

# Fake guests of every fake host in this process, so a migration can hand a guest over.
_GUESTS: dict[str, dict[str, int]] = {}
# The uuids of fake guests booted from a rescue image, and the NMIs each was sent.
RESCUED: set[str] = set()
NMIS: dict[str, int] = {}
# The port ids of the NICs hot-plugged into each fake guest (by instance uuid).
PLUGGED: dict[str, set[str]] = {}
_CONSOLE_LOGS: dict[str, str] = {}  # instance uuid → what its serial console printed
_BROKEN: dict[str, str] = {}  # host → why every spawn there fails
_MISROUTED: set[str] = set()  # hosts whose guests read another instance's metadata
_LOCK = threading.Lock()
# A fake guest's disk as its snapshots upload it: this many chunks of SNAPSHOT_CHUNK bytes.
SNAPSHOT_CHUNKS = 4
SNAPSHOT_CHUNK = 64 * 1024


class _EchoConsole(socketserver.ThreadingTCPServer):
    """A fake guest's serial console: greets with a line naming the guest, then echoes."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        threading.Thread(target=self.serve_forever, name=f"fake-console-{uuid[:8]}", daemon=True).start()


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        conn: socket.socket = self.request
        server = self.server
        assert isinstance(server, _EchoConsole)
        conn.sendall(f"kumo fake serial console of {server.uuid}\r\n".encode())
        while data := conn.recv(4096):
            conn.sendall(data)


# The consoles of fake guests, by instance uuid (closed with the guest).
_CONSOLES: dict[str, _EchoConsole] = {}


def _fake_disk(uuid: str) -> Iterator[bytes]:
    """A fake guest's disk, chunk by chunk (its snapshot's data)."""
    for index in range(SNAPSHOT_CHUNKS):
        line = f"fake disk of {uuid}, chunk {index}\n".encode()
        yield (line * (SNAPSHOT_CHUNK // len(line) + 1))[:SNAPSHOT_CHUNK]


# CPU the fake guests want, in cores (by instance uuid): set at spawn from the metadata key
# `fake_cpu_demand`, or by a test or benchmark at any time (a load trace). See cpu_stats().
DEMAND: dict[str, float] = {}
VCPUS: dict[str, int] = {}  # each fake guest's vCPUs (its flavor's), recorded at spawn
# Efficiency of the fake host's CPU scheduler: loss starts once demand passes this share of cores.
CPU_EFFICIENCY = 0.95


class _FakeCpu:
    """One fake guest's counters, advanced by the host's fair-share model."""

    def __init__(self, vcpus: int) -> None:
        self.vcpus = max(1, vcpus)
        self.time_ns = 0
        self.delay_ns = 0


def break_host(host: str, reason: str) -> None:
    with _LOCK:
        _BROKEN[host] = reason


def misroute_metadata(host: str) -> None:
    with _LOCK:
        _MISROUTED.add(host)


def mend_host(host: str) -> None:
    with _LOCK:
        _BROKEN.pop(host, None)
        _MISROUTED.discard(host)


def metadata_line(instance: dict[str, Any], misrouted: bool = False) -> str:
    """The test image's line of what it read from its metadata, as this guest would print it
    (none without a port or a config drive: it reads none); a misrouted guest reads another
    instance's."""
    if instance.get("ports"):
        source = "metadata"
    elif instance.get("config_drive"):
        source = "config-2"
    else:
        return ""
    uuid, hostname = str(instance["uuid"]), str(instance.get("hostname") or instance.get("name") or "")
    if misrouted:
        uuid, hostname = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, uuid)), "someone-else"
    keys = 1 if instance.get("key_data") else 0
    return f"KUMO-MD source={source} uuid={uuid} hostname={hostname}.{DHCP_DOMAIN} keys={keys}\n"


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


def boot_log(instance: dict[str, Any], misrouted: bool = False) -> str:
    """What a fake guest's serial console shows once booted: a kernel's and an init's first
    lines, the image's metadata line (metadata_line), then the test image's boot marker
    (boot_line) last, as a real guest's log reads."""
    name = instance.get("hostname") or instance.get("name") or "unknown"
    vcpus = int((instance.get("flavor") or {}).get("vcpus") or 1)
    return (
        "[    0.000000] Linux version 6.1.0-kumo (kumo fake guest)\n"
        "[    0.000000] Command line: console=ttyS0\n"
        f"[    0.104000] smp: Brought up 1 node, {vcpus} CPU{'s' if vcpus > 1 else ''}\n"
        "[    0.412000] Freeing unused kernel image memory\n"
        "[    0.420000] Run /init as init process\n"
        f"Starting kumo test guest {name}\n" + metadata_line(instance, misrouted) + boot_line(instance)
    )


class FakeDriver:
    def __init__(
        self,
        host: str,
        vcpus: int = 32,
        memory_mb: int = 131072,
        disk_gb: int = 2000,
        delay: float = 0.0,
        cpu_cores: float | None = None,
        **_: object,
    ) -> None:
        self.host = host
        self._resources = HostResources(int(vcpus), int(memory_mb), int(disk_gb), "fake")
        self.delay = float(delay)
        with _LOCK:
            self._guests = _GUESTS.setdefault(host, {})
        # The cores guests share (the CPU model of cpu_stats); the inventory's vCPUs by default.
        self.cpu_cores = float(cpu_cores) if cpu_cores is not None else float(vcpus)
        self.cpu_clock: Callable[[], float] = time.monotonic  # a benchmark may set its own
        self._cpu: dict[str, _FakeCpu] = {}
        self._cpu_at: float | None = None

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
        demand = instance.get("metadata", {}).get("fake_cpu_demand")
        with _LOCK:
            VCPUS[instance["uuid"]] = int((instance.get("flavor") or {}).get("vcpus") or 1)
            if demand is not None:
                try:
                    DEMAND[instance["uuid"]] = float(demand)
                except ValueError:
                    raise DriverError(f"fake_cpu_demand is not a number: {demand!r}") from None
            misrouted = self.host in _MISROUTED
            _CONSOLE_LOGS[instance["uuid"]] = boot_log(instance, misrouted)
        return self._set(instance["uuid"], PowerState.RUNNING)

    def destroy(self, instance: dict[str, Any]) -> None:
        self._work()
        with _LOCK:
            self._guests.pop(instance["uuid"], None)
            PLUGGED.pop(instance["uuid"], None)
            DEMAND.pop(instance["uuid"], None)
            VCPUS.pop(instance["uuid"], None)
            _CONSOLE_LOGS.pop(instance["uuid"], None)
            console = _CONSOLES.pop(instance["uuid"], None)
        if console is not None:
            console.shutdown()
            console.server_close()

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

    # -- day-2 actions: the guest's power state moves; `fake_day2_error` in the metadata fails them
    def _day2(self, instance: dict[str, Any], state: PowerState) -> int:
        self._require(instance["uuid"])
        self._work()
        if instance.get("metadata", {}).get("fake_day2_error"):
            raise DriverError(instance["metadata"]["fake_day2_error"])
        return self._set(instance["uuid"], state)

    def pause(self, instance: dict[str, Any]) -> int:
        return self._day2(instance, PowerState.PAUSED)

    def unpause(self, instance: dict[str, Any]) -> int:
        return self._day2(instance, PowerState.RUNNING)

    def suspend(self, instance: dict[str, Any]) -> int:
        return self._day2(instance, PowerState.SUSPENDED)

    def resume(self, instance: dict[str, Any]) -> int:
        return self._day2(instance, PowerState.RUNNING)

    def rescue(self, instance: dict[str, Any], image_ref: str, admin_pass: str | None) -> int:
        power = self._day2(instance, PowerState.RUNNING)
        with _LOCK:
            RESCUED.add(instance["uuid"])
        return power

    def unrescue(self, instance: dict[str, Any]) -> int:
        power = self._day2(instance, PowerState.RUNNING)
        with _LOCK:
            RESCUED.discard(instance["uuid"])
        return power

    def resize(self, instance: dict[str, Any]) -> int:
        self._require(instance["uuid"])
        if instance.get("metadata", {}).get("fake_day2_error"):
            raise DriverError(instance["metadata"]["fake_day2_error"])
        return self._guests[instance["uuid"]]

    def trigger_crash_dump(self, instance: dict[str, Any]) -> None:
        self._require(instance["uuid"])
        if self._guests[instance["uuid"]] != PowerState.RUNNING:
            raise DriverError(f"Instance {instance['uuid']} is not running: no NMI can be injected.")
        with _LOCK:
            NMIS[instance["uuid"]] = NMIS.get(instance["uuid"], 0) + 1

    def diagnostics(self, instance: dict[str, Any]) -> dict[str, Any]:
        self._require(instance["uuid"])
        flavor = instance.get("flavor") or {}
        power = self._guests[instance["uuid"]]
        vcpus, ports = int(flavor.get("vcpus") or 1), instance.get("ports") or []
        return {
            "state": STATE_NAMES.get(power, "pending"),
            # driver and hypervisor as Nova's fake driver reports them (the 2.48 schema allows
            # only real drivers' names); hypervisor_os as kumo's libvirt driver and Nova's
            # libvirt report it ("linux"; Nova's fake driver says "ubuntu")
            "driver": "libvirt",
            "hypervisor": "kvm",
            "hypervisor_os": "linux",
            "uptime": 0,
            "config_drive": bool(instance.get("config_drive")),
            "num_cpus": vcpus,
            "num_nics": len(ports),
            "num_disks": 1,
            "memory_details": {"maximum": int(flavor.get("ram") or 0), "used": 0},
            "cpu_details": [{"id": i, "time": 0, "utilisation": None} for i in range(vcpus)],
            "nic_details": [nic_counters(str(port.get("mac_address") or "")) for port in ports],
            "disk_details": [dict.fromkeys(DISK_COUNTERS, 0)],
        }

    def console_output(self, instance: dict[str, Any], lines: int | None = None) -> str:
        self._require(instance["uuid"])
        return tail_lines(_CONSOLE_LOGS.get(instance["uuid"], ""), lines)

    def power_states(self) -> dict[str, int]:
        with _LOCK:
            return dict(self._guests)

    def snapshot(self, instance: dict[str, Any], upload: Upload) -> int:
        """Uploads the fake disk (SNAPSHOT_CHUNKS chunks); the metadata's `fake_snapshot_error`
        fails it."""
        self._require(instance["uuid"])
        self._work()
        if instance.get("metadata", {}).get("fake_snapshot_error"):
            raise DriverError(instance["metadata"]["fake_snapshot_error"])
        upload(_fake_disk(instance["uuid"]))
        return self._guests[instance["uuid"]]

    def serial_console(self, instance: dict[str, Any]) -> dict[str, Any]:
        uuid = instance["uuid"]
        self._require(uuid)
        with _LOCK:
            console = _CONSOLES.get(uuid)
            if console is None:
                console = _CONSOLES[uuid] = _EchoConsole(uuid)
        return {"host": "127.0.0.1", "port": console.server_address[1]}

    def cpu_stats(self) -> CpuSample:
        """Counters from a fair-share model: over the time since the last call, running guests
        want min(DEMAND, vcpus) cores each; when the total D passes CPU_EFFICIENCY x cores, each
        loses the share f = 1 - CPU_EFFICIENCY x cores / D of what it wanted (delay), and runs
        the rest. A guest's counters start at zero on this host (as a new QEMU process's do)."""
        now = self.cpu_clock()
        with _LOCK:
            running = {u for u, state in self._guests.items() if state == PowerState.RUNNING}
            wants = {u: DEMAND.get(u, 0.0) for u in running}
        for uuid in list(self._cpu):
            if uuid not in running:
                del self._cpu[uuid]
        for uuid in running:
            if uuid not in self._cpu:
                self._cpu[uuid] = _FakeCpu(self._vcpus_of(uuid))
        if self._cpu_at is not None and now > self._cpu_at:
            seconds = now - self._cpu_at
            demand = {u: max(0.0, min(float(self._cpu[u].vcpus), wants[u])) for u in running}
            total = sum(demand.values())
            cap = CPU_EFFICIENCY * self.cpu_cores
            lost = 0.0 if total <= cap else 1.0 - cap / total
            for uuid, wanted in demand.items():
                cpu = self._cpu[uuid]
                cpu.time_ns += int(wanted * (1.0 - lost) * seconds * 1e9)
                cpu.delay_ns += int(wanted * lost * seconds * 1e9)
        self._cpu_at = now
        guests = {u: VcpuCounters(c.vcpus, c.time_ns, c.delay_ns) for u, c in self._cpu.items()}
        return CpuSample(at=now, cores=self.cpu_cores, load1=0.0, guests=guests)

    def _vcpus_of(self, uuid: str) -> int:
        return VCPUS.get(uuid, 1)
