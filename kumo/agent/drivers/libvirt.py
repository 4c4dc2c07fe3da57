"""The libvirt/QEMU driver: real guests.

A guest is a persistent libvirt domain named `kumo-<uuid>` whose UUID is the instance's, with
kumo's instance data in its metadata (kumo.agent.libvirt.domain). Its root disk is a qcow2
overlay in the instance's directory over a base image from the host image cache
(kumo.agent.imagecache); images with `kernel_id`/`ramdisk_id` properties boot their kernel
directly (also from the cache). The serial console is appended to `console.log` in the
instance's directory by virtlogd.

Networking: the instance spec's `ports` (the agents' port contract) become one virtio NIC each
on the network's bridge, which kumo.agent.network.links makes exist before the domain is defined (the
data plane owns the rest: namespace, DHCP, firewall). A config drive is an ISO the
`config_drive` hook returns for the instance (by default `<instance dir>/config.iso`, built from
the instance's metadata bundle when the spec's `config_drive` is truthy:
kumo.agent.libvirt.config_drive); a path outside the instance's directory is refused.

Power state reaches the API two ways, neither spawning anything per instance: libvirt's
lifecycle events (a guest that powers itself off is reported within a fraction of a second)
and the agent's periodic `power_states()`, one libvirt call for all domains. Guests with an
operation in flight are left out of both: the operation's own result is the truth for them.

Every operation is idempotent (an agent restarted mid-task runs it again), and libvirt's
errors are translated into DriverError here, at the boundary.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx

from kumo.agent.drivers.base import (
    STATE_NAMES,
    CpuSample,
    DriverError,
    HostResources,
    Upload,
    VcpuCounters,
    nic_counters,
)
from kumo.agent.imagecache import HttpImageSource, ImageCache
from kumo.agent.libvirt import console, disks
from kumo.agent.libvirt.config_drive import ApiConfigDrive, contained
from kumo.agent.libvirt.connection import Connection, require_libvirt
from kumo.agent.libvirt.domain import (
    NAME_PREFIX,
    VIRT_TYPES,
    GuestConfig,
    Nic,
    PortError,
    cpu_set_text,
    disk_targets,
    domain_xml,
    interface_devices,
    interface_macs,
    interface_xml,
    nics_of,
    parse_cpu_set,
    power_state,
    serial_pty_of,
    with_sizing,
)
from kumo.agent.network.links import ensure_named_bridge
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.compute.states import PowerState
from kumo.config import get_settings

log = logging.getLogger("kumo.agent.libvirt")
GiB = 1024**3
# What the driver calls before defining a guest, for each port: (bridge name, MTU) -> None.
EnsureBridge = Callable[[str, int], None]


class ConfigDriveSource(Protocol):
    """Where the config drive (an ISO9660 image labelled config-2) of an instance is, made
    in the instance's `directory` when it must be; None: the instance has none."""

    def __call__(self, instance: dict[str, Any], directory: Path) -> Path | None: ...


def unusable_reason(uri: str = "qemu:///system", virt_type: str = "qemu") -> str | None:
    """Why this machine cannot run guests through libvirt, or None when it can (for `kumo up`
    to choose between this driver and the fake one, and say why)."""
    if shutil.which("qemu-img") is None:
        return "qemu-img is not installed (scripts/install-libvirt)"
    try:
        lv = require_libvirt()
    except DriverError as exc:
        return str(exc)
    try:
        conn = lv.open(uri)
    except lv.libvirtError as exc:
        return f"cannot connect to libvirt at {uri}: {exc.get_error_message()}"
    try:
        conn.getDomainCapabilities(None, "x86_64", None, virt_type, 0)
    except lv.libvirtError as exc:
        return f"libvirt at {uri} cannot run {virt_type} guests: {exc.get_error_message()}"
    finally:
        conn.close()
    return None


def vcpu_counters(values: dict[str, Any]) -> VcpuCounters | None:
    """One domain's VIR_DOMAIN_STATS_VCPU values summed over its vCPUs; None when it has none
    (shut off)."""
    count = int(values.get("vcpu.current", 0) or 0)
    if count <= 0:
        return None
    time_ns = sum(int(values.get(f"vcpu.{n}.time", 0) or 0) for n in range(count))
    delay_ns = sum(int(values.get(f"vcpu.{n}.delay", 0) or 0) for n in range(count))
    return VcpuCounters(count, time_ns, delay_ns)


def _check_host_cpus(shared: Sequence[int], cpu_map: tuple[int, list[bool], int]) -> None:
    """cpu_shared_set against the host's online CPUs (libvirt's getCPUMap: their count, the
    online flags, how many are online): DriverError naming the CPUs it lacks."""
    _count, online_flags, _online = cpu_map
    online = [cpu for cpu, on in enumerate(online_flags) if on]
    missing = sorted(set(shared) - set(online))
    if missing:
        raise DriverError(
            f"cpu_shared_set: host CPUs {cpu_set_text(missing)} do not exist or are offline "
            f"(this host's online CPUs: {cpu_set_text(online) or 'none'})"
        )


class LibvirtDriver:
    # How long detach_interface waits for a running guest to release a NIC (PCI unplug).
    detach_timeout: float = 30.0

    def __init__(
        self,
        host: str,
        api_url: str = "http://127.0.0.1:8780",
        token: str = "",
        uri: str = "qemu:///system",
        virt_type: str = "qemu",
        state_dir: Path | str | None = None,
        shutdown_timeout: float = 60.0,
        image_cache_max_age: float = 24 * 3600.0,
        cache_sweep_interval: float = 600.0,
        host_ip: str = "127.0.0.1",
        machine: str | None = None,
        kernel_cmdline: str = "console=ttyS0",
        migration_uri: str | None = None,
        migration_address: str | None = None,
        migration_bandwidth: int = 0,
        migration_max_downtime_ms: int = 500,
        bridges: EnsureBridge = ensure_named_bridge,
        config_drive: ConfigDriveSource | None = None,
        cpu_cores: float | None = None,
        cpu_shared_set: str | None = None,
        **_: object,
    ) -> None:
        self.lv = require_libvirt()
        if virt_type not in VIRT_TYPES:
            raise DriverError(f"virt_type must be one of {', '.join(VIRT_TYPES)}, not {virt_type!r}")
        if state_dir is None:
            state_dir = get_settings().state_dir / "libvirt" / host
        self.host = host
        self.virt_type = virt_type
        self.shutdown_timeout = float(shutdown_timeout)
        self.host_ip = host_ip
        self.machine = machine
        self.kernel_cmdline = kernel_cmdline
        self.ensure_bridge = bridges
        # How other hosts' libvirtd reach this one (peer to peer), and where QEMU streams go.
        self.migration_uri = migration_uri or (uri if "+tcp" in uri else f"qemu+tcp://{host_ip}/system")
        self.migration_address = migration_address or host_ip
        self.migration_bandwidth = int(migration_bandwidth)  # MiB/s, 0: unlimited
        self.migration_max_downtime_ms = int(migration_max_downtime_ms)
        # Nova's [compute] cpu_shared_set: the host CPUs every guest's threads are pinned to
        # (<vcpu cpuset=…>), and then the cores guests share for the CPU steal signal, unless
        # cpu_cores says otherwise; without it, any CPU and the host's CPU count.
        try:
            shared = parse_cpu_set(cpu_shared_set) if cpu_shared_set else ()
        except ValueError as exc:
            raise DriverError(f"cpu_shared_set: {exc}") from None
        self.cpuset = cpu_set_text(shared) if shared else None
        default_cores = len(shared) if shared else (os.cpu_count() or 1)
        self.cpu_cores = float(cpu_cores) if cpu_cores is not None else float(default_cores)
        self.root = Path(state_dir)
        self.instances_dir = self.root / "instances"
        self.instances_dir.mkdir(parents=True, exist_ok=True)
        self.client = httpx.Client(
            base_url=api_url.rstrip("/") + "/internal/v1",
            headers={AGENT_TOKEN_HEADER: token},
            timeout=httpx.Timeout(60, connect=5),
        )
        self.config_drive: ConfigDriveSource = config_drive or ApiConfigDrive(self.client)
        source = HttpImageSource(self.client)
        self.cache = ImageCache(self.root / "images", source, float(image_cache_max_age))
        self._busy: dict[str, int] = {}
        self._busy_lock = threading.Lock()
        # Serial console bridges (TCP to the guest's pty), by instance uuid; closed with it.
        self._consoles: dict[str, console.PtyBridge] = {}
        self._consoles_lock = threading.Lock()
        self._events: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self.conn = Connection(uri, self._events.put)
        self.conn.get()  # fail now, not on the first boot, when libvirtd is unusable
        if shared:
            try:
                _check_host_cpus(shared, self.conn.get().getCPUMap())
            except DriverError:
                self.conn.close()
                self.client.close()
                raise
        self.cache.evict(max_age=float("inf"))  # only sweeps partial downloads a crash left
        self._threads = [
            threading.Thread(target=self._report_events, name=f"libvirt-events-{host}", daemon=True),
            threading.Thread(
                target=self._sweep_cache,
                args=(float(cache_sweep_interval),),
                name=f"image-cache-{host}",
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._stop.set()
        self._events.put("")
        for thread in self._threads:
            thread.join(timeout=2)
        self.conn.close()
        self.client.close()

    # -- plumbing ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _operation(self, uuid: str) -> Iterator[None]:
        """Mark the guest busy (left out of power reports) and translate libvirt's errors."""
        with self._busy_lock:
            self._busy[uuid] = self._busy.get(uuid, 0) + 1
        try:
            yield
        except self.lv.libvirtError as exc:
            raise DriverError(f"libvirt: {exc.get_error_message()}") from None
        finally:
            with self._busy_lock:
                self._busy[uuid] -= 1
                if not self._busy[uuid]:
                    del self._busy[uuid]

    def _is_busy(self, uuid: str) -> bool:
        with self._busy_lock:
            return uuid in self._busy

    def _lookup(self, uuid: str) -> Any:
        try:
            return self.conn.get().lookupByUUIDString(uuid)
        except self.lv.libvirtError as exc:
            if exc.get_error_code() == self.lv.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def _require(self, uuid: str) -> Any:
        dom = self._lookup(uuid)
        if dom is None:
            raise DriverError(f"Instance {uuid} could not be found on host {self.host}.")
        return dom

    def _power(self, dom: Any) -> int:
        state, reason = dom.state()
        if not dom.isActive() and dom.hasManagedSaveImage(0):
            return int(PowerState.SUSPENDED)  # whatever reason libvirt kept for its shutoff
        return int(power_state(state, reason))

    def instance_dir(self, uuid: str) -> Path:
        return self.instances_dir / uuid

    def console_log(self, uuid: str) -> Path:
        return self.instance_dir(uuid) / "console.log"

    # -- inventory -------------------------------------------------------------------------
    def resources(self) -> HostResources:
        try:
            _model, memory_mb, cpus, *_rest = self.conn.get().getInfo()
        except self.lv.libvirtError as exc:
            raise DriverError(f"libvirt: {exc.get_error_message()}") from None
        disk_gb = shutil.disk_usage(self.instances_dir).total // GiB
        return HostResources(int(cpus), int(memory_mb), int(disk_gb), "QEMU", self.host_ip)

    # -- building a guest ------------------------------------------------------------------
    def _guest_config(
        self,
        instance: dict[str, Any],
        image_ref: str,
        *,
        disk_name: str = "disk",
        keep_disk: bool = False,
        extra_disks: tuple[Path, ...] = (),
    ) -> GuestConfig:
        """The guest's definition; its root disk `disk_name` made anew over `image_ref` unless
        `keep_disk` (the guest's own disk, kept: grown to the flavor's size)."""
        uuid = instance["uuid"]
        flavor = instance.get("flavor") or {}
        directory = self.instance_dir(uuid)
        directory.mkdir(parents=True, exist_ok=True)
        # What can refuse the spec comes first: no image is downloaded for a guest never defined.
        try:
            nics = nics_of(instance.get("ports"))
        except PortError as exc:
            raise DriverError(f"Instance {uuid}: {exc}") from None
        drive = contained(uuid, self.config_drive(instance, directory), directory)
        root = self.cache.acquire(image_ref, uuid)
        props = root.meta.properties
        kernel = self.cache.acquire(str(props["kernel_id"]), uuid).path if props.get("kernel_id") else None
        initrd = self.cache.acquire(str(props["ramdisk_id"]), uuid).path if props.get("ramdisk_id") else None
        for nic in nics:  # libvirt will not start a guest whose bridge is missing
            self.ensure_bridge(nic.bridge, nic.mtu)
        disk = directory / disk_name
        if keep_disk and disk.exists():
            disks.grow(disk, int(flavor.get("disk") or 0))
        else:
            disks.create_overlay(
                root.path, root.meta.disk_format or "raw", disk, int(flavor.get("disk") or 0)
            )
        return GuestConfig(
            uuid=uuid,
            title=str(instance.get("name") or uuid),
            hostname=str(instance.get("hostname") or "server"),
            vcpus=int(flavor.get("vcpus") or 1),
            memory_mib=int(flavor.get("ram") or 512),
            disk=disk,
            console_log=self.console_log(uuid),
            virt_type=self.virt_type,
            kernel=kernel,
            initrd=initrd,
            cmdline=str(props.get("os_command_line") or self.kernel_cmdline) if kernel else None,
            machine=self.machine,
            metadata={
                "name": str(instance.get("name") or ""),
                "hostname": str(instance.get("hostname") or ""),
                "project": str(instance.get("project_id") or ""),
                "image": image_ref,
                "host": self.host,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            flavor={k: str(flavor[k]) for k in ("name", "vcpus", "ram", "disk") if k in flavor},
            nics=nics,
            config_drive=drive,
            extra_disks=extra_disks,
            cpuset=self.cpuset,
        )

    def _define(self, instance: dict[str, Any], image_ref: str) -> Any:
        xml = domain_xml(self._guest_config(instance, image_ref))
        return self.conn.get().defineXML(xml)

    def _remove_domain(self, dom: Any) -> None:
        if dom.isActive():
            dom.destroy()
        flags = self.lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | self.lv.VIR_DOMAIN_UNDEFINE_NVRAM
        dom.undefineFlags(flags)

    def _shutdown(self, dom: Any, timeout: float) -> bool:
        """Ask the guest to power off (ACPI); True when it did within `timeout`."""
        if not dom.isActive():
            return True
        try:
            dom.shutdown()
        except self.lv.libvirtError:
            return not dom.isActive()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not dom.isActive():
                return True
            time.sleep(0.1)
        return not dom.isActive()

    # -- lifecycle -------------------------------------------------------------------------
    def spawn(self, instance: dict[str, Any]) -> int:
        uuid = instance["uuid"]
        with self._operation(uuid):
            dom = self._lookup(uuid) or self._define(instance, instance["image_ref"])
            if not dom.isActive():
                dom.create()
            return self._power(dom)

    def destroy(self, instance: dict[str, Any]) -> None:
        uuid = instance["uuid"]
        with self._operation(uuid):
            dom = self._lookup(uuid)
            if dom is not None:
                self._remove_domain(dom)
            self._close_console(uuid)
            shutil.rmtree(self.instance_dir(uuid), ignore_errors=True)
            self.cache.release_owner(uuid)

    def power_on(self, instance: dict[str, Any]) -> int:
        with self._operation(instance["uuid"]):
            dom = self._require(instance["uuid"])
            if not dom.isActive():
                dom.create()
            return self._power(dom)

    def power_off(self, instance: dict[str, Any]) -> int:
        """A clean shutdown, then a hard one when the guest ignores it for `shutdown_timeout`.
        A paused guest (it cannot answer ACPI) is destroyed at once; a suspended one's managed
        save image is discarded, so that powered off it boots afresh (shelve of a paused or
        suspended server, as Nova's power_off and its hard reboot on power on)."""
        with self._operation(instance["uuid"]):
            dom = self._require(instance["uuid"])
            if dom.isActive() and dom.state()[0] == self.lv.VIR_DOMAIN_PAUSED:
                dom.destroy()
            elif not self._shutdown(dom, self.shutdown_timeout):
                log.info("instance %s ignored the shutdown request; destroying it", instance["uuid"])
                dom.destroy()
            if not dom.isActive() and dom.hasManagedSaveImage(0):
                dom.managedSaveRemove(0)
            return self._power(dom)

    def reboot(self, instance: dict[str, Any], hard: bool) -> int:
        """Soft: a clean shutdown and boot, falling back to hard when the guest does not stop.
        Hard: power cycle."""
        with self._operation(instance["uuid"]):
            dom = self._require(instance["uuid"])
            if not hard and not self._shutdown(dom, self.shutdown_timeout):
                log.info("instance %s ignored the soft reboot; rebooting it hard", instance["uuid"])
            if dom.isActive():
                dom.destroy()
            dom.create()
            return self._power(dom)

    def rebuild(self, instance: dict[str, Any], image_ref: str) -> int:
        """The same guest (uuid, console log) on a fresh root disk from `image_ref`."""
        uuid = instance["uuid"]
        with self._operation(uuid):
            dom = self._lookup(uuid)
            if dom is not None:
                self._remove_domain(dom)
            (self.instance_dir(uuid) / "disk").unlink(missing_ok=True)
            self.cache.release_owner(uuid)
            dom = self._define(instance, image_ref)
            dom.create()
            return self._power(dom)

    # -- day-2 actions -----------------------------------------------------------------------
    def pause(self, instance: dict[str, Any]) -> int:
        with self._operation(instance["uuid"]):
            dom = self._require(instance["uuid"])
            if self._power(dom) != PowerState.PAUSED:
                dom.suspend()  # libvirt's "suspend" freezes the vCPUs: Nova's pause
            return self._power(dom)

    def unpause(self, instance: dict[str, Any]) -> int:
        with self._operation(instance["uuid"]):
            dom = self._require(instance["uuid"])
            if self._power(dom) == PowerState.PAUSED:
                dom.resume()
            return self._power(dom)

    def suspend(self, instance: dict[str, Any]) -> int:
        """libvirt's managed save: the memory goes to a file libvirt keeps with the domain, the
        guest stops; the next start restores it (resume)."""
        with self._operation(instance["uuid"]):
            dom = self._require(instance["uuid"])
            if dom.isActive():
                dom.managedSave(0)
            return self._power(dom)

    def resume(self, instance: dict[str, Any]) -> int:
        with self._operation(instance["uuid"]):
            dom = self._require(instance["uuid"])
            if not dom.isActive():
                dom.create()  # restores the managed save image when there is one
            return self._power(dom)

    def rescue(self, instance: dict[str, Any], image_ref: str, admin_pass: str | None) -> int:
        """The guest is powered off and defined again booting a fresh disk of `image_ref`
        (`disk.rescue`), its own disk second (vdb); unrescue defines it back. The rescue
        password is not injected (kumo's guests take no password from the hypervisor)."""
        uuid = instance["uuid"]
        with self._operation(uuid):
            dom = self._require(uuid)
            if dom.isActive():
                dom.destroy()
            own = self.instance_dir(uuid) / "disk"
            cfg = self._guest_config(instance, image_ref, disk_name="disk.rescue", extra_disks=(own,))
            dom = self.conn.get().defineXML(domain_xml(cfg))
            dom.create()
            return self._power(dom)

    def unrescue(self, instance: dict[str, Any]) -> int:
        uuid = instance["uuid"]
        with self._operation(uuid):
            dom = self._require(uuid)
            if dom.isActive():
                dom.destroy()
            cfg = self._guest_config(instance, instance["image_ref"], keep_disk=True)
            dom = self.conn.get().defineXML(domain_xml(cfg))
            (self.instance_dir(uuid) / "disk.rescue").unlink(missing_ok=True)
            dom.create()
            return self._power(dom)

    def resize(self, instance: dict[str, Any]) -> int:
        """On this host: shut the guest down, define it with the spec's flavor (its own disk
        kept, grown to the flavor's), and boot it again if it was running."""
        uuid = instance["uuid"]
        with self._operation(uuid):
            dom = self._require(uuid)
            was_running = bool(dom.isActive())
            if was_running and not self._shutdown(dom, self.shutdown_timeout):
                dom.destroy()
            cfg = self._guest_config(instance, instance["image_ref"], keep_disk=True)
            dom = self.conn.get().defineXML(domain_xml(cfg))
            if was_running:
                dom.create()
            return self._power(dom)

    def trigger_crash_dump(self, instance: dict[str, Any]) -> None:
        with self._operation(instance["uuid"]):
            dom = self._require(instance["uuid"])
            if not dom.isActive():
                raise DriverError(f"Instance {instance['uuid']} is not running: no NMI can be injected.")
            dom.injectNMI(0)

    def diagnostics(self, instance: dict[str, Any]) -> dict[str, Any]:
        """From one dom.info() and the block and interface counters of its devices."""
        uuid = instance["uuid"]
        with self._operation(uuid):
            dom = self._require(uuid)
            state, max_kib, used_kib, vcpus, cpu_ns = dom.info()
            active = bool(dom.isActive())
            xml = dom.XMLDesc(0)
            disks_found = disk_targets(xml)
            nics = interface_devices(xml)
            disk_details = []
            for target in disks_found:
                rd_req, rd_b, wr_req, wr_b, errs = dom.blockStats(target) if active else (0,) * 5
                disk_details.append(
                    {
                        "read_bytes": rd_b,
                        "read_requests": rd_req,
                        "write_bytes": wr_b,
                        "write_requests": wr_req,
                        "errors_count": max(errs, 0),
                    }
                )
            nic_details = [
                nic_counters(mac, tuple(dom.interfaceStats(tap)) if active else (0,) * 8) for mac, tap in nics
            ]
            return {
                "state": STATE_NAMES.get(int(power_state(state, dom.state()[1])), "pending"),
                "driver": "libvirt",
                "hypervisor": self.virt_type,
                "hypervisor_os": "linux",
                "uptime": None,
                "config_drive": bool(instance.get("config_drive")),
                "num_cpus": int(vcpus),
                "num_nics": len(nic_details),
                "num_disks": len(disk_details),
                "memory_details": {"maximum": int(max_kib) // 1024, "used": int(used_kib) // 1024},
                "cpu_details": [{"id": None, "time": int(cpu_ns), "utilisation": None}],
                "nic_details": nic_details,
                "disk_details": disk_details,
            }

    # -- migration -------------------------------------------------------------------------
    # -- interfaces (os-interface) -----------------------------------------------------------
    def _nic(self, uuid: str, port: dict[str, Any]) -> Nic:
        try:
            return Nic.from_port(port)
        except PortError as exc:
            raise DriverError(f"Instance {uuid}: {exc}") from None

    def _plugged(self, dom: Any, mac: str) -> tuple[bool, bool]:
        """Whether the NIC with `mac` is in the guest's definition, and in the running guest."""
        defined = mac in interface_macs(dom.XMLDesc(self.lv.VIR_DOMAIN_XML_INACTIVE))
        live = dom.isActive() and mac in interface_macs(dom.XMLDesc(0))
        return defined, bool(live)

    def attach_interface(self, instance: dict[str, Any], port: dict[str, Any]) -> None:
        uuid = instance["uuid"]
        nic = self._nic(uuid, port)
        with self._operation(uuid):
            dom = self._require(uuid)
            defined, live = self._plugged(dom, nic.mac)
            flags = 0 if defined else int(self.lv.VIR_DOMAIN_AFFECT_CONFIG)
            if dom.isActive() and not live:
                flags |= int(self.lv.VIR_DOMAIN_AFFECT_LIVE)
            if not flags:
                return
            self.ensure_bridge(nic.bridge, nic.mtu)  # libvirt plugs the tap into it
            dom.attachDeviceFlags(interface_xml(nic), flags)

    def detach_interface(self, instance: dict[str, Any], port: dict[str, Any]) -> None:
        """A running guest is asked to let the device go (PCI unplug) and watched until it has:
        `detach_timeout` seconds, then DriverError (the NIC stays, in use)."""
        uuid = instance["uuid"]
        nic = self._nic(uuid, port)
        with self._operation(uuid):
            dom = self._lookup(uuid)
            if dom is None:
                return
            defined, live = self._plugged(dom, nic.mac)
            if live:
                dom.detachDeviceFlags(interface_xml(nic), int(self.lv.VIR_DOMAIN_AFFECT_LIVE))
                deadline = time.monotonic() + self.detach_timeout
                while self._plugged(dom, nic.mac)[1]:
                    if time.monotonic() > deadline:
                        raise DriverError(
                            f"Instance {uuid}: the guest did not release the NIC of port {port.get('id')} "
                            f"within {self.detach_timeout:g} s"
                        )
                    time.sleep(0.2)
            if defined:
                dom.detachDeviceFlags(interface_xml(nic), int(self.lv.VIR_DOMAIN_AFFECT_CONFIG))

    def prepare_migration(self, instance: dict[str, Any]) -> dict[str, Any]:
        """Destination side, before a move: the guest's images cached here, its overlay created
        over them, and the domain XML it must have here. The source passes this to migrate()."""
        uuid = instance["uuid"]
        with self._operation(uuid):
            if self._lookup(uuid) is not None:
                raise DriverError(f"Instance {uuid} already exists on host {self.host}.")
            xml = domain_xml(self._guest_config(instance, instance["image_ref"]))
        return {"host": self.host, "uri": self.migration_uri, "address": self.migration_address, "xml": xml}

    def abort_migration(self, instance: dict[str, Any]) -> None:
        """Destination side, after a failed move: drop what prepare_migration made. A guest that
        did arrive is left alone."""
        uuid = instance["uuid"]
        with self._operation(uuid):
            if self._lookup(uuid) is None:
                shutil.rmtree(self.instance_dir(uuid), ignore_errors=True)
                self.cache.release_owner(uuid)

    def migrate(
        self, instance: dict[str, Any], dest: str, live: bool, target: dict[str, Any] | None = None
    ) -> int:
        """Source side: move the guest with its disk to the prepared destination `target`.

        Live: libvirt peer-to-peer live migration; the top of the disk (the overlay) is mirrored
        over the QEMU stream, the base already waits in the destination's cache; bandwidth and
        maximum downtime as configured. Cold: the guest is shut down, moved without ever
        running (started paused for the disk copy), and booted there if it was running.
        On failure the guest stays here as it was and DriverError says why."""
        uuid = instance["uuid"]
        if not target:
            raise DriverError(f"Cannot migrate instance {uuid} to {dest}: the destination was not prepared.")
        lv = self.lv
        with self._operation(uuid):
            dom = self._require(uuid)
            was_running = bool(dom.isActive())
            if live and not was_running:
                raise DriverError(f"Cannot live-migrate instance {uuid}: it is not running.")
            dest_xml = target["xml"]
            if not live:
                if was_running and not self._shutdown(dom, self.shutdown_timeout):
                    dom.destroy()
                # A resize: the disk is grown here to the size the destination's has; the guest
                # crosses with the sizing it runs with, and boots there with the new flavor's.
                flavor = instance.get("flavor") or {}
                disks.grow(self.instance_dir(uuid) / "disk", int(flavor.get("disk") or 0))
                dom.createWithFlags(lv.VIR_DOMAIN_START_PAUSED)
                _state, max_kib, _used, vcpus, _cpu = dom.info()
                dest_xml = with_sizing(target["xml"], int(max_kib) // 1024, int(vcpus))
            flags = (
                lv.VIR_MIGRATE_LIVE
                | lv.VIR_MIGRATE_PEER2PEER
                | lv.VIR_MIGRATE_PERSIST_DEST
                | lv.VIR_MIGRATE_UNDEFINE_SOURCE
                | lv.VIR_MIGRATE_NON_SHARED_INC
            )
            if not live:
                flags |= lv.VIR_MIGRATE_PAUSED
            params: dict[str, Any] = {
                lv.VIR_MIGRATE_PARAM_DEST_XML: dest_xml,
                lv.VIR_MIGRATE_PARAM_PERSIST_XML: target["xml"],  # not the source's paths
                lv.VIR_MIGRATE_PARAM_URI: f"tcp://{target['address']}",
                lv.VIR_MIGRATE_PARAM_DISKS_URI: f"tcp://{target['address']}",
            }
            if self.migration_bandwidth:
                params[lv.VIR_MIGRATE_PARAM_BANDWIDTH] = self.migration_bandwidth
            try:
                if live:
                    dom.migrateSetMaxDowntime(self.migration_max_downtime_ms, 0)
                dom.migrateToURI3(target["uri"], params, flags)
            except lv.libvirtError as exc:
                if not live:  # back as it was: stopped, or booted again here
                    if dom.isActive():
                        dom.destroy()
                    if was_running:
                        dom.create()
                why = exc.get_error_message()
                raise DriverError(f"Migration of instance {uuid} to {dest} failed: {why}") from None
            # The guest is the destination's now: nothing of it stays here.
            shutil.rmtree(self.instance_dir(uuid), ignore_errors=True)
            self.cache.release_owner(uuid)
        return self._settle_arrival(uuid, target["uri"], boot=not live and was_running, paused=not live)

    def _settle_arrival(self, uuid: str, uri: str, boot: bool, paused: bool) -> int:
        """After a cold move the guest waits paused at the destination: stop it there, and boot
        it when it was running before. Returns its power state there."""
        conn = self.lv.open(uri)
        try:
            dom = conn.lookupByUUIDString(uuid)
            if paused and dom.isActive():
                dom.destroy()
            if boot:
                dom.create()
            return self._power(dom)
        except self.lv.libvirtError as exc:
            raise DriverError(
                f"Instance {uuid} moved but could not be started there: {exc.get_error_message()}"
            ) from None
        finally:
            conn.close()

    def console_output(self, instance: dict[str, Any], lines: int | None = None) -> str:
        if not self.instance_dir(instance["uuid"]).is_dir():
            raise DriverError(f"Instance {instance['uuid']} could not be found on host {self.host}.")
        return console.tail(self.console_log(instance["uuid"]), lines)

    # -- snapshot and serial console -------------------------------------------------------
    def snapshot(self, instance: dict[str, Any], upload: Upload) -> int:
        """A running guest is paused (qemu drains and flushes its disks) while its root disk is
        flattened to a standalone qcow2 next to it, and resumed before the upload; a shut-off
        guest's disk is read as it is. The copy is streamed through `upload` in chunks, then
        deleted."""
        uuid = instance["uuid"]
        with self._operation(uuid):
            dom = self._require(uuid)
            paused_here = dom.isActive() and dom.state()[0] != self.lv.VIR_DOMAIN_PAUSED
            with tempfile.TemporaryDirectory(prefix=".snapshot-", dir=self.instance_dir(uuid)) as tmp:
                copy = Path(tmp) / "snapshot.qcow2"
                if paused_here:
                    dom.suspend()
                try:
                    disks.flatten(self.instance_dir(uuid) / "disk", copy)
                finally:
                    if paused_here:
                        dom.resume()
                upload(_file_chunks(copy))
            return self._power(dom)

    def serial_console(self, instance: dict[str, Any]) -> dict[str, Any]:
        """A TCP bridge (on the host's address) to the running guest's pty serial console."""
        uuid = instance["uuid"]
        with self._operation(uuid):
            dom = self._require(uuid)
            pty = serial_pty_of(dom.XMLDesc(0)) if dom.isActive() else None
        if not pty:
            raise DriverError(f"Instance {uuid} has no serial console now (is it running?).")
        with self._consoles_lock:
            bridge = self._consoles.get(uuid)
            if bridge is not None and bridge.pty_path != pty:  # rebooted: a new pty
                bridge.close()
                bridge = None
            if bridge is None:
                bridge = self._consoles[uuid] = console.PtyBridge(self.host_ip, pty)
        return {"host": self.host_ip, "port": bridge.port}

    def _close_console(self, uuid: str) -> None:
        with self._consoles_lock:
            bridge = self._consoles.pop(uuid, None)
        if bridge is not None:
            bridge.close()

    def image_cache_report(self) -> list[dict[str, Any]]:
        return self.cache.report()

    # -- power state ---------------------------------------------------------------------
    def power_states(self) -> dict[str, int]:
        """Every kumo guest on this host, in one libvirt call (no process, no per-guest call)."""
        try:
            stats = self.conn.get().getAllDomainStats(self.lv.VIR_DOMAIN_STATS_STATE)
        except self.lv.libvirtError as exc:
            raise DriverError(f"libvirt: {exc.get_error_message()}") from None
        states = {}
        for dom, values in stats:
            if dom.name().startswith(NAME_PREFIX):
                uuid = dom.UUIDString()
                if not self._is_busy(uuid):
                    state, reason = int(values.get("state.state", 0)), int(values.get("state.reason", 0))
                    states[uuid] = int(power_state(state, reason))
        return states

    def cpu_stats(self) -> CpuSample:
        """Every kumo guest's vcpu.N.time and vcpu.N.delay (ns), summed, in one libvirt call
        (getAllDomainStats with VIR_DOMAIN_STATS_VCPU). A libvirt without vcpu.N.delay reports 0.
        Guests with an operation in flight are left out (a migration resets the counters)."""
        try:
            stats = self.conn.get().getAllDomainStats(self.lv.VIR_DOMAIN_STATS_VCPU)
        except self.lv.libvirtError as exc:
            raise DriverError(f"libvirt: {exc.get_error_message()}") from None
        at = time.monotonic()
        guests = {}
        for dom, values in stats:
            if dom.name().startswith(NAME_PREFIX) and not self._is_busy(dom.UUIDString()):
                counters = vcpu_counters(values)
                if counters is not None:
                    guests[dom.UUIDString()] = counters
        return CpuSample(at=at, cores=float(self.cpu_cores), load1=os.getloadavg()[0], guests=guests)

    def _report_events(self) -> None:
        """Push the current power state of guests libvirt told us about (batched over 0.2 s)."""
        while not self._stop.is_set():
            uuids = {self._events.get()}
            time.sleep(0.2)
            while True:
                try:
                    uuids.add(self._events.get_nowait())
                except queue.Empty:
                    break
            states: dict[str, int] = {}
            for uuid in uuids - {""}:
                if self._is_busy(uuid):
                    continue
                try:
                    dom = self._lookup(uuid)
                    states[uuid] = self._power(dom) if dom is not None else int(PowerState.NOSTATE)
                except (self.lv.libvirtError, DriverError):
                    continue
            states = {u: s for u, s in states.items() if s != PowerState.NOSTATE}
            if not states or self._stop.is_set():
                continue
            try:
                resp = self.client.put(f"/hosts/{self.host}/power-states", json={"states": states})
                resp.raise_for_status()
            except httpx.HTTPError as exc:  # the periodic sync will catch up
                log.warning("could not report power states %s: %s", states, exc)

    def _sweep_cache(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                evicted = self.cache.evict()
            except OSError:
                log.exception("image cache sweep failed")
                continue
            if evicted:
                log.info("evicted unused images %s", ", ".join(evicted))


def _file_chunks(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk
