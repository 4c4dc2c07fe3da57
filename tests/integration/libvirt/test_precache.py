"""Image precache (issue 19) on two real libvirt hosts of one rack: each a libvirtd in its own
network namespace (scripts/libvirt-hosts), its agent's image cache the libvirt driver's own, and
its peer endpoint listening at the host's address inside that namespace, so a peer copy crosses
the bridge between the two hosts as it would cross a rack's switch.

- `openstack aggregate cache image` (2.81) on an aggregate of both: the origin serves each image
  once (the first host, the rack's seed), the second host copies from the first, both caches hold
  verified copies; a guest forced onto the second host then downloads nothing.
- A corrupted copy on the first host (same size, one byte changed) is refused by the second host,
  which falls back to the origin; the first host re-verifies and drops its copy, then copies the
  good one back from the second.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from kumo.agent.agent import Agent
from kumo.agent.drivers.load import load_driver
from kumo.agent.precache import cache_of
from tests.cli.conftest import OpenStackCLI, openstack_binary, write_clouds_yaml
from tests.conftest import Cloud, wait_for
from tests.integration.libvirt.conftest import MARKER, GuestImage, in_whole_lines, upload
from tests.integration.libvirt.test_image_cache import DOWNLOAD_LOG
from tests.integration.libvirt.test_migration import NamespacedHost

COMPUTE = "/compute/v2.1"
PRECACHE = f"{COMPUTE}/os-kumo-image-precache"
INDEXES = (31, 32)  # 10.251.0.41 and .42: apart from test_migration's hosts (1, 2)
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def in_namespace(namespace: str, make: Callable[[], T]) -> T:
    """`make()` run on a short-lived thread moved into network namespace `namespace`: the sockets
    it opens stay there (a socket keeps the namespace it was made in); threads it starts later
    from elsewhere do not move."""
    made: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {namespace}")
            finally:
                os.close(fd)
            made.append(make())
        except BaseException as exc:  # noqa: BLE001 — raised again in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name=f"netns-{namespace}")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


@pytest.fixture(scope="module")
def rack(test_image: GuestImage) -> Iterator[tuple[NamespacedHost, NamespacedHost]]:
    """Two namespaced hosts, named so that the first sorts first (the rack's seed: same disk)."""
    tag = uuid.uuid4().hex[:4]
    hosts = (NamespacedHost(f"pc{tag}a", INDEXES[0]), NamespacedHost(f"pc{tag}b", INDEXES[1]))
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(NamespacedHost.up, hosts))
        yield hosts
    finally:
        for host in hosts:
            host.down()


@dataclass
class Rack:
    cloud: Cloud
    admin: httpx.Client
    hosts: tuple[NamespacedHost, NamespacedHost]
    label: str
    drivers: dict[str, Any] = field(default_factory=dict)
    agents: list[Any] = field(default_factory=list)
    aggregate: int = 0
    servers: list[str] = field(default_factory=list)

    @property
    def names(self) -> tuple[str, str]:
        return self.hosts[0].name, self.hosts[1].name

    def start(self, tmp: Path) -> None:
        """An agent per host (libvirt driver over the host's libvirtd), its peer endpoint at the
        host's own address, both in one rack and one aggregate."""
        token = self.cloud.settings.secret("agent_token")
        for host in self.hosts:
            driver = load_driver(
                "libvirt",
                host.name,
                api_url=self.cloud.url,
                token=token,
                uri=host.uri,
                state_dir=tmp / host.name,
                host_ip=host.address,
                shutdown_timeout=15.0,
            )
            self.drivers[host.name] = driver
            agent = in_namespace(
                f"kumo-{host.name}",
                lambda host=host, driver=driver: Agent(
                    self.cloud.url,
                    host.name,
                    driver,
                    token,
                    heartbeat_interval=2.0,
                    poll_wait=2.0,
                    power_sync_interval=3.0,
                    rack=self.label,
                    image_cache=cache_of(driver, tmp / "unused"),
                    peer_bind=host.address,
                ),
            )
            assert agent.peer is not None and agent.peer.url.startswith(f"http://{host.address}:")
            self.agents.append(agent.start())
        resp = self.admin.post(f"{COMPUTE}/os-aggregates", json={"aggregate": {"name": self.label}})
        assert resp.status_code == 200, resp.text
        self.aggregate = int(resp.json()["aggregate"]["id"])
        for name in self.names:
            resp = self.admin.post(
                f"{COMPUTE}/os-aggregates/{self.aggregate}/action", json={"add_host": {"host": name}}
            )
            assert resp.status_code == 200, resp.text

    def job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        """The job once it has ended."""

        def ended() -> dict[str, Any] | None:
            resp = self.admin.get(f"{PRECACHE}/{job_id}")
            assert resp.status_code == 200, resp.text
            job: dict[str, Any] = resp.json()["job"]
            return job if job["state"] != "running" else None

        return dict(wait_for(ended, timeout=timeout, interval=0.5))

    def cache_report(self, host: str) -> dict[str, dict[str, Any]]:
        """The host's image cache as its agent reports it (os-kumo-image-cache/{host})."""
        resp = self.admin.get(f"{COMPUTE}/os-kumo-image-cache/{host}")
        assert resp.status_code == 200, resp.text
        return {entry["id"]: entry for entry in resp.json()["images"]}

    def cached_file(self, host: str, image_id: str) -> Path:
        return Path(self.drivers[host].cache.root) / image_id

    def stop(self) -> None:
        for agent in self.agents:
            agent.stop()
        for sid in self.servers:
            for driver in self.drivers.values():
                try:
                    driver.destroy({"uuid": sid})
                except Exception:  # noqa: BLE001 — best effort: the namespaces go next
                    pass
        for driver in self.drivers.values():
            driver.close()
        self.admin.close()


@pytest.fixture
def one_rack(cloud: Cloud, tmp_path: Path, rack: tuple[NamespacedHost, NamespacedHost]) -> Iterator[Rack]:
    r = Rack(cloud, cloud.client(), rack, f"rack-{uuid.uuid4().hex[:6]}")
    try:
        r.start(tmp_path)
        yield r
    finally:
        r.stop()


def image_record(admin: httpx.Client, image_id: str) -> dict[str, Any]:
    resp = admin.get(f"/image/v2/images/{image_id}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def sha512(path: Path) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as data:
        while block := data.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def origin_downloads(caplog: pytest.LogCaptureFixture, image_id: str) -> int:
    """How often the origin (the API's /internal/v1/images/{id}/file) served `image_id`."""
    return sum(1 for r in caplog.records if DOWNLOAD_LOG in r.getMessage() and image_id in r.getMessage())


def precache_bytes(cloud: Cloud) -> dict[str, float]:
    """kumo_precache_bytes_total at /metrics, by source (the counter is the process's: compare)."""
    found = {"origin": 0.0, "peer": 0.0}
    for line in httpx.get(f"{cloud.url}/metrics").text.splitlines():
        for source in found:
            if line.startswith(f'kumo_precache_bytes_total{{source="{source}"}} '):
                found[source] = float(line.split()[-1])
    return found


def test_one_origin_copy_per_rack_then_a_boot_that_downloads_nothing(
    one_rack: Rack, test_image: GuestImage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    binary = openstack_binary()
    if binary is None:
        pytest.skip("the openstack CLI is not installed")
    caplog.set_level(logging.INFO, logger="kumo.api")
    osc = OpenStackCLI(binary, write_clouds_yaml(one_rack.cloud, tmp_path / "clouds.yaml"))
    first, second = one_rack.names
    admin = one_rack.admin
    kernel = upload(admin, "pc-kernel", test_image.kernel, "aki", "aki")
    ramdisk = upload(admin, "pc-ramdisk", test_image.initrd, "ari", "ari")
    disk = upload(
        admin,
        "pc-disk",
        test_image.disk_raw,
        "raw",
        kernel_id=kernel,
        ramdisk_id=ramdisk,
        os_command_line=test_image.cmdline,
    )
    images = {i: image_record(admin, i) for i in (disk, kernel, ramdisk)}  # all a boot reads
    total = sum(int(record["size"]) for record in images.values())

    counted = precache_bytes(one_rack.cloud)
    osc.run(
        "--os-compute-api-version", "2.81", "aggregate", "cache", "image", one_rack.label, *images, json=False
    )
    listed = admin.get(PRECACHE, params={"image_id": disk}).json()["jobs"]
    assert len(listed) == 1 and listed[0]["aggregate_id"] == one_rack.aggregate
    job = one_rack.job(listed[0]["job_id"])

    assert job["state"] == "done", job
    assert job["overall_status"] == "2 of 2 hosts done. 0 errors."
    assert job["bytes_from_origin"] == total  # the origin served each image exactly once…
    assert job["bytes_from_peers"] == total  # …and the second host copied every one from the first
    assert job["racks"] == [{"rack": one_rack.label, "seed": first, "done": 6, "total": 6}]
    for row in job["hosts"]:
        size = int(images[row["image_id"]]["size"])
        assert (row["state"], row["bytes"], row["refused"]) == ("cached", size, []), row
        expected = "origin" if row["host"] == first else f"peer:{first}"
        assert row["source"] == expected, row
    for image_id in images:
        assert origin_downloads(caplog, image_id) == 1, image_id  # the origin's side agrees
    metered = precache_bytes(one_rack.cloud)
    assert {k: metered[k] - counted[k] for k in metered} == {"origin": total, "peer": total}

    # Both caches hold verified copies: the agents' reports, and the bytes on each host's disk.
    reports = {host: one_rack.cache_report(host) for host in (first, second)}
    for host, report in reports.items():
        assert set(report) == set(images), host
        for image_id, record in images.items():
            entry = report[image_id]
            assert (entry["hash_algo"], entry["hash_value"]) == (
                record["os_hash_algo"],
                record["os_hash_value"],
            )
            assert (entry["size"], entry["downloads"], entry["instances"]) == (record["size"], 1, [])
            assert entry["source"] == ("origin" if host == first else f"peer:{first}")
            assert entry["pinned_until"] > entry["fetched_at"]
            assert sha512(one_rack.cached_file(host, image_id)) == record["os_hash_value"]

    # A guest forced onto the second host boots from its precached copies: nothing downloaded.
    resp = admin.post(
        f"{COMPUTE}/flavors", json={"flavor": {"name": "pc-tiny", "vcpus": 1, "ram": 128, "disk": 1}}
    )
    assert resp.status_code == 200, resp.text
    resp = admin.post(
        f"{COMPUTE}/servers",
        json={
            "server": {
                "name": "pc-boot",
                "imageRef": disk,
                "flavorRef": resp.json()["flavor"]["id"],
                "networks": "none",
                "availability_zone": f"nova:{second}",
            }
        },
        headers={"OpenStack-API-Version": "compute 2.37"},
    )
    assert resp.status_code == 202, resp.text
    sid = str(resp.json()["server"]["id"])
    one_rack.servers.append(sid)

    def active() -> dict[str, Any] | None:
        server = dict(admin.get(f"{COMPUTE}/servers/{sid}").json()["server"])
        assert server["status"] != "ERROR", server.get("fault")
        return server if server["status"] == "ACTIVE" and server["OS-EXT-STS:task_state"] is None else None

    server = wait_for(active, timeout=90, interval=0.5)
    assert server["OS-EXT-SRV-ATTR:host"] == second

    def console() -> str:
        resp = admin.post(f"{COMPUTE}/servers/{sid}/action", json={"os-getConsoleOutput": {}})
        return str(resp.json()["output"]) if resp.status_code == 200 else ""

    wait_for(lambda: in_whole_lines(console(), MARKER) >= 1, timeout=90, interval=0.5)
    after = one_rack.cache_report(second)
    for image_id, before in reports[second].items():
        entry = after[image_id]
        assert (entry["downloads"], entry["fetched_at"], entry["source"]) == (
            1,
            before["fetched_at"],
            f"peer:{first}",
        ), image_id
        assert entry["instances"] == [sid]
    for image_id in images:
        assert origin_downloads(caplog, image_id) == 1, image_id


def test_a_corrupt_peer_copy_is_refused_and_the_origin_used(
    one_rack: Rack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kumo.api")
    first, second = one_rack.names
    admin = one_rack.admin
    size = 3 * 1024 * 1024 + 5
    image = upload(admin, "pc-blob", os.urandom(size), "raw")
    record = image_record(admin, image)

    # The first host alone holds the image (from the origin)…
    resp = admin.post(PRECACHE, json={"image_ids": [image], "hosts": [first]})
    assert resp.status_code == 202, resp.text
    seeded = one_rack.job(resp.json()["job_id"])
    assert [(h["host"], h["state"], h["source"]) for h in seeded["hosts"]] == [(first, "cached", "origin")]
    # …then its copy rots: same size, one byte changed; its record still says it is good.
    bad = one_rack.cached_file(first, image)
    with open(bad, "r+b") as data:
        data.seek(size // 2)
        byte = data.read(1)
        data.seek(size // 2)
        data.write(bytes([byte[0] ^ 0xFF]))
    assert bad.stat().st_size == size and sha512(bad) != record["os_hash_value"]

    # Precache on the aggregate (2.81, the job found from the response's header): the second
    # host is sent to its rack's holder first, refuses what it gets, and takes the origin's copy.
    with one_rack.cloud.client(microversion="2.81") as c:
        resp = c.post(f"{COMPUTE}/os-aggregates/{one_rack.aggregate}/images", json={"cache": [{"id": image}]})
    assert resp.status_code == 202 and resp.content == b"", resp.text
    job = one_rack.job(resp.headers["X-Kumo-Precache-Job"])

    hosts = {h["host"]: h for h in job["hosts"]}
    receiver = hosts[second]
    assert (receiver["state"], receiver["source"]) == ("cached", "origin"), receiver
    (refusal,) = receiver["refused"]
    assert refusal["peer"] == first and refusal["dropped"] is True, refusal
    assert "verification" in refusal["reason"]
    # The sender re-verified and dropped its bad copy, then copied the good one from the receiver.
    assert (hosts[first]["state"], hosts[first]["source"]) == ("cached", f"peer:{second}"), hosts[first]
    assert (job["state"], job["total_errors"]) == ("done", 0)
    assert job["bytes_from_origin"] == size  # the receiver's fallback only
    assert job["bytes_from_peers"] == 2 * size  # the refused copy, and the repair
    assert origin_downloads(caplog, image) == 2  # the first seed, then the fallback
    for host in (first, second):
        assert sha512(one_rack.cached_file(host, image)) == record["os_hash_value"], host
        entry = one_rack.cache_report(host)[image]
        assert entry["source"] == ("origin" if host == second else f"peer:{second}")
