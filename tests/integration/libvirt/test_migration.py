"""Moving real guests between two hypervisor hosts on this machine: each a libvirtd in its own
network and mount namespace (scripts/libvirt-hosts), reached over TCP at addresses that exist
only inside those namespaces. Driven at the driver level: the destination prepares
(prepare_migration), the source moves (migrate)."""

from __future__ import annotations

import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kumo.agent.drivers.base import DriverError
from tests.conftest import Cloud, wait_for
from tests.integration.libvirt.conftest import MARKER, ROOT, GuestImage, in_whole_lines, upload

HOSTS = str(ROOT / "scripts" / "libvirt-hosts")
TICK = re.compile(r"KUMO-TICK ([0-9.]+)")


@dataclass
class NamespacedHost:
    name: str
    index: int
    uri: str = ""

    def up(self) -> str:
        done = subprocess.run(
            [HOSTS, "up", self.name, str(self.index)], capture_output=True, text=True, timeout=90
        )
        if done.returncode != 0:
            # Once seen only under the full suite, reason unknown: start from a clean host once
            # more before giving up (the skip's reason is in the run's summary: pytest -rs).
            self.down()
            done = subprocess.run(
                [HOSTS, "up", self.name, str(self.index)], capture_output=True, text=True, timeout=90
            )
        if done.returncode != 0:
            pytest.skip(f"cannot start a namespaced libvirtd: {done.stderr.strip()[-300:]}")
        self.uri = done.stdout.strip().splitlines()[-1]
        return self.uri

    def kill(self) -> None:
        subprocess.run([HOSTS, "kill", self.name], check=True, timeout=60)

    def down(self) -> None:
        subprocess.run([HOSTS, "down", self.name], check=False, timeout=60)

    @property
    def address(self) -> str:
        return self.uri.split("//")[1].split("/")[0]


@dataclass
class Pair:
    cloud: Cloud
    hosts: tuple[NamespacedHost, NamespacedHost]
    drivers: list[Any]
    spec: dict[str, Any]

    def driver(self, host: NamespacedHost, tmp: Path, **options: Any) -> Any:
        from kumo.agent.drivers.load import load_driver

        driver = load_driver(
            "libvirt",
            host.name,
            api_url=self.cloud.url,
            token=self.cloud.settings.secret("agent_token"),
            uri=host.uri,
            state_dir=tmp / host.name,
            host_ip=host.address,
            shutdown_timeout=15.0,
            **options,
        )
        self.drivers.append(driver)
        return driver


@pytest.fixture(scope="module")
def namespaced_hosts(test_image: GuestImage) -> Iterator[tuple[NamespacedHost, NamespacedHost]]:
    """Two hosts for the module (a libvirtd takes seconds to start); started side by side."""
    tag = uuid.uuid4().hex[:4]
    hosts = (NamespacedHost(f"mig{tag}a", 1), NamespacedHost(f"mig{tag}b", 2))
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(NamespacedHost.up, hosts))
        yield hosts
    finally:
        for host in hosts:
            host.down()


@pytest.fixture
def pair(
    cloud: Cloud, test_image: GuestImage, namespaced_hosts: tuple[NamespacedHost, NamespacedHost]
) -> Iterator[Pair]:
    p = Pair(cloud, namespaced_hosts, [], {})
    try:
        with cloud.client() as admin:
            kernel = upload(admin, "k", test_image.kernel, "aki", "aki")
            ramdisk = upload(admin, "r", test_image.initrd, "ari", "ari")
            image = upload(
                admin,
                "disk",
                test_image.disk_raw,
                "raw",
                kernel_id=kernel,
                ramdisk_id=ramdisk,
                os_command_line=test_image.cmdline,
            )
        p.spec = {
            "uuid": str(uuid.uuid4()),
            "name": "mover",
            "hostname": "mover",
            "project_id": "p",
            "image_ref": image,
            "flavor": {"name": "tiny", "vcpus": 1, "ram": 128, "disk": 1},
            "metadata": {},
        }
        yield p
    finally:
        for driver in p.drivers:
            try:
                driver.destroy({"uuid": p.spec["uuid"]})
            except Exception:  # noqa: BLE001 — the host may be dead: its namespace goes next
                pass
            driver.close()


def ticks(log: Path) -> list[float]:
    return [float(x) for x in TICK.findall(log.read_text(errors="replace"))] if log.exists() else []


def wait_log(log: Path, text: str, timeout: float = 60) -> str:
    return str(
        wait_for(
            lambda: log.exists() and in_whole_lines(out := log.read_text(errors="replace"), text) and out,
            timeout=timeout,
            interval=0.1,
        )
    )


def test_live_migration_keeps_the_guest_running(pair: Pair, tmp_path: Path) -> None:
    a_host, b_host = pair.hosts
    a = pair.driver(a_host, tmp_path, migration_bandwidth=200, migration_max_downtime_ms=300)
    b = pair.driver(b_host, tmp_path)
    sid = pair.spec["uuid"]
    assert a.spawn(pair.spec) == 1
    wait_log(a.console_log(sid), "KUMO-TICK")  # up for 5 s at least
    uptime_before = max(ticks(a.console_log(sid)))

    target = b.prepare_migration(pair.spec)
    assert a.migrate(pair.spec, b_host.name, live=True, target=target) == 1

    assert a.power_states().get(sid) is None and not a.instance_dir(sid).exists()
    assert all(entry["instances"] == [] for entry in a.cache.report())
    assert b.power_states()[sid] == 1
    # The same guest goes on: its uptime keeps counting in the destination's console log, and
    # it never booted there.
    wait_for(lambda: any(t > uptime_before for t in ticks(b.console_log(sid))), timeout=30, interval=0.2)
    assert MARKER not in b.console_log(sid).read_text(errors="replace")
    # It is the destination's for good: stopped and started there, from its disk there.
    assert b.power_off(pair.spec) == 4
    assert b.power_on(pair.spec) == 1
    assert "boots=2" in wait_log(b.console_log(sid), MARKER)


def test_cold_migration_moves_the_disk_and_boots_there(pair: Pair, tmp_path: Path) -> None:
    """As a resize to another host does it: the spec moved with carries a new flavor (more
    memory, a larger disk), and the guest boots there with it, from the disk it had."""
    a_host, b_host = pair.hosts
    a, b = pair.driver(a_host, tmp_path), pair.driver(b_host, tmp_path)
    sid = pair.spec["uuid"]
    a.spawn(pair.spec)
    first = wait_log(a.console_log(sid), MARKER)
    assert "boots=1" in first

    resized = {**pair.spec, "flavor": {"name": "bigger", "vcpus": 1, "ram": 256, "disk": 2}}
    target = b.prepare_migration(resized)
    assert a.migrate(resized, b_host.name, live=False, target=target) == 1
    # Booted on the destination from the disk it had: the guest's boot counter says 2.
    there = wait_log(b.console_log(sid), MARKER)
    assert "boots=2" in there
    assert a.power_states().get(sid) is None
    mem = [int(m) for m in re.findall(r"mem_kb=(\d+)", first + there)]
    disk = [int(m) for m in re.findall(r"disk_bytes=(\d+)", first + there)]
    assert mem[-1] > mem[0] + 100_000 and disk[-1] == 2 * 1024**3 > disk[0]


def test_failed_live_migration_leaves_the_guest_running_on_the_source(pair: Pair, tmp_path: Path) -> None:
    a_host, b_host = pair.hosts
    # 1 MiB/s: 128 MiB of guest RAM take minutes to copy, so the destination dies mid-way.
    a = pair.driver(a_host, tmp_path, migration_bandwidth=1)
    b = pair.driver(b_host, tmp_path)
    sid = pair.spec["uuid"]
    a.spawn(pair.spec)
    wait_log(a.console_log(sid), MARKER)
    target = b.prepare_migration(pair.spec)
    outcome: list[BaseException | int] = []

    def move() -> None:
        try:
            outcome.append(a.migrate(pair.spec, b_host.name, live=True, target=target))
        except BaseException as exc:  # noqa: BLE001 — checked below
            outcome.append(exc)

    mover = threading.Thread(target=move)
    mover.start()
    time.sleep(3)
    b_host.kill()  # the destination's libvirtd and QEMU die mid-migration
    mover.join(timeout=120)
    assert outcome and isinstance(outcome[0], DriverError), outcome
    assert b_host.name in str(outcome[0])
    assert a.power_states()[sid] == 1  # still running on the source…
    seen = len(ticks(a.console_log(sid)))
    wait_for(lambda: len(ticks(a.console_log(sid))) > seen, timeout=30, interval=0.2)  # …and alive

    b_host.up()  # back again: what was prepared there is cleaned up
    b.abort_migration(pair.spec)
    assert not b.instance_dir(sid).exists()


# -- the same moves through the API: an agent per namespaced host, the `openstack` CLI ----------


@dataclass
class Cloud2:
    pair: Pair
    agents: list[Any]
    flavor: str = ""

    def agent(self, host: NamespacedHost, tmp: Path, **options: Any) -> Any:
        from kumo.agent.agent import Agent

        driver = self.pair.driver(host, tmp, **options)
        cloud = self.pair.cloud
        agent = Agent(
            cloud.url,
            host.name,
            driver,
            cloud.settings.secret("agent_token"),
            heartbeat_interval=2.0,
            poll_wait=2.0,
            power_sync_interval=3.0,
        ).start()
        self.agents.append(agent)
        return driver

    def boot_on(self, host: NamespacedHost) -> str:
        with self.pair.cloud.client() as admin:
            if not self.flavor:
                resp = admin.post(
                    "/compute/v2.1/flavors",
                    json={"flavor": {"name": "mig-tiny", "vcpus": 1, "ram": 128, "disk": 1}},
                )
                self.flavor = str(resp.json()["flavor"]["id"])
            resp = admin.post(
                "/compute/v2.1/servers",
                json={
                    "server": {
                        "name": "mover",
                        "imageRef": self.pair.spec["image_ref"],
                        "flavorRef": self.flavor,
                        "networks": "none",
                        "availability_zone": f"nova:{host.name}",
                    }
                },
                headers={"OpenStack-API-Version": "compute 2.37"},
            )
            assert resp.status_code == 202, resp.text
            return str(resp.json()["server"]["id"])

    def server(self, sid: str) -> dict[str, Any]:
        with self.pair.cloud.client() as admin:
            return dict(admin.get(f"/compute/v2.1/servers/{sid}").json()["server"])

    def console(self, sid: str) -> str:
        with self.pair.cloud.client() as admin:
            resp = admin.post(f"/compute/v2.1/servers/{sid}/action", json={"os-getConsoleOutput": {}})
            return str(resp.json()["output"]) if resp.status_code == 200 else ""

    def settled(self, sid: str, timeout: float = 120) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            server = self.server(sid)
            return server if server["OS-EXT-STS:task_state"] is None and server["status"] != "BUILD" else None

        return dict(wait_for(done, timeout=timeout, interval=0.5))


@pytest.fixture
def api_pair(pair: Pair) -> Iterator[Cloud2]:
    c = Cloud2(pair, [])
    try:
        yield c
    finally:
        for agent in c.agents:
            agent.stop()


def test_live_migration_through_the_cli_keeps_the_guest_running(api_pair: Cloud2, tmp_path: Path) -> None:
    from tests.cli.conftest import OpenStackCLI, openstack_binary, write_clouds_yaml

    binary = openstack_binary()
    if binary is None:
        pytest.skip("the openstack CLI is not installed")
    osc = OpenStackCLI(binary, write_clouds_yaml(api_pair.pair.cloud, tmp_path / "clouds.yaml"))
    a_host, b_host = api_pair.pair.hosts
    api_pair.agent(a_host, tmp_path, migration_bandwidth=200, migration_max_downtime_ms=300)
    api_pair.agent(b_host, tmp_path)
    sid = api_pair.boot_on(a_host)
    assert api_pair.settled(sid)["status"] == "ACTIVE"
    wait_for(lambda: "KUMO-TICK" in api_pair.console(sid), timeout=90, interval=0.5)
    uptime_before = max(float(x) for x in TICK.findall(api_pair.console(sid)))

    osc.run("server", "migrate", "--live-migration", "--host", b_host.name, "--wait", sid, json=False)

    server = api_pair.settled(sid)
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", b_host.name)
    # The console now comes from the destination: the same guest, still counting, never rebooted.
    wait_for(
        lambda: any(float(x) > uptime_before for x in TICK.findall(api_pair.console(sid))),
        timeout=30,
        interval=0.5,
    )
    assert MARKER not in api_pair.console(sid)
    events = osc.run("server", "event", "list", sid)
    assert any(e["Action"] == "live-migration" for e in events)


def test_failed_live_migration_through_the_api_leaves_it_active_on_the_source(
    api_pair: Cloud2, tmp_path: Path
) -> None:
    a_host, b_host = api_pair.pair.hosts
    api_pair.agent(a_host, tmp_path, migration_bandwidth=1)  # minutes for 128 MiB: time to kill b
    api_pair.agent(b_host, tmp_path)
    sid = api_pair.boot_on(a_host)
    api_pair.settled(sid)
    wait_for(lambda: MARKER in api_pair.console(sid), timeout=90, interval=0.5)
    with api_pair.pair.cloud.client() as admin:
        resp = admin.post(
            f"/compute/v2.1/servers/{sid}/action",
            json={"os-migrateLive": {"host": b_host.name, "block_migration": "auto"}},
            headers={"OpenStack-API-Version": "compute 2.30"},
        )
        assert resp.status_code == 202, resp.text
    wait_for(lambda: api_pair.server(sid)["OS-EXT-STS:task_state"] == "migrating", timeout=30)
    time.sleep(4)  # the destination prepared and the copy is under way
    b_host.kill()
    try:
        server = api_pair.settled(sid, timeout=180)
        assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", a_host.name)
        with api_pair.pair.cloud.client() as admin:
            listed = admin.get(f"/compute/v2.1/servers/{sid}/os-instance-actions").json()["instanceActions"]
        live = next(a for a in listed if a["action"] == "live-migration")
        assert b_host.name in (live["message"] or ""), live
        seen = len(TICK.findall(api_pair.console(sid)))  # still alive on the source
        wait_for(lambda: len(TICK.findall(api_pair.console(sid))) > seen, timeout=30, interval=0.5)
    finally:
        b_host.up()


def test_cold_migration_through_the_cli_then_resize_confirm(api_pair: Cloud2, tmp_path: Path) -> None:
    from tests.cli.conftest import OpenStackCLI, openstack_binary, write_clouds_yaml

    binary = openstack_binary()
    if binary is None:
        pytest.skip("the openstack CLI is not installed")
    osc = OpenStackCLI(binary, write_clouds_yaml(api_pair.pair.cloud, tmp_path / "clouds.yaml"))
    a_host, b_host = api_pair.pair.hosts
    api_pair.agent(a_host, tmp_path)
    api_pair.agent(b_host, tmp_path)
    sid = api_pair.boot_on(a_host)
    api_pair.settled(sid)
    wait_for(lambda: "boots=1" in api_pair.console(sid), timeout=90, interval=0.5)

    osc.run("server", "migrate", "--host", b_host.name, "--wait", sid, json=False)
    assert api_pair.settled(sid)["status"] == "VERIFY_RESIZE"
    osc.run("server", "resize", "confirm", sid, json=False)
    server = api_pair.settled(sid)
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", b_host.name)
    # Booted on the destination from the disk it had there: the guest counts its second boot.
    wait_for(lambda: "boots=2" in api_pair.console(sid), timeout=90, interval=0.5)
