"""`kumo up`'s baremetal: a few nodes across two racks, a conductor in this process and a flavor
of the nodes' resource class, so one API serves virtual machines and machines side by side.

Where the all-in-one runs real guests (libvirt usable, kumo's test image built) and sushy-tools
is installed, the nodes are the baremetal lab's machines (kumo/baremetal/lab.py): libvirt
domains driven over real Redfish by sushy-tools' emulator on loopback. Elsewhere they are the
fake BMC driver's machines, in this process. Either way they are enrolled, managed and provided
through kumo's own Ironic API, as an operator would do it: nothing is written to the database.

Nodes are named `bm-1` … and carry their rack (`properties.rack`) and the resource class
RESOURCE_CLASS; the flavor FLAVOR asks for one unit of it (Nova + Ironic's convention). Stopping
removes the conductor, the emulator, its domains and the lab's files; the nodes stay enrolled,
and the next start points them at its own emulator and makes them available again.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kumo.baremetal.conductor import Conductor, start_conductors, stop_conductors
from kumo.baremetal.lab import PREFIX, Emulator, define_machines, emulator_binary, lab_id, remove_machine

RESOURCE_CLASS = "baremetal.small"
FLAVOR = "bm.small"
NODES = (("bm-1", "rack-1"), ("bm-2", "rack-1"), ("bm-3", "rack-2"), ("bm-4", "rack-2"))
REDFISH = "redfish"
FAKE = "fake-hardware"
IRONIC = {"X-OpenStack-Ironic-API-Version": "1.60"}
CONDUCTOR = "up-conductor"
FAKE_BOOT_SECONDS = "2"  # the fake machine prints its boot marker this long after power on
READY_TIMEOUT = 180.0


def choose_hardware(real_guests: bool) -> tuple[str, str]:
    """The nodes' driver and a line saying why: Redfish over the lab's machines where real
    guests run and sushy-tools (with libvirt-python) is installed, else the fake BMC driver."""
    if not real_guests:
        return FAKE, "fake BMC driver (no real guests here: see the first hypervisor's line)"
    if emulator_binary() is None:
        return FAKE, "fake BMC driver: sushy-tools is not installed (scripts/sushy-emulator setup)"
    if importlib.util.find_spec("libvirt") is None:
        return FAKE, "fake BMC driver: libvirt-python is not installed (sushy-tools' libvirt driver needs it)"
    return REDFISH, "Redfish: sushy-tools' emulator over libvirt machines"


def flavor_extra_specs() -> dict[str, str]:
    """One unit of the nodes' class and no VCPU/RAM/disk (Nova + Ironic's baremetal flavor)."""
    custom = "CUSTOM_" + RESOURCE_CLASS.upper().replace(".", "_").replace("-", "_")
    return {
        f"resources:{custom}": "1",
        "resources:VCPU": "0",
        "resources:MEMORY_MB": "0",
        "resources:DISK_GB": "0",
    }


def ensure_flavor(admin: httpx.Client) -> str:
    """The baremetal flavor (made when missing, its extra specs set either way); its id."""
    flavors = {f["name"]: f["id"] for f in admin.get("/compute/v2.1/flavors").json()["flavors"]}
    flavor_id = flavors.get(FLAVOR)
    if flavor_id is None:
        body = {"flavor": {"name": FLAVOR, "vcpus": 1, "ram": 128, "disk": 1}}
        created = admin.post("/compute/v2.1/flavors", json=body)
        created.raise_for_status()
        flavor_id = created.json()["flavor"]["id"]
    admin.post(
        f"/compute/v2.1/flavors/{flavor_id}/os-extra_specs", json={"extra_specs": flavor_extra_specs()}
    ).raise_for_status()
    return str(flavor_id)


def node_body(name: str, rack: str, driver: str, driver_info: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "driver": driver,
        "driver_info": driver_info,
        "resource_class": RESOURCE_CLASS,
        "properties": {"cpus": 1, "memory_mb": 128, "local_gb": 1, "rack": rack},
    }


class NodeFailed(RuntimeError):
    pass


def _node(admin: httpx.Client, ident: str) -> dict[str, Any] | None:
    resp = admin.get(f"/baremetal/v1/nodes/{ident}", headers=IRONIC)
    if resp.status_code == 404:
        return None
    resp.raise_for_status()
    return dict(resp.json())


def _wait_state(admin: httpx.Client, uuid: str, target: str, stop: threading.Event) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT
    while not stop.is_set():
        node = _node(admin, uuid)
        if node is None:
            raise NodeFailed(f"node {uuid} disappeared")
        if node["provision_state"] == target and node.get("target_provision_state") is None:
            return node
        if node["provision_state"] in ("enroll", "clean failed") and node.get("last_error"):
            raise NodeFailed(f"node {node['name']}: {node['last_error']}")
        if time.monotonic() > deadline:
            raise NodeFailed(f"node {node['name']} is {node['provision_state']}, not {target}")
        stop.wait(0.2)
    raise NodeFailed("stopped")


def enroll(admin: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """The node `body` names: enrolled, or pointed at `body`'s driver and driver_info when it
    already is (a restart's emulator listens on another port)."""
    node = _node(admin, body["name"])
    if node is None:
        created = admin.post("/baremetal/v1/nodes", json=body, headers=IRONIC)
        created.raise_for_status()
        return dict(created.json())
    if (node["driver"], node["driver_info"]) == (body["driver"], body["driver_info"]):
        return node
    patch = [
        {"op": "replace", "path": "/driver", "value": body["driver"]},
        {"op": "replace", "path": "/driver_info", "value": body["driver_info"]},
    ]
    patched = admin.patch(f"/baremetal/v1/nodes/{node['uuid']}", json=patch, headers=IRONIC)
    patched.raise_for_status()
    return dict(patched.json())


def make_available(
    admin: httpx.Client, bodies: list[dict[str, Any]], stop: threading.Event
) -> list[dict[str, Any]]:
    """The nodes `bodies` describe enrolled, then `manage`d and `provide`d through the Ironic
    API until they are `available`, all side by side (one conductor pass per step, not per
    node). A node in another state (deployed, in maintenance…) is left as it is."""
    nodes = [enroll(admin, body) for body in bodies]
    for verb, before, after in (("manage", "enroll", "manageable"), ("provide", "manageable", "available")):
        moving = [i for i, node in enumerate(nodes) if node["provision_state"] == before]
        for i in moving:
            resp = admin.put(
                f"/baremetal/v1/nodes/{nodes[i]['uuid']}/states/provision",
                json={"target": verb},
                headers=IRONIC,
            )
            resp.raise_for_status()
        for i in moving:
            nodes[i] = _wait_state(admin, nodes[i]["uuid"], after, stop)
    return nodes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Baremetal:
    """The all-in-one's baremetal: its conductor, and for Redfish the lab (emulator, domains,
    files under `lab_dir`). `ready` is set once every node is available or bring-up failed
    (`failure` says why)."""

    hardware: str
    why: str
    lab_dir: Path
    image_dir: Path | None
    conductors: list[Conductor] = field(default_factory=list)
    emulator: Emulator | None = None
    nodes: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def domains(self) -> list[str]:
        lab = lab_id(self.lab_dir)
        return [f"{PREFIX}{lab}-{name}" for name, _ in NODES]

    def driver_infos(self) -> dict[str, dict[str, str]]:
        """Each node's driver_info; for Redfish, defines the lab's machines and starts the emulator."""
        if self.hardware == FAKE:
            return {name: {"fake_boot_seconds": FAKE_BOOT_SECONDS} for name, _ in NODES}
        assert self.image_dir is not None  # Redfish is chosen only with the test image
        machines = define_machines([name for name, _ in NODES], self.lab_dir, self.image_dir)
        self.emulator = Emulator(machines, _free_port(), self.lab_dir).start()
        return {m.name: m.driver_info(self.emulator.url) for m in machines}

    def bring_up(self, admin: httpx.Client) -> None:
        """Every node available (or `failure` set); `ready` set either way."""
        try:
            infos = self.driver_infos()
            bodies = [node_body(name, rack, self.hardware, infos[name]) for name, rack in NODES]
            self.nodes = make_available(admin, bodies, self.stopping)
        except (NodeFailed, RuntimeError, OSError, httpx.HTTPError) as exc:
            self.failure = str(exc) or type(exc).__name__
        finally:
            self.ready.set()

    def summary(self) -> str:
        """The banner's line once `ready`."""
        if self.failure is not None:
            return f"[yellow]baremetal[/] not ready: {self.failure}"
        states = [f"{n['name']}={n['provision_state']}" for n in self.nodes]
        racks = ", ".join(sorted({rack for _, rack in NODES}))
        return (
            f"[green]baremetal[/] ready: {' '.join(states)} ({racks}; resource class {RESOURCE_CLASS}, "
            f"flavor {FLAVOR})"
        )

    def start_in_background(
        self, admin_client: Callable[[], httpx.Client], announce: Callable[[str], None]
    ) -> None:
        def run() -> None:
            with admin_client() as admin:
                self.bring_up(admin)
            if not self.stopping.is_set():
                announce(self.summary())
            # The emulator is this thread's child and gets SIGTERM when the thread that started
            # it ends (lab._die_with_parent: PR_SET_PDEATHSIG), so the thread lasts until stop().
            self.stopping.wait()

        self.thread = threading.Thread(target=run, name="baremetal-up", daemon=True)
        self.thread.start()

    def signal_stop(self) -> None:
        self.stopping.set()
        for conductor in self.conductors:
            conductor.signal_stop()

    def stop(self) -> None:
        """The conductor stopped, then (Redfish) the emulator, the lab's domains and files removed."""
        self.signal_stop()
        stop_conductors(self.conductors)
        if self.thread is not None:
            self.thread.join(timeout=60)  # bring-up stops between steps
        if self.hardware != REDFISH:
            return
        if self.emulator is not None:
            self.emulator.stop()
        for domain in self.domains():
            remove_machine(domain)
        shutil.rmtree(self.lab_dir, ignore_errors=True)


def start(
    url: str, agent_token: str, hardware: str, why: str, lab_dir: Path, image_dir: Path | None
) -> Baremetal:
    """The conductor running in this process; the nodes are brought up by `Baremetal.bring_up`."""
    conductors = start_conductors(
        url, agent_token, [CONDUCTOR], heartbeat_interval=1.0, power_sync_interval=15.0
    )
    return Baremetal(hardware, why, lab_dir, image_dir, conductors)
