"""Baremetal through the cloud's own API and the unmodified clients: a node enrolled with
`openstack baremetal node create`, made available (`manage`, `provide`: the conductor checks
the BMC, then cleans), a server created on it with `openstack server create --flavor <bm>`
(the conductor deploys: boot device, power on, the marker on the console), deleted (power
off, clean, the node available again). Conductors run in this process over the real
conductor protocol.

The fake-driver tests run everywhere; the Redfish ones drive sushy-tools' emulator over
libvirt machines booting kumo's test image (the `lab` fixture; marked libvirt)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumo.baremetal.conductor import Conductor, start_conductors, stop_conductors
from kumo.baremetal.drivers import fake as fake_driver
from tests.cli.conftest import OpenStackCLI
from tests.cli.conftest import osc as osc  # the fixture
from tests.conftest import Cloud, wait_for
from tests.integration.baremetal.conftest import MARKER, Lab
from tests.integration.libvirt.conftest import upload

RESOURCE_CLASS = "baremetal.small"
FLAVOR = "bm.small"
IRONIC_VERSION = {"X-OpenStack-Ironic-API-Version": "1.60"}


@dataclass
class BareMetalCloud:
    cloud: Cloud
    osc: OpenStackCLI
    conductors: list[Conductor]
    image: str
    flavor: str
    api: httpx.Client  # for waiting: the CLI acts, plain HTTP polls (a CLI call costs a second)

    def enroll(self, name: str, driver: str, **driver_info: str) -> str:
        args = [
            "baremetal",
            "node",
            "create",
            "--name",
            name,
            "--driver",
            driver,
            "--resource-class",
            RESOURCE_CLASS,
            "--property",
            "cpus=2",
            "--property",
            "memory_mb=4096",
            "--property",
            "local_gb=40",
        ]
        for key, value in driver_info.items():
            args += ["--driver-info", f"{key}={value}"]
        return str(self.osc.run(*args)["uuid"])

    def node(self, ident: str) -> dict[str, Any]:
        resp = self.api.get(
            f"/baremetal/v1/nodes/{ident}", headers={"X-OpenStack-Ironic-API-Version": "1.60"}
        )
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def wait_node(self, ident: str, state: str, timeout: float = 60) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            node = self.node(ident)
            return node if node["provision_state"] == state else None

        return dict(wait_for(reached, timeout=timeout, interval=0.1))

    def make_available(self, ident: str, cli: bool = True) -> dict[str, Any]:
        for verb, state in (("manage", "manageable"), ("provide", "available")):
            if cli:
                self.osc.run("baremetal", "node", verb, ident, json=False)
            else:
                resp = self.api.put(
                    f"/baremetal/v1/nodes/{ident}/states/provision",
                    json={"target": verb},
                    headers=IRONIC_VERSION,
                )
                assert resp.status_code == 202, resp.text
            node = self.wait_node(ident, state)
        return node

    def enroll_http(self, name: str, driver: str, **driver_info: str) -> str:
        body = {
            "name": name,
            "driver": driver,
            "driver_info": driver_info,
            "resource_class": RESOURCE_CLASS,
            "properties": {"cpus": 2, "memory_mb": 4096, "local_gb": 40},
        }
        resp = self.api.post("/baremetal/v1/nodes", json=body, headers=IRONIC_VERSION)
        assert resp.status_code == 201, resp.text
        return str(resp.json()["uuid"])

    def create_server(self, name: str) -> str:
        body = {
            "server": {"name": name, "flavorRef": self.flavor, "imageRef": self.image, "networks": "none"}
        }
        resp = self.api.post("/compute/v2.1/servers", json=body)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["server"]["id"])

    def server(self, ident: str) -> dict[str, Any]:
        resp = self.api.get(f"/compute/v2.1/servers/{ident}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json()["server"])

    def wait_server(self, ident: str, status: str, timeout: float = 90) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            server = self.server(ident)
            if server["status"] == "ERROR" and status != "ERROR":
                raise AssertionError(f"server went to ERROR: {server.get('fault')}")
            return server if server["status"] == status else None

        return dict(wait_for(reached, timeout=timeout, interval=0.1))


@pytest.fixture
def bmc(cloud: Cloud, osc: OpenStackCLI) -> Iterator[BareMetalCloud]:
    fake_driver.forget_all()
    cloud.settings.heartbeat_timeout_seconds = 4.0  # a dead conductor's nodes move within 4 s
    api = cloud.client(microversion="2.60")  # setup by plain HTTP: the CLI is for what is tested
    resp = api.post(
        "/compute/v2.1/flavors", json={"flavor": {"name": FLAVOR, "vcpus": 2, "ram": 4096, "disk": 40}}
    )
    assert resp.status_code == 200, resp.text
    flavor = resp.json()["flavor"]["id"]
    extra = {
        f"resources:CUSTOM_{RESOURCE_CLASS.upper().replace('.', '_')}": "1",
        "resources:VCPU": "0",
        "resources:MEMORY_MB": "0",
        "resources:DISK_GB": "0",
    }
    resp = api.post(f"/compute/v2.1/flavors/{flavor}/os-extra_specs", json={"extra_specs": extra})
    assert resp.status_code == 200, resp.text
    image = upload(api, "bm-image", b"\0" * 4096, "raw")
    token = cloud.settings.secret("agent_token")
    conductors = start_conductors(
        cloud.url, token, ["cond-a", "cond-b"], heartbeat_interval=0.5, poll_wait=1.0, power_sync_interval=1.0
    )
    yield BareMetalCloud(cloud, osc, conductors, image, flavor, api)
    api.close()
    stop_conductors(conductors)
    fake_driver.forget_all()


def test_fake_node_from_enrollment_to_a_server_and_back(bmc: BareMetalCloud) -> None:
    node = bmc.enroll("fake-1", "fake-hardware", fake_boot_seconds="0.5")
    assert bmc.node(node)["provision_state"] == "enroll"
    available = bmc.make_available(node)
    assert available["power_state"] == "power off"
    server = bmc.osc.run(
        "server", "create", "--flavor", FLAVOR, "--image", bmc.image, "--nic", "none", "bm-server"
    )
    active = bmc.wait_server(server["id"], "ACTIVE")
    assert active["OS-EXT-SRV-ATTR:hypervisor_hostname"] == node
    shown = bmc.node(node)
    assert (shown["provision_state"], shown["power_state"], shown["instance_uuid"]) == (
        "active",
        "power on",
        server["id"],
    )
    assert MARKER in fake_driver.machine(node).console_text()
    bmc.osc.run("server", "delete", server["id"], json=False)
    back = bmc.wait_node(node, "available")
    assert back["power_state"] == "power off" and back["instance_uuid"] is None


def test_server_actions_drive_the_machine(bmc: BareMetalCloud) -> None:
    """stop (soft power off), start, reboot (one more boot), rebuild (a redeploy: off, boot
    again, the marker again) on a server that is a machine."""
    node = bmc.enroll_http("acts", "fake-hardware", fake_boot_seconds="0.2")
    bmc.make_available(node, cli=False)
    server = bmc.create_server("acts")
    bmc.wait_server(server, "ACTIVE")
    machine = fake_driver.machine(node)

    def act(body: dict[str, Any], status: str) -> None:
        resp = bmc.api.post(f"/compute/v2.1/servers/{server}/action", json=body)
        assert resp.status_code == 202, resp.text
        wait_for(
            lambda: (s := bmc.server(server))["status"] == status and s["OS-EXT-STS:task_state"] is None,
            timeout=30,
            interval=0.1,
        )

    act({"os-stop": None}, "SHUTOFF")
    assert machine.power == "power off"
    act({"os-start": None}, "ACTIVE")
    assert machine.power == "power on"
    boots = machine.power_ons
    act({"reboot": {"type": "HARD"}}, "ACTIVE")
    assert machine.power_ons == boots + 1
    markers = machine.console_text().count(MARKER)
    act({"rebuild": {"imageRef": bmc.image}}, "ACTIVE")
    assert machine.console_text().count(MARKER) == markers + 1  # deployed again
    assert bmc.node(node)["provision_state"] == "active"


def test_deploy_timeout_puts_the_server_in_error_and_the_node_in_deploy_failed(bmc: BareMetalCloud) -> None:
    node = bmc.enroll_http("silent", "fake-hardware", fake_boots="false", deploy_timeout="2")
    bmc.make_available(node, cli=False)
    errored = bmc.wait_server(bmc.create_server("never-boots"), "ERROR", timeout=60)
    assert "Timeout reached while waiting for the deploy" in str(errored.get("fault"))
    shown = bmc.node(node)
    assert shown["provision_state"] == "deploy failed"
    assert "Timeout reached" in shown["last_error"]
    assert fake_driver.machine(node).power == "power off"


def test_an_unreachable_bmc_keeps_the_node_in_enroll_with_the_reason(bmc: BareMetalCloud) -> None:
    node = bmc.enroll_http("dark", "fake-hardware", fake_unreachable="true")
    bmc.osc.run("baremetal", "node", "manage", node, json=False)
    shown = wait_for(
        lambda: "Verifying" in str((n := bmc.node(node))["last_error"]) and n, timeout=30, interval=0.2
    )
    assert shown["provision_state"] == "enroll"
    assert "unreachable" in shown["last_error"]


def test_a_conductor_killed_mid_deploy_is_replaced(bmc: BareMetalCloud) -> None:
    node = bmc.enroll_http("slow", "fake-hardware", fake_boot_seconds="4")
    bmc.make_available(node, cli=False)
    server = {"id": bmc.create_server("survivor")}
    machine = fake_driver.machine(node)
    wait_for(lambda: machine.power == "power on", timeout=30, interval=0.1)  # its owner is deploying
    owner = next(c for c in bmc.conductors if node in c.nodes)
    other = next(c for c in bmc.conductors if c is not owner)
    owner.stop()  # dies: no more heartbeats, its deploy abandoned unreported
    wait_for(lambda: node in other.nodes, timeout=20, interval=0.2)
    bmc.wait_server(server["id"], "ACTIVE", timeout=60)
    assert machine.power_ons == 2  # the new owner deployed again from the start
    assert bmc.node(node)["provision_state"] == "active"


def test_a_bmc_that_stops_answering_puts_the_node_in_maintenance(bmc: BareMetalCloud) -> None:
    """The conductors' power sync reports null for it; after 3 passes the API puts the node in
    maintenance with fault "power failure", and takes it out when the BMC answers again."""
    node = bmc.enroll_http("flaky", "fake-hardware")
    bmc.make_available(node, cli=False)
    machine = fake_driver.machine(node)
    machine.unreachable = True
    down = wait_for(lambda: (n := bmc.node(node))["maintenance"] and n, timeout=30, interval=0.2)
    assert down["fault"] == "power failure"
    machine.unreachable = False
    up = wait_for(lambda: not (n := bmc.node(node))["maintenance"] and n, timeout=30, interval=0.2)
    assert up["fault"] is None and up["provision_state"] == "available"


# ------------------------------------------------------------------------- Redfish, real machines


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redfish_bmc(bmc: BareMetalCloud, bm: Lab) -> BareMetalCloud:
    return bmc


def test_redfish_node_deploys_when_the_machine_prints_its_marker(
    redfish_bmc: BareMetalCloud, bm: Lab
) -> None:
    bmc = redfish_bmc
    machine = bm.machine("node-1")
    info = machine.driver_info(bm.url)
    node = bmc.enroll("rack1-node-1", "redfish", **info)
    bmc.make_available(node, cli=False)  # manage/provide through the CLI: the fake-driver test
    before = bm.console("node-1").count(MARKER)
    server = bmc.osc.run(
        "server", "create", "--flavor", FLAVOR, "--image", bmc.image, "--nic", "none", "metal-1"
    )
    bmc.wait_server(server["id"], "ACTIVE", timeout=90)
    assert bm.console("node-1").count(MARKER) == before + 1
    assert bm.domstate("node-1") == "running"
    assert bmc.node(node)["power_state"] == "power on"
    bmc.osc.run("server", "delete", server["id"], json=False)
    bmc.wait_node(node, "available")
    assert bm.domstate("node-1") == "shut off"


def test_redfish_adopt_a_running_machine_without_a_power_cycle(redfish_bmc: BareMetalCloud, bm: Lab) -> None:
    bmc = redfish_bmc
    bm.hardware("node-2").power.set_power_state("power on")  # already running its OS
    wait_for(lambda: bm.console("node-2").count(MARKER) >= 1, timeout=60, interval=0.2)
    boots = bm.console("node-2").count(MARKER)
    node = bmc.enroll_http("legacy-2", "redfish", **bm.machine("node-2").driver_info(bm.url))
    project = bmc.api.get("/identity/v3/auth/projects").json()["projects"][0]["id"]
    patch = [{"op": "add", "path": "/owner", "value": project}]
    assert bmc.api.patch(f"/baremetal/v1/nodes/{node}", json=patch, headers=IRONIC_VERSION).status_code == 200
    resp = bmc.api.put(
        f"/baremetal/v1/nodes/{node}/states/provision", json={"target": "manage"}, headers=IRONIC_VERSION
    )
    assert resp.status_code == 202, resp.text
    bmc.wait_node(node, "manageable")
    bmc.osc.run("baremetal", "node", "adopt", node, json=False)
    adopted = bmc.wait_node(node, "active")
    assert adopted["power_state"] == "power on" and adopted["instance_uuid"]
    server = bmc.server(adopted["instance_uuid"])
    assert server["status"] == "ACTIVE"
    assert bm.domstate("node-2") == "running"
    assert bm.console("node-2").count(MARKER) == boots  # never rebooted


def test_redfish_bmc_unreachable_at_enrollment(redfish_bmc: BareMetalCloud) -> None:
    bmc = redfish_bmc
    node = bmc.enroll_http(
        "nowhere",
        "redfish",
        redfish_address=f"http://127.0.0.1:{_closed_port()}",
        redfish_system_id="/redfish/v1/Systems/none",
    )
    bmc.osc.run("baremetal", "node", "manage", node, json=False)
    shown = wait_for(
        lambda: "Verifying" in str((n := bmc.node(node))["last_error"]) and n, timeout=30, interval=0.2
    )
    assert shown["provision_state"] == "enroll"
    assert "is unreachable" in shown["last_error"]


def test_kumo_conductor_process(cloud: Cloud) -> None:
    """`kumo conductor --name C --api URL` as its own process: it registers, owns the node,
    runs its verification."""
    api = cloud.client()
    body = {"name": "proc-node", "driver": "fake-hardware", "resource_class": RESOURCE_CLASS}
    resp = api.post("/baremetal/v1/nodes", json=body, headers=IRONIC_VERSION)
    assert resp.status_code == 201, resp.text
    node = resp.json()["uuid"]
    env = {**os.environ, "KUMO_STATE_DIR": str(cloud.settings.state_dir)}
    kumo = Path(sys.executable).with_name("kumo")
    proc = subprocess.Popen(
        [str(kumo), "conductor", "--name", "proc-1", "--api", cloud.url, "--heartbeat-interval", "0.5"],
        env=env,
        stderr=(cloud.settings.state_dir / "conductor.log").open("wb"),
    )
    try:
        resp = api.put(
            f"/baremetal/v1/nodes/{node}/states/provision", json={"target": "manage"}, headers=IRONIC_VERSION
        )
        assert resp.status_code == 202, resp.text

        def state() -> str:
            return str(
                api.get(f"/baremetal/v1/nodes/{node}", headers=IRONIC_VERSION).json()["provision_state"]
            )

        wait_for(lambda: state() == "manageable", timeout=30, interval=0.1)
        shown = api.get(f"/baremetal/v1/nodes/{node}", headers=IRONIC_VERSION).json()
        assert shown["conductor"] == "proc-1"
        assert shown["power_state"] == "power off"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        api.close()
