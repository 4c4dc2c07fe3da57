"""HA groups under concurrency: `kumo api --workers 2` on PostgreSQL, four agents in four racks
over two availability zones, and 20 concurrent creates into each group. The claim-time check
(the group row locked in each claim's transaction, its members re-read) must keep hard groups
spread whatever the two workers' snapshots said, and soft groups balanced."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumo.compute.server_groups import SPREAD_NOT_HONOURED_EVENT
from kumo.config import Settings
from kumo.deploy import init_cloud
from kumo.server import free_port
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, wait_for
from tests.functional.test_crash_safety import KUMO, _kill, _up

RACKS = {"h1": ("r1", "az1"), "h2": ("r2", "az1"), "h3": ("r3", "az2"), "h4": ("r4", "az2")}
CREATES = 20


def _agent(url: str, state: Path, host: str, rack: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            KUMO,
            "agent",
            "--host",
            host,
            "--driver",
            "fake",
            "--api-url",
            url,
            "--rack",
            rack,
            "--region",
            "g1",
        ],
        env={**os.environ, "KUMO_STATE_DIR": str(state)},
        stdout=subprocess.DEVNULL,
        stderr=open(state / f"agent-{host}.log", "ab"),
        start_new_session=True,
    )


def _token(url: str) -> str:
    password = {"user": {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}
    body = {
        "auth": {
            "identity": {"methods": ["password"], "password": password},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    return httpx.post(f"{url}/identity/v3/auth/tokens", json=body).headers["X-Subject-Token"]


def _prepare(c: httpx.Client, token: str) -> tuple[str, str]:
    pid = c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).json()["token"]["project"][
        "id"
    ]
    c.put(f"/compute/v2.1/os-quota-sets/{pid}", json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}})
    for zone, hosts in (("az1", ("h1", "h2")), ("az2", ("h3", "h4"))):
        agg = c.post(
            "/compute/v2.1/os-aggregates", json={"aggregate": {"name": zone, "availability_zone": zone}}
        )
        for host in hosts:
            c.post(
                f"/compute/v2.1/os-aggregates/{agg.json()['aggregate']['id']}/action",
                json={"add_host": {"host": host}},
            )
    flavor = c.post("/compute/v2.1/flavors", json={"flavor": {"name": "f", "vcpus": 1, "ram": 64, "disk": 1}})
    image = c.post(
        "/image/v2/images", json={"name": "i", "disk_format": "raw", "container_format": "bare"}
    ).json()
    c.put(
        f"/image/v2/images/{image['id']}/file",
        content=b"i",
        headers={"Content-Type": "application/octet-stream"},
    )
    return str(flavor.json()["flavor"]["id"]), str(image["id"])


def _storm(
    c: httpx.Client, flavor: str, image: str, policy: str, domain: str, **rules: Any
) -> list[dict[str, Any]]:
    group = c.post(
        "/compute/v2.1/os-server-groups",
        json={
            "server_group": {
                "name": f"{policy}-{domain}",
                "policy": policy,
                "rules": {"failure_domain": domain, **rules},
            }
        },
        headers={"OpenStack-API-Version": "compute 2.64"},
    )
    assert group.status_code == 200, group.text
    gid = group.json()["server_group"]["id"]

    def create(n: int) -> str:
        body = {
            "server": {"name": f"{domain}-{n}", "flavorRef": flavor, "imageRef": image, "networks": "none"},
            "os:scheduler_hints": {"group": gid},
        }
        resp = c.post("/compute/v2.1/servers", json=body)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["server"]["id"])

    with ThreadPoolExecutor(CREATES) as pool:
        ids = list(pool.map(create, range(CREATES)))

    def settled() -> list[dict[str, Any]] | None:
        rows = [c.get(f"/compute/v2.1/servers/{sid}").json()["server"] for sid in ids]
        return rows if all(s["status"] in ("ACTIVE", "ERROR") for s in rows) else None

    result: list[dict[str, Any]] = wait_for(settled, timeout=120, interval=0.5)
    return result


def _domain(server: dict[str, Any], domain: str) -> str:
    rack, zone = RACKS[server["OS-EXT-SRV-ATTR:host"]]
    return rack if domain == "rack" else zone


@pytest.mark.postgres
def test_concurrent_creates_over_two_workers_keep_the_spread(tmp_path: Path, pg_database_url: str) -> None:
    settings = Settings(state_dir=tmp_path / "state", database_url=pg_database_url)
    init_cloud(settings, ADMIN_PASSWORD, DEMO_PASSWORD).dispose()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "KUMO_STATE_DIR": str(settings.state_dir), "KUMO_DATABASE_URL": pg_database_url}
    api = subprocess.Popen(
        [KUMO, "api", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "api.log", "ab"),
        start_new_session=True,
    )
    agents = []
    try:
        wait_for(lambda: _up(url), timeout=60)
        agents = [_agent(url, settings.state_dir, host, rack) for host, (rack, _) in RACKS.items()]
        token = _token(url)
        with httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=60) as c:
            wait_for(
                lambda: len(c.get("/compute/v2.1/os-hypervisors").json()["hypervisors"]) == 4, timeout=30
            )
            flavor, image = _prepare(c, token)
            for domain, spread in (("rack", 4), ("az", 2)):
                servers = _storm(c, flavor, image, "anti-affinity", domain)
                active = [s for s in servers if s["status"] == "ACTIVE"]
                assert len(active) == spread, Counter(s["status"] for s in servers)
                assert len({_domain(s, domain) for s in active}) == spread  # never two in one domain
            # max_server_per_host counts per rack: exactly five in each of the four racks.
            five = _storm(c, flavor, image, "anti-affinity", "rack", max_server_per_host=5)
            assert all(s["status"] == "ACTIVE" for s in five)
            assert sorted(Counter(_domain(s, "rack") for s in five).values()) == [5, 5, 5, 5]
            soft = _storm(c, flavor, image, "soft-anti-affinity", "rack")
            assert all(s["status"] == "ACTIVE" for s in soft)
            per_rack = Counter(_domain(s, "rack") for s in soft)
            assert sorted(per_rack.values()) == [5, 5, 5, 5], per_rack  # as spread as capacity allows
            breached = 0
            for server in soft:
                actions = c.get(f"/compute/v2.1/servers/{server['id']}/os-instance-actions").json()
                req = actions["instanceActions"][0]["request_id"]
                events = c.get(f"/compute/v2.1/servers/{server['id']}/os-instance-actions/{req}").json()
                breached += any(
                    e["event"] == SPREAD_NOT_HONOURED_EVENT for e in events["instanceAction"]["events"]
                )
            assert breached == CREATES - 4  # the first in each rack honoured the spread
    finally:
        for agent in agents:
            _kill(agent)
        _kill(api)
