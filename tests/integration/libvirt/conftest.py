"""Real guests: a kumo API (the `cloud` fixture), an in-process agent with the libvirt driver, and
kumo's own test image (scripts/build-test-image) booted under QEMU (TCG).

Tests here are marked `libvirt` and skip, saying why, when this machine cannot run QEMU
guests through libvirt. The session fixture runs scripts/install-libvirt first (as root: it
installs the Debian packages when missing and starts libvirtd); KUMO_TEST_LIBVIRT=0 skips
them outright.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Cloud, wait_for

ROOT = Path(__file__).resolve().parents[3]
MARKER = "KUMO-BOOT-OK"
COMPUTE = "/compute/v2.1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "libvirt: boots real QEMU guests through libvirt (as root)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.libvirt)


def _skip_reason() -> str | None:
    if os.environ.get("KUMO_TEST_LIBVIRT") == "0":
        return "libvirt tests disabled (KUMO_TEST_LIBVIRT=0)"
    if os.geteuid() != 0:
        return "libvirt tests need root (scripts/install-libvirt installs and starts libvirtd)"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not installed here (it builds against libvirt-dev; see scripts/bootstrap)"
    install = str(ROOT / "scripts" / "install-libvirt")
    done = subprocess.run([install], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return f"scripts/install-libvirt failed: {(done.stderr or done.stdout).strip()[-400:]}"
    probe = subprocess.run(
        ["virsh", "-c", "qemu:///system", "domcapabilities", "--virttype", "qemu"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        return f"libvirt cannot run QEMU (TCG) guests here: {probe.stderr.strip()[-400:]}"
    return None


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path
    disk_raw: Path
    disk_qcow2: Path
    cmdline: str


@pytest.fixture(scope="session")
def test_image() -> GuestImage:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    out = Path(os.environ.get("KUMO_TEST_IMAGE_DIR", "/var/tmp/kumo-test-image"))
    done = subprocess.run(
        [str(ROOT / "scripts" / "build-test-image"), str(out)], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        pytest.skip(f"scripts/build-test-image failed: {done.stderr.strip()[-400:]}")
    manifest = dict(line.split("=", 1) for line in (out / "manifest").read_text().splitlines() if "=" in line)
    return GuestImage(
        out / "vmlinux", out / "initrd.img", out / "disk.raw", out / "disk.qcow2", manifest["os_command_line"]
    )


def upload(
    c: httpx.Client,
    name: str,
    path: Path | bytes,
    disk_format: str,
    container_format: str = "bare",
    **properties: str,
) -> str:
    body = {
        "name": name,
        "disk_format": disk_format,
        "container_format": container_format,
        "visibility": "public",
        **properties,
    }
    resp = c.post("/image/v2/images", json=body)
    assert resp.status_code == 201, resp.text
    image_id = str(resp.json()["id"])
    data = path if isinstance(path, bytes) else path.read_bytes()
    resp = c.put(
        f"/image/v2/images/{image_id}/file",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 204, resp.text
    return image_id


def in_whole_lines(out: str, text: str) -> int:
    """How often `text` occurs in the lines of a console log that a newline has already ended."""
    return sum(line.count(text) for line in out.splitlines(keepends=True) if line.endswith("\n"))


@dataclass
class Hypervisor:
    """One kumo host: the API's admin client, an agent running the libvirt driver, the images."""

    cloud: Cloud
    admin: httpx.Client
    host: str
    driver: Any
    agent: Any
    image_id: str = ""
    kernel_id: str = ""
    ramdisk_id: str = ""
    flavor_id: str = ""
    servers: list[str] = field(default_factory=list)

    def upload_test_image(self, image: GuestImage, disk_format: str = "raw", name: str = "kumo-test") -> str:
        if not self.kernel_id:
            self.kernel_id = upload(self.admin, "kumo-test-kernel", image.kernel, "aki", "aki")
            self.ramdisk_id = upload(self.admin, "kumo-test-ramdisk", image.initrd, "ari", "ari")
        disk = image.disk_raw if disk_format == "raw" else image.disk_qcow2
        return upload(
            self.admin,
            name,
            disk,
            disk_format,
            kernel_id=self.kernel_id,
            ramdisk_id=self.ramdisk_id,
            os_command_line=image.cmdline,
        )

    def create(self, name: str, image_id: str | None = None, flavor_id: str | None = None) -> str:
        resp = self.admin.post(
            f"{COMPUTE}/servers",
            json={
                "server": {
                    "name": name,
                    "imageRef": image_id or self.image_id,
                    "flavorRef": flavor_id or self.flavor_id,
                    "networks": "none",
                }
            },
            headers={"OpenStack-API-Version": "compute 2.37"},
        )
        assert resp.status_code == 202, resp.text
        server_id = str(resp.json()["server"]["id"])
        self.servers.append(server_id)
        return server_id

    def server(self, server_id: str) -> dict[str, Any]:
        resp = self.admin.get(f"{COMPUTE}/servers/{server_id}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json()["server"])

    def wait_status(self, server_id: str, status: str, timeout: float = 90) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            server = self.server(server_id)
            if server["status"] == "ERROR" and status != "ERROR":
                raise AssertionError(f"server {server_id} went to ERROR: {server.get('fault')}")
            settled = server["status"] == status and server.get("OS-EXT-STS:task_state") is None
            return server if settled else None

        return dict(wait_for(reached, timeout=timeout, interval=0.1))

    def console(self, server_id: str, length: int | None = None) -> str:
        body: dict[str, Any] = {"length": length} if length is not None else {}
        resp = self.admin.post(f"{COMPUTE}/servers/{server_id}/action", json={"os-getConsoleOutput": body})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["output"])

    def wait_console(self, server_id: str, text: str, count: int = 1, timeout: float = 60) -> str:
        """The console once `text` appears in `count` complete lines.

        The serial log is read while the guest writes it, so a line may be caught half-written:
        only lines already ended by a newline count.
        """

        return str(
            wait_for(
                lambda: in_whole_lines(out := self.console(server_id), text) >= count and out,
                timeout=timeout,
                interval=0.25,
            )
        )

    def action(self, server_id: str, body: dict[str, Any]) -> httpx.Response:
        resp = self.admin.post(f"{COMPUTE}/servers/{server_id}/action", json=body)
        assert resp.status_code in (200, 202, 204), resp.text
        return resp


def start_hypervisor(
    cloud: Cloud,
    state: Path,
    sync_interval: float = 3.0,
    network: Any = None,
    firewall: Any = None,
    **driver_options: Any,
) -> Hypervisor:
    """A libvirt hypervisor's agent on `cloud`; with `network` (a kumo.agent.netsync.NetworkSync)
    it is also the network host; with `firewall` (a kumo.agent.firewall_sync.FirewallSync) it
    enforces its guests' security groups."""
    from kumo.agent.agent import Agent
    from kumo.agent.drivers.load import load_driver

    host = f"lv-{uuid.uuid4().hex[:6]}"
    token = cloud.settings.secret("agent_token")
    options = {
        "api_url": cloud.url,
        "token": token,
        "state_dir": state,
        "shutdown_timeout": 15.0,
        **driver_options,
    }
    driver = load_driver("libvirt", host, **options)
    agent = Agent(
        cloud.url,
        host,
        driver,
        token,
        heartbeat_interval=2.0,
        poll_wait=2.0,
        power_sync_interval=sync_interval,
        network=network,
        firewall=firewall,
    ).start()
    admin = cloud.client()
    resp = admin.post(
        f"{COMPUTE}/flavors", json={"flavor": {"name": f"tiny-{host}", "vcpus": 1, "ram": 128, "disk": 1}}
    )
    assert resp.status_code == 200, resp.text
    return Hypervisor(cloud, admin, host, driver, agent, flavor_id=str(resp.json()["flavor"]["id"]))


def stop_hypervisor(hv: Hypervisor) -> None:
    hv.agent.stop()
    # Whatever a test left running goes, so guests never outlive their test.
    for directory in sorted(hv.driver.instances_dir.glob("*")):
        try:
            hv.driver.destroy({"uuid": directory.name})
        except Exception:  # noqa: BLE001 — best effort cleanup
            pass
    hv.driver.close()
    hv.admin.close()


@pytest.fixture
def hv(cloud: Cloud, tmp_path: Path, test_image: GuestImage) -> Iterator[Hypervisor]:
    """A kumo cloud with one libvirt hypervisor and the test image uploaded (raw root disk)."""
    h = start_hypervisor(cloud, tmp_path / "host")
    h.image_id = h.upload_test_image(test_image)
    yield h
    stop_hypervisor(h)


def _domain(uuid_: str) -> Any:
    import libvirt

    conn = libvirt.open("qemu:///system")
    try:
        return conn.lookupByUUIDString(uuid_)
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


def domain(uuid_: str) -> str:
    """The domain's XML as libvirt has it; AssertionError when there is no such domain."""
    dom = _domain(uuid_)
    assert dom is not None, f"no libvirt domain {uuid_}"
    return str(dom.XMLDesc(0))


def domain_exists(uuid_: str) -> bool:
    return _domain(uuid_) is not None


def is_active(uuid_: str) -> bool:
    dom = _domain(uuid_)
    return dom is not None and bool(dom.isActive())
