"""A guest as libvirt domain XML, and back. Pure: no libvirt, no I/O.

The domain's UUID is the instance's; kumo's view of the instance (name, project, image,
flavor, host) rides in the domain's <metadata> under kumo's namespace, so `virsh dumpxml`
tells an operator what a domain is without asking the API.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

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


def power_state(libvirt_state: int) -> PowerState:
    return _POWER.get(libvirt_state, PowerState.NOSTATE)


def domain_name(uuid: str) -> str:
    return f"{NAME_PREFIX}{uuid}"


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
    _sub(dom, "vcpu", str(cfg.vcpus))

    # SMBIOS: the guest can read its identity without a metadata service (the test image prints
    # its hostname from the OEM string).
    sysinfo = _sub(dom, "sysinfo", type="smbios")
    system = _sub(sysinfo, "system")
    for name, value in (
        ("manufacturer", "kumo"),
        ("product", "kumo Compute"),
        ("serial", cfg.uuid),
        ("uuid", cfg.uuid),
        ("family", "Virtual Machine"),
    ):
        _sub(system, "entry", value, name=name)
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
