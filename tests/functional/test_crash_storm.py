"""A 200-server storm over separate processes on PostgreSQL (`kumo api --workers 2` without
scheduling, two `kumo scheduler` processes, three fake-driver agents), with SIGKILL of the API,
of a scheduler and of an agent mid-storm; the agent never comes back. Afterwards every server is
ACTIVE, ERROR or deleted, nothing is lost, doubled or over capacity, and the dead host's servers
are cleaned up through the API (forced down, evacuated or deleted, then the service deleted)."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from kumo.compute.models import Instance
from kumo.config import Settings
from kumo.db import Database
from kumo.deploy import init_cloud
from kumo.placement.models import Allocation
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, wait_for
from tests.functional.test_crash_safety import _kill, _up
from tests.functional.test_multiworker import _Cloud

SERVERS = 200
RAM_MB = 256
HOST_ROOM = 100  # servers of RAM_MB each host holds (ram allocation ratio 1.5)
HOSTS = ("a0", "a1", "doomed")
NOVA = {"OpenStack-API-Version": "compute 2.64"}


def _agent(cloud: _Cloud, host: str) -> subprocess.Popen[bytes]:
    memory_mb = HOST_ROOM * RAM_MB * 2 // 3
    return cloud.start(
        "agent", "--host", host, "--driver", "fake", "--api-url", cloud.url,
        "--fake-delay", "0.1", "--vcpus", "64", "--memory-mb", str(memory_mb), "--disk-gb", "1000",
    )  # fmt: skip


def _create(c: httpx.Client, flavor: str, image: str, n: int) -> str | None:
    """The server's id, or None when the API died under this request (it may or may not
    exist: the audit finds it by name)."""
    body = {"name": f"s{n}", "flavorRef": flavor, "imageRef": image, "networks": "none"}
    for _attempt in range(3):
        try:
            resp = c.post("/compute/v2.1/servers", json={"server": body})
        except httpx.TransportError:
            return None
        if resp.status_code == 202:
            return str(resp.json()["server"]["id"])
        if resp.status_code < 500:
            raise AssertionError(resp.text)
        time.sleep(0.5)
    return None


def _servers(c: httpx.Client) -> list[dict]:
    return list(c.get("/compute/v2.1/servers/detail", params={"limit": 1000}).json()["servers"])


def _settled(c: httpx.Client, dead_host: str) -> bool:
    """No server building, but those the dead host will never build."""
    return all(s["status"] != "BUILD" or s.get("OS-EXT-SRV-ATTR:host") == dead_host for s in _servers(c))


def _service_id(c: httpx.Client, host: str) -> str:
    services = c.get(
        "/compute/v2.1/os-services", params={"host": host}, headers={"OpenStack-API-Version": "compute 2.53"}
    ).json()["services"]
    return str(next(s["id"] for s in services if s["binary"] == "nova-compute"))


@pytest.mark.postgres
def test_kill_api_scheduler_and_agent_mid_storm(tmp_path: Path, pg_database_url: str) -> None:
    cloud = _Cloud(tmp_path, pg_database_url, {"KUMO_SCHEDULER_IN_API": "0"})
    init_cloud(Settings(state_dir=cloud.state, database_url=pg_database_url), ADMIN_PASSWORD, DEMO_PASSWORD)
    port = cloud.url.rsplit(":", 1)[1]
    try:
        api = cloud.start("api", "--port", port, "--workers", "2")
        wait_for(lambda: _up(cloud.url), timeout=60)
        schedulers = [cloud.start("scheduler"), cloud.start("scheduler")]
        agents = {host: _agent(cloud, host) for host in HOSTS}
        c, _flavor, image = cloud.client(hypervisors=len(HOSTS))
        flavor = c.post(
            "/compute/v2.1/flavors", json={"flavor": {"name": "storm", "vcpus": 1, "ram": RAM_MB, "disk": 1}}
        ).json()["flavor"]["id"]

        with ThreadPoolExecutor(16) as pool:
            first = list(pool.map(lambda n: _create(c, flavor, image, n), range(SERVERS // 2)))
            wait_for(lambda: Counter(s["status"] for s in _servers(c))["ACTIVE"] >= 20, timeout=120)
            _kill(api)  # mid-storm: requests, placements and results in flight
            api = cloud.start("api", "--port", port, "--workers", "2")
            wait_for(lambda: _up(cloud.url), timeout=60)
            creates = [pool.submit(_create, c, flavor, image, n) for n in range(SERVERS // 2, SERVERS)]
            _kill(schedulers[0])  # its pass dies with it; the other scheduler goes on
            wait_for(
                lambda: sum(s.get("OS-EXT-SRV-ATTR:host") == "doomed" for s in _servers(c)) >= 10,
                timeout=120,
            )
            _kill(agents["doomed"])  # for good
            second = [create.result() for create in creates]
        ids = {i for i in first + second if i}
        assert len(ids) >= SERVERS - 10  # a few creates may have died with the API

        wait_for(lambda: _settled(c, "doomed"), timeout=240, interval=1)
        deleted = _clean_up_dead_host(c, "doomed")
        servers = _servers(c)
        assert {s["status"] for s in servers} <= {"ACTIVE", "ERROR"}
        assert not any(s.get("OS-EXT-SRV-ATTR:host") == "doomed" for s in servers)
        _audit(pg_database_url, ids, deleted, c)
    finally:
        for process in cloud.processes:
            _kill(process)


def _clean_up_dead_host(c: httpx.Client, host: str) -> set[str]:
    """As an operator would: force the host down, evacuate a few of its ACTIVE servers, delete
    the rest, then delete its compute service. Returns the servers deleted."""
    service = _service_id(c, host)
    v253 = {"OpenStack-API-Version": "compute 2.53"}
    resp = c.put(f"/compute/v2.1/os-services/{service}", json={"forced_down": True}, headers=v253)
    assert resp.status_code == 200, resp.text
    on_host = [s for s in _servers(c) if s.get("OS-EXT-SRV-ATTR:host") == host]
    assert on_host
    active = [s for s in on_host if s["status"] == "ACTIVE"]
    # The survivors' heartbeats may have missed the API's restart: evacuate once they are up.
    wait_for(lambda: _up_hosts(c) == {"a0", "a1"}, timeout=60, interval=0.5)
    evacuated = {s["id"] for s in active[:5]}
    for server_id in evacuated:
        resp = c.post(f"/compute/v2.1/servers/{server_id}/action", json={"evacuate": {}}, headers=NOVA)
        assert resp.status_code == 200, resp.text
    deleted = {s["id"] for s in on_host} - evacuated
    for server_id in deleted:
        assert c.delete(f"/compute/v2.1/servers/{server_id}").status_code == 204
    wait_for(
        lambda: all(
            s["status"] in ("ACTIVE", "ERROR") and s.get("OS-EXT-SRV-ATTR:host") != host for s in _servers(c)
        ),
        timeout=120,
        interval=0.5,
    )
    moved = {s["id"]: s for s in _servers(c) if s["id"] in evacuated}
    assert {s["status"] for s in moved.values()} == {"ACTIVE"}  # rebuilt elsewhere
    assert c.delete(f"/compute/v2.1/os-services/{service}", headers=v253).status_code == 204
    assert not c.get("/compute/v2.1/os-services", params={"host": host}).json()["services"]
    return deleted


def _up_hosts(c: httpx.Client) -> set[str]:
    services = c.get("/compute/v2.1/os-services", params={"binary": "nova-compute"}).json()["services"]
    return {s["host"] for s in services if s["state"] == "up"}


def _audit(database_url: str, ids: set[str], deleted: set[str], c: httpx.Client) -> None:
    db = Database(database_url)
    with db.read() as session:
        live = list(session.scalars(select(Instance).where(Instance.deleted.is_(False))))
        allocations = list(session.scalars(select(Allocation)))
    db.dispose()
    names = Counter(i.name for i in live)
    assert max(names.values()) == 1  # nothing doubled
    live_ids = {i.uuid for i in live}
    # Nothing lost: every accepted server is alive, or was on the dead host and deleted by us.
    assert ids - live_ids == deleted
    assert not live_ids & deleted
    assert all(i.host in (None, "a0", "a1") for i in live)
    per_consumer = Counter((a.consumer_id, a.resource_class) for a in allocations)
    assert set(per_consumer.values()) == {1}  # one allocation per class per server: no leak
    holders = {a.consumer_id for a in allocations}
    active = {i.uuid for i in live if i.vm_state == "active"}
    assert active <= holders  # every ACTIVE server holds its claim
    assert not holders & deleted  # deleted servers hold nothing
    assert holders <= live_ids
    _assert_within_capacity(c)


def _assert_within_capacity(c: httpx.Client) -> None:
    placement = {"OpenStack-API-Version": "placement 1.35"}
    providers = c.get("/placement/resource_providers", headers=placement).json()["resource_providers"]
    assert sorted(p["name"] for p in providers) == ["a0", "a1"]  # the dead host's provider went with it
    for provider in providers:
        inventories = c.get(
            f"/placement/resource_providers/{provider['uuid']}/inventories", headers=placement
        ).json()["inventories"]
        usages = c.get(f"/placement/resource_providers/{provider['uuid']}/usages", headers=placement).json()[
            "usages"
        ]
        for rc, used in usages.items():
            inv = inventories[rc]
            assert used <= (inv["total"] - inv["reserved"]) * inv["allocation_ratio"], (provider["name"], rc)
