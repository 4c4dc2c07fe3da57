"""Killing the agent or the API at any moment loses nothing: no lost server, no duplicate, no
leaked allocation once things restart. Processes are real (`kumo agent`, `kumo api`) and are
killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import select

from kumo.compute.models import Instance
from kumo.config import Settings
from kumo.db import Database
from kumo.deploy import init_cloud
from kumo.placement.models import Allocation
from kumo.server import free_port
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, Cloud, wait_for

KUMO = str(Path(sys.executable).parent / "kumo")


def _agent(url: str, state: Path, host: str, delay: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [KUMO, "agent", "--host", host, "--driver", "fake", "--api-url", url, "--fake-delay", str(delay)],
        env={**os.environ, "KUMO_STATE_DIR": str(state)},
        stdout=subprocess.DEVNULL,
        stderr=open(state / f"agent-{host}.log", "ab"),
        start_new_session=True,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything it started (uvicorn's worker processes)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _boot(c: httpx.Client, count: int) -> list[str]:
    project = c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": c.headers["X-Auth-Token"]}).json()
    pid = project["token"]["project"]["id"]
    c.put(f"/compute/v2.1/os-quota-sets/{pid}", json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}})
    flavor = c.post("/compute/v2.1/flavors", json={"flavor": {"name": "f", "vcpus": 1, "ram": 64, "disk": 1}})
    image = c.post(
        "/image/v2/images", json={"name": "i", "disk_format": "raw", "container_format": "bare"}
    ).json()
    c.put(
        f"/image/v2/images/{image['id']}/file",
        content=b"i" * 100,
        headers={"Content-Type": "application/octet-stream"},
    )
    ids = []
    for n in range(count):
        resp = c.post(
            "/compute/v2.1/servers",
            json={
                "server": {
                    "name": f"s{n}",
                    "flavorRef": flavor.json()["flavor"]["id"],
                    "imageRef": image["id"],
                    "networks": "none",
                }
            },
        )
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["server"]["id"])
    return ids


def _statuses(c: httpx.Client) -> Counter[str]:
    return Counter(s["status"] for s in c.get("/compute/v2.1/servers/detail").json()["servers"])


def _assert_consistent(database_url: str, ids: list[str]) -> None:
    db = Database(database_url)
    with db.read() as session:
        instances = list(session.scalars(select(Instance).where(Instance.deleted.is_(False))))
        allocations = list(session.scalars(select(Allocation)))
    db.dispose()
    assert sorted(i.uuid for i in instances) == sorted(ids)  # nothing lost, nothing duplicated
    per_consumer = Counter((a.consumer_id, a.resource_class) for a in allocations)
    assert set(per_consumer.values()) == {1}  # one allocation per class per instance: no leak
    assert {a.consumer_id for a in allocations} == set(ids)


def test_agent_killed_mid_work_finishes_after_restart(cloud: Cloud) -> None:
    state = cloud.settings.state_dir
    agent = _agent(cloud.url, state, "crashy", delay=0.5)
    try:
        with cloud.client() as c:
            wait_for(lambda: c.get("/compute/v2.1/os-hypervisors").json()["hypervisors"], timeout=30)
            ids = _boot(c, 8)
            # Let the agent take work, then kill it while guests are being built.
            wait_for(lambda: _statuses(c)["ACTIVE"] >= 1, timeout=30)
            _kill(agent)
            assert _statuses(c)["BUILD"] > 0
            agent = _agent(cloud.url, state, "crashy", delay=0.05)
            wait_for(lambda: _statuses(c)["ACTIVE"] == 8, timeout=60)
        _assert_consistent(cloud.settings.resolved_database_url, ids)
    finally:
        _kill(agent)


def test_api_killed_mid_storm_loses_nothing(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    init_cloud(settings, ADMIN_PASSWORD, DEMO_PASSWORD).dispose()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "KUMO_STATE_DIR": str(settings.state_dir)}

    def api() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [KUMO, "api", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "api.log", "ab"),
            start_new_session=True,
        )
        wait_for(lambda: _up(url), timeout=30)
        return proc

    server = api()
    agent = _agent(url, settings.state_dir, "steady", delay=0.2)
    try:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        }
        token = httpx.post(f"{url}/identity/v3/auth/tokens", json=body).headers["X-Subject-Token"]
        with httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=30) as c:
            wait_for(lambda: c.get("/compute/v2.1/os-hypervisors").json()["hypervisors"], timeout=30)
            ids = _boot(c, 12)
            _kill(server)  # mid-scheduling / mid-build: tasks and results in flight
            time.sleep(0.5)
            server = api()
            wait_for(lambda: _statuses(c)["ACTIVE"] == 12, timeout=60)
        _assert_consistent(settings.resolved_database_url, ids)
    finally:
        _kill(agent)
        _kill(server)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/compute/", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
