"""A guest as libvirt domain XML, and back. Pure: no libvirt, no I/O.

The domain's UUID is the instance's; kumo's view of the instance (name, project, image,
flavor, host) rides in the domain's <metadata> under kumo's namespace, so `virsh dumpxml`
tells an operator what a domain is without asking the API.

Networking: one virtio NIC per port of the instance (`Nic.from_port` reads the agents' port
contract), a tap with the port's name on the network's bridge; a server without ports has no
NIC. SMBIOS says "OpenStack Nova" (system product and chassis asset tag) so cloud-init's
ds-identify looks for the OpenStack metadata service, as on Nova; a config drive (ISO labelled
`config-2`, built elsewhere) is a read-only CD-ROM.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kumo.compute.states import PowerState

NAMESPACE = "urn:kumo:libvirt:instance:1"
NAME_PREFIX = "kumo-"
VIRT_TYPES = ("qemu", "kvm")

# libvirt's virDomainState → kumo's (Nova's) power states.
_POWER = {
    0: PowerState.NOSTATE,  # VIR_DOMAIN_NOSTATE
    1: PowerState.RUNNING,  # VIR_DOMAIN_RUNNING
    2: PowerState.RUNNING,  # VIR_DOMAIN_BLOCKED: running, waiting on a resource
    3: PowerState.PAUSED,  # VIR_DOMAIN_PAUSED
    4: PowerState.SHUTDOWN,  # VIR_DOMAIN_SHUTDOWN: being shut down
    5: PowerState.SHUTDOWN,  # VIR_DOMAIN_SHUTOFF
    6: PowerState.CRASHED,  # VIR_DOMAIN_CRASHED
    7: PowerState.SUSPENDED,  # VIR_DOMAIN_PMSUSPENDED
}


_SHUTOFF, _SHUTOFF_SAVED = 5, 5  # VIR_DOMAIN_SHUTOFF, and its reason VIR_DOMAIN_SHUTOFF_SAVED


def power_state(libvirt_state: int, reason: int | None = None) -> PowerState:
    """`reason`, when known: a domain shut off because its memory was saved (managed save: a
    suspended server) is SUSPENDED."""
    if libvirt_state == _SHUTOFF and reason == _SHUTOFF_SAVED:
        return PowerState.SUSPENDED
    return _POWER.get(libvirt_state, PowerState.NOSTATE)


def domain_name(uuid: str) -> str:
    return f"{NAME_PREFIX}{uuid}"


# What cloud-init's ds-identify (dscheck_OpenStack) takes for an OpenStack guest: Nova's product
# name in the system entry, and the chassis asset tag.
OPENSTACK_PRODUCT = "OpenStack Nova"
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
# A Linux interface name: at most 15 bytes, no '/', ':' or white space; libvirt reserves the
# vnet/macvtap/macvlan prefixes for names it makes up itself.
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_RESERVED_IFNAMES = ("vnet", "macvtap", "macvlan")
MTU_MIN, MTU_MAX = 68, 65535


class PortError(ValueError):
    """A port in an instance's spec that cannot be plugged (the message says which and why)."""


@dataclass(frozen=True)
class Nic:
    """A guest NIC: the tap libvirt creates on `bridge` for the port with this MAC."""

    bridge: str
    tap: str
    mac: str
    mtu: int = 1500

    def __post_init__(self) -> None:
        for what, name in (("bridge", self.bridge), ("tap", self.tap)):
            if not _IFNAME.fullmatch(name):
                raise PortError(f"{what} name {name!r} is not an interface name (1-15 of A-Za-z0-9_.-)")
        if self.tap.startswith(_RESERVED_IFNAMES):
            raise PortError(f"tap name {self.tap!r} uses a prefix libvirt reserves")
        if not _MAC.fullmatch(self.mac):
            raise PortError(f"MAC address {self.mac!r} is not six lower-case hex pairs")
        if int(self.mac[:2], 16) & 1:
            raise PortError(f"MAC address {self.mac!r} is a multicast address")
        if not MTU_MIN <= self.mtu <= MTU_MAX:
            raise PortError(f"MTU {self.mtu} is outside {MTU_MIN}-{MTU_MAX}")

    @classmethod
    def from_port(cls, port: Mapping[str, Any]) -> Nic:
        """The NIC of a port in the agents' contract ({"id", "mac_address", "mtu", "bridge",
        "tap", …}); PortError when a field is missing or unusable."""
        pid = port.get("id", "?")
        try:
            bridge, tap, mac = (str(port[k]) for k in ("bridge", "tap", "mac_address"))
        except KeyError as exc:
            raise PortError(f"port {pid} has no {exc.args[0]!r}") from None
        mtu = port.get("mtu") or 1500
        if isinstance(mtu, bool) or not isinstance(mtu, int):
            raise PortError(f"port {pid} has a non-integer MTU {mtu!r}")
        return cls(bridge=bridge, tap=tap, mac=mac.lower(), mtu=mtu)


def nics_of(ports: Sequence[Mapping[str, Any]] | None) -> tuple[Nic, ...]:
    """The NICs of an instance's ports, in port order (the guest's eth0, eth1…)."""
    nics = tuple(Nic.from_port(port) for port in ports or ())
    taps = [nic.tap for nic in nics]
    if len(set(taps)) != len(taps):
        raise PortError(f"two ports share a tap name: {', '.join(taps)}")
    return nics


@dataclass(frozen=True)
class GuestConfig:
    uuid: str
    title: str
    hostname: str
    vcpus: int
    memory_mib: int
    disk: Path
    console_log: Path
    virt_type: str = "qemu"
    disk_format: str = "qcow2"
    kernel: Path | None = None
    initrd: Path | None = None
    cmdline: str | None = None
    machine: str | None = None
    # kumo's view of the instance, kept in the domain metadata (name, project, image, host…).
    metadata: dict[str, str] = field(default_factory=dict)
    flavor: dict[str, str] = field(default_factory=dict)
    nics: tuple[Nic, ...] = ()
    config_drive: Path | None = None  # an ISO9660 image labelled config-2
    # qcow2 disks after the root one (vdb, vdc…): a rescued guest's own disk
    extra_disks: tuple[Path, ...] = ()
    # The host CPUs the guest's vCPU (and emulator) threads may run on, as libvirt's cpuset text
    # ("0-1,3"): the agent's cpu_shared_set (parse_cpu_set). None: any CPU.
    cpuset: str | None = None


CPU_ID_MAX = 4095  # a CPU number beyond this is a typo, not a host's CPU


def parse_cpu_set(text: str) -> tuple[int, ...]:
    """The host CPUs of a CPU list as Nova's `[compute] cpu_shared_set` reads it: comma-separated
    CPU numbers and ranges, each optionally excluded with "^" ("0-3,^2" is 0, 1 and 3); sorted,
    without repeats. ValueError, saying why, for anything else or an empty result."""
    included: set[int] = set()
    excluded: set[int] = set()
    for part in text.split(","):
        item = part.strip()
        into = excluded if item.startswith("^") else included
        item = item.removeprefix("^").strip()
        m = re.fullmatch(r"([0-9]+)(?:\s*-\s*([0-9]+))?", item)
        if m is None:
            raise ValueError(f"Invalid CPU list {text!r}: {part.strip()!r} is not a CPU number or a range")
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if first > last or last > CPU_ID_MAX:
            raise ValueError(
                f"Invalid CPU list {text!r}: {item!r} is not a range of CPU numbers 0-{CPU_ID_MAX}"
            )
        into.update(range(first, last + 1))
    cpus = tuple(sorted(included - excluded))
    if not cpus:
        raise ValueError(f"Invalid CPU list {text!r}: it names no CPU")
    return cpus


def cpu_set_text(cpus: Sequence[int]) -> str:
    """libvirt's cpuset text of sorted CPU numbers: runs as ranges ("0-2,5")."""
    runs: list[list[int]] = []
    for cpu in cpus:
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def domain_xml(cfg: GuestConfig) -> str:
    if cfg.virt_type not in VIRT_TYPES:
        raise ValueError(f"virt type {cfg.virt_type!r} is not one of {', '.join(VIRT_TYPES)}")
    dom = ET.Element("domain", type=cfg.virt_type)
    _sub(dom, "name", domain_name(cfg.uuid))
    _sub(dom, "uuid", cfg.uuid)
    _sub(dom, "title", cfg.title)
    meta = _sub(_sub(dom, "metadata"), f"{{{NAMESPACE}}}instance")
    for key, value in sorted(cfg.metadata.items()):
        _sub(meta, f"{{{NAMESPACE}}}{key}", value)
    _sub(meta, f"{{{NAMESPACE}}}flavor", None, **{k: str(v) for k, v in sorted(cfg.flavor.items())})
    _sub(dom, "memory", str(cfg.memory_mib), unit="MiB")
    _sub(dom, "vcpu", str(cfg.vcpus), **({"placement": "static", "cpuset": cfg.cpuset} if cfg.cpuset else {}))

    # SMBIOS: the guest can read its identity without a metadata service (the test image prints
    # its hostname from the OEM string), and cloud-init sees an OpenStack guest (as on Nova).
    sysinfo = _sub(dom, "sysinfo", type="smbios")
    system = _sub(sysinfo, "system")
    for name, value in (
        ("manufacturer", "kumo"),
        ("product", OPENSTACK_PRODUCT),
        ("serial", cfg.uuid),
        ("uuid", cfg.uuid),
        ("family", "Virtual Machine"),
    ):
        _sub(system, "entry", value, name=name)
    chassis = _sub(sysinfo, "chassis")
    _sub(chassis, "entry", "kumo", name="manufacturer")
    _sub(chassis, "entry", OPENSTACK_PRODUCT, name="asset")
    _sub(_sub(sysinfo, "oemStrings"), "entry", f"kumo:hostname={cfg.hostname}")

    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", **({"machine": cfg.machine} if cfg.machine else {}))
    if cfg.kernel is not None:  # direct kernel boot: the image's kernel_id/ramdisk_id
        _sub(os_el, "kernel", str(cfg.kernel))
        if cfg.initrd is not None:
            _sub(os_el, "initrd", str(cfg.initrd))
        if cfg.cmdline:
            _sub(os_el, "cmdline", cfg.cmdline)
    else:
        _sub(os_el, "boot", dev="hd")
    _sub(os_el, "smbios", mode="sysinfo")
    features = _sub(dom, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if cfg.virt_type == "kvm":
        _sub(dom, "cpu", mode="host-model")
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")

    devices = _sub(dom, "devices")
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type=cfg.disk_format)
    _sub(disk, "source", file=str(cfg.disk))
    _sub(disk, "target", dev="vda", bus="virtio")
    for index, extra in enumerate(cfg.extra_disks):
        more = _sub(devices, "disk", type="file", device="disk")
        _sub(more, "driver", name="qemu", type="qcow2")
        _sub(more, "source", file=str(extra))
        _sub(more, "target", dev=f"vd{chr(ord('b') + index)}", bus="virtio")
    if cfg.config_drive is not None:  # as Nova: a read-only CD-ROM, IDE (pc) or SATA (q35: no IDE)
        cdrom = _sub(devices, "disk", type="file", device="cdrom")
        _sub(cdrom, "driver", name="qemu", type="raw")
        _sub(cdrom, "source", file=str(cfg.config_drive))
        q35 = "q35" in (cfg.machine or "")
        _sub(cdrom, "target", dev="sda" if q35 else "hdd", bus="sata" if q35 else "ide")
        _sub(cdrom, "readonly")
    for nic in cfg.nics:
        _interface(devices, nic)
    # The serial console is a pty whose output virtlogd also appends to a file per instance.
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "log", file=str(cfg.console_log), append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    _sub(devices, "controller", type="usb", model="none")
    _sub(devices, "memballoon", model="none")
    ET.register_namespace("kumo", NAMESPACE)
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode")


def kumo_metadata(xml: str) -> dict[str, str]:
    """kumo's metadata of a domain (from `domain_xml`); empty for a domain kumo did not create."""
    root = ET.fromstring(xml)
    found = root.find(f"metadata/{{{NAMESPACE}}}instance")
    if found is None:
        return {}
    prefix = f"{{{NAMESPACE}}}"
    return {child.tag.removeprefix(prefix): child.text or "" for child in found if child.text is not None}


def console_log_of(xml: str) -> Path | None:
    root = ET.fromstring(xml)
    log = root.find("devices/serial/log")
    return Path(log.attrib["file"]) if log is not None and "file" in log.attrib else None


def serial_pty_of(xml: str) -> str | None:
    """The host pty of a running guest's serial console (libvirt fills its source path)."""
    source = ET.fromstring(xml).find("devices/serial/source")
    return source.attrib.get("path") if source is not None else None


def _interface(devices: ET.Element, nic: Nic) -> ET.Element:
    interface = _sub(devices, "interface", type="bridge")
    _sub(interface, "source", bridge=nic.bridge)
    _sub(interface, "mac", address=nic.mac)
    _sub(interface, "target", dev=nic.tap)
    _sub(interface, "model", type="virtio")
    _sub(interface, "mtu", size=str(nic.mtu))
    return interface


def interface_xml(nic: Nic) -> str:
    """The `<interface>` device of one NIC, as a domain's XML holds it (for hot-plugging)."""
    return ET.tostring(_interface(ET.Element("devices"), nic), encoding="unicode")


def interface_macs(xml: str) -> set[str]:
    """The MAC addresses of a domain XML's bridge interfaces (lower case)."""
    found = set()
    for interface in ET.fromstring(xml).iterfind("./devices/interface"):
        mac = interface.find("mac")
        if mac is not None and mac.get("address"):
            found.add(str(mac.get("address")).lower())
    return found


def disk_targets(xml: str) -> list[str]:
    """The target names (vda, vdb…) of a domain XML's disks, CD-ROMs left out."""
    root = ET.fromstring(xml)
    found = []
    for disk in root.iterfind("./devices/disk"):
        target = disk.find("target")
        if disk.get("device") == "disk" and target is not None and target.get("dev"):
            found.append(str(target.get("dev")))
    return found


def interface_devices(xml: str) -> list[tuple[str, str]]:
    """(MAC address, tap name) of a domain XML's bridge interfaces, in order."""
    found = []
    for interface in ET.fromstring(xml).iterfind("./devices/interface"):
        mac, target = interface.find("mac"), interface.find("target")
        if mac is not None and target is not None and mac.get("address") and target.get("dev"):
            found.append((str(mac.get("address")).lower(), str(target.get("dev"))))
    return found


def with_sizing(xml: str, memory_mib: int, vcpus: int) -> str:
    """`xml` with the memory and vCPUs given (a cold move to a new flavor crosses with the
    guest's old sizing, which must match its running definition, and keeps the new one as the
    persistent definition it boots from there)."""
    root = ET.fromstring(xml)
    for tag in ("memory", "currentMemory"):
        element = root.find(tag)
        if element is not None:
            element.text, element.attrib = str(memory_mib), {"unit": "MiB"}
    vcpu = root.find("vcpu")
    if vcpu is not None:
        vcpu.text = str(vcpus)
    ET.register_namespace("kumo", NAMESPACE)
    return ET.tostring(root, encoding="unicode")
