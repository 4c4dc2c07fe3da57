"""A baremetal lab on one machine: libvirt domains play the physical servers and sushy-tools'
emulator (PyPI `sushy-tools`) is their Redfish BMC, on loopback. For tests and for trying
kumo's baremetal path without hardware (`scripts/sushy-emulator`).

Each machine is a persistent libvirt domain `bmlab-<lab>-<name>` (`<lab>` from the lab's
directory, so two labs on one libvirtd never touch each other's machines) with kumo's test image
(scripts/build-test-image) installed: its firmware boots the image's kernel and initramfs
directly, it has a small disk (the boot device Redfish switches to), and its serial console is
captured to `<state>/<name>.console.log`, which the deploy interface watches for the image's
`KUMO-BOOT-OK` marker (driver_info `kumo_console_log`). The emulator serves only the lab's
machines (SUSHY_EMULATOR_ALLOWED_INSTANCES), whatever else libvirt runs.

A machine may have NICs (`Nic`): each is plugged into an existing Linux bridge with a given
MAC, for example a tenant network's `brq<network_id[:11]>` on the network host (the test
image asks DHCP for an address on every NIC and prints it in its marker, `ip=<address>`).
Enroll the MAC as the node's Ironic port and a server on the node gets the network's DHCP
reservation for it. The bridge must exist when the machine powers on, not when it is defined.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

PREFIX = "bmlab-"
LIBVIRT_URI = "qemu:///system"
DEFAULT_IMAGE_DIR = Path(os.environ.get("KUMO_TEST_IMAGE_DIR", "/var/tmp/kumo-test-image"))
DEFAULT_STATE_DIR = Path("/var/tmp/kumo-bmlab")


@dataclass(frozen=True)
class Machine:
    name: str
    uuid: str
    domain: str
    console_log: str
    disk: str

    def driver_info(self, emulator_url: str) -> dict[str, str]:
        return {
            "redfish_address": emulator_url,
            "redfish_system_id": f"/redfish/v1/Systems/{self.uuid}",
            "redfish_username": "admin",
            "redfish_password": "password",
            "redfish_verify_ca": "false",
            "kumo_console_log": self.console_log,
        }


@dataclass(frozen=True)
class Nic:
    """A lab machine's NIC: plugged into `bridge`, with `mac`."""

    bridge: str
    mac: str


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


def machine_xml(machine: Machine, image_dir: Path, memory_mib: int = 128, nics: Sequence[Nic] = ()) -> str:
    manifest = dict(
        line.split("=", 1) for line in (image_dir / "manifest").read_text().splitlines() if "=" in line
    )
    dom = ET.Element("domain", type="qemu")
    _sub(dom, "name", machine.domain)
    _sub(dom, "uuid", machine.uuid)
    _sub(dom, "title", f"kumo baremetal lab machine {machine.name}")
    _sub(dom, "memory", str(memory_mib), unit="MiB")
    _sub(dom, "vcpu", "1")
    sysinfo = _sub(dom, "sysinfo", type="smbios")
    _sub(_sub(sysinfo, "oemStrings"), "entry", f"kumo:hostname={machine.name}")
    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch="x86_64")
    _sub(os_el, "kernel", str(image_dir / "vmlinux"))
    _sub(os_el, "initrd", str(image_dir / "initrd.img"))
    _sub(os_el, "cmdline", manifest.get("os_command_line", "console=ttyS0"))
    _sub(os_el, "smbios", mode="sysinfo")
    features = _sub(dom, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")
    devices = _sub(dom, "devices")
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="raw")
    _sub(disk, "source", file=machine.disk)
    _sub(disk, "target", dev="vda", bus="virtio")
    _sub(disk, "boot", order="1")
    cdrom = _sub(devices, "disk", type="file", device="cdrom")  # empty: a boot device to switch to
    _sub(cdrom, "target", dev="hdc", bus="ide")
    _sub(cdrom, "readonly")
    for nic in nics:
        interface = _sub(devices, "interface", type="bridge")
        _sub(interface, "mac", address=nic.mac)
        _sub(interface, "source", bridge=nic.bridge)
        _sub(interface, "model", type="virtio")
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "log", file=machine.console_log, append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    _sub(devices, "controller", type="usb", model="none")
    _sub(devices, "memballoon", model="none")
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode")


def _virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["virsh", "-c", LIBVIRT_URI, *args], capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise RuntimeError(f"virsh {' '.join(args)}: {done.stderr.strip()}")
    return done


def remove_machine(domain: str) -> None:
    _virsh("destroy", domain, check=False)
    _virsh("undefine", domain, check=False)


def lab_id(state_dir: Path) -> str:
    return hashlib.blake2b(str(state_dir.resolve()).encode(), digest_size=3).hexdigest()


def define_machines(
    names: list[str],
    state_dir: Path,
    image_dir: Path = DEFAULT_IMAGE_DIR,
    nics: Mapping[str, Sequence[Nic]] | None = None,
) -> list[Machine]:
    """(Re)define the machines, powered off, with fresh disks and empty consoles; `nics` by
    machine name (none for a machine not named)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    machines = []
    lab = lab_id(state_dir)
    for name in names:
        domain = f"{PREFIX}{lab}-{name}"
        remove_machine(domain)
        machine = Machine(
            name=name,
            uuid=str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"kumo-bmlab:{state_dir.resolve()}:{name}")),
            domain=domain,
            console_log=str(state_dir / f"{name}.console.log"),
            disk=str(state_dir / f"{name}.disk.raw"),
        )
        shutil.copyfile(image_dir / "disk.raw", machine.disk)
        Path(machine.console_log).unlink(missing_ok=True)
        xml_path = state_dir / f"{name}.xml"
        xml_path.write_text(machine_xml(machine, image_dir, nics=(nics or {}).get(name, ())))
        _virsh("define", str(xml_path))
        machines.append(machine)
    (state_dir / "machines.json").write_text(json.dumps([asdict(m) for m in machines], indent=2))
    return machines


def load_machines(state_dir: Path) -> list[Machine]:
    path = state_dir / "machines.json"
    return [Machine(**raw) for raw in json.loads(path.read_text())] if path.exists() else []


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started it dies (a test run killed before
    its teardown leaves no emulator behind). Linux only; elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def emulator_binary() -> Path | None:
    """sushy-tools' `sushy-emulator` beside this Python, else on PATH; None when not installed."""
    beside = Path(sys.executable).with_name("sushy-emulator")
    if beside.exists():
        return beside
    found = shutil.which("sushy-emulator")
    return Path(found) if found else None


class Emulator:
    """sushy-emulator with its libvirt driver on 127.0.0.1:`port`, limited to `machines`."""

    def __init__(self, machines: list[Machine], port: int, state_dir: Path) -> None:
        self.machines = machines
        self.port = port
        self.state_dir = state_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> Path:
        path = self.state_dir / f"emulator-{self.port}.conf"
        allowed = [m.uuid for m in self.machines] + [m.domain for m in self.machines]
        path.write_text(
            f"SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n"
            f"SUSHY_EMULATOR_LISTEN_PORT = {self.port}\n"
            f"SUSHY_EMULATOR_LIBVIRT_URI = '{LIBVIRT_URI}'\n"
            f"SUSHY_EMULATOR_ALLOWED_INSTANCES = {allowed!r}\n"
        )
        return path

    def start(self, timeout: float = 30.0) -> Emulator:
        binary = emulator_binary()
        if binary is None:
            raise RuntimeError("sushy-emulator is not installed (scripts/sushy-emulator setup)")
        log = open(self.state_dir / f"emulator-{self.port}.log", "ab")  # noqa: SIM115 — the child keeps it
        self.process = subprocess.Popen(
            [str(binary), "--config", str(self.config())],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/redfish/v1/Systems", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sushy-emulator did not start; see {log.name}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None


def parse_nics(specs: Sequence[str]) -> dict[str, list[Nic]]:
    """`MACHINE=BRIDGE,MAC` options, by machine."""
    found: dict[str, list[Nic]] = {}
    for spec in specs:
        name, _, rest = spec.partition("=")
        bridge, _, mac = rest.partition(",")
        if not (name and bridge and mac):
            raise SystemExit(f"--nic {spec}: expected MACHINE=BRIDGE,MAC")
        found.setdefault(name, []).append(Nic(bridge, mac))
    return found


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/sushy-emulator", description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state", type=Path, default=DEFAULT_STATE_DIR, help="lab directory")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser(
        "start", parents=[common], help="define the machines and serve them over Redfish (foreground)"
    )
    start.add_argument("--machines", type=int, default=2)
    start.add_argument("--port", type=int, default=8000)
    start.add_argument(
        "--image", type=Path, default=DEFAULT_IMAGE_DIR, help="scripts/build-test-image output"
    )
    start.add_argument(
        "--nic",
        action="append",
        default=[],
        metavar="MACHINE=BRIDGE,MAC",
        help="a NIC for a machine (node-1, …) on an existing bridge, with a MAC; repeatable",
    )
    sub.add_parser("list", parents=[common], help="the machines and the driver_info to enroll them with")
    sub.add_parser("clean", parents=[common], help="power off and undefine the machines")
    args = parser.parse_args(argv)
    state: Path = args.state
    if args.command == "start":
        machines = define_machines(
            [f"node-{i + 1}" for i in range(args.machines)], state, args.image, parse_nics(args.nic)
        )
        emulator = Emulator(machines, args.port, state).start()
        (state / "emulator.json").write_text(json.dumps({"url": emulator.url}))
        for m in machines:
            print(json.dumps({"name": m.name, "driver_info": m.driver_info(emulator.url)}))
        print(f"serving {len(machines)} machines on {emulator.url}; Ctrl-C stops", file=sys.stderr)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        finally:
            emulator.stop()
        return 0
    machines = load_machines(state)
    if args.command == "list":
        url = (
            json.loads((state / "emulator.json").read_text())["url"]
            if (state / "emulator.json").exists()
            else ""
        )
        for m in machines:
            print(json.dumps({"name": m.name, "driver_info": m.driver_info(url)}))
    elif args.command == "clean":
        for m in machines:
            remove_machine(m.domain)
        print(f"removed {len(machines)} machines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
