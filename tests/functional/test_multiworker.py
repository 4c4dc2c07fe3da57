"""`kumo api --workers N` on PostgreSQL: workers share pending instances (SKIP LOCKED) and wake
each other with LISTEN/NOTIFY; a storm ends with every server ACTIVE and nothing doubled."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from kumo.config import Settings
from kumo.deploy import init_cloud
from kumo.server import free_port
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, wait_for
from tests.functional.test_crash_safety import KUMO, _agent, _assert_consistent, _kill, _statuses, _up


@pytest.mark.postgres
def test_storm_over_two_workers_on_postgres(tmp_path: Path, pg_database_url: str) -> None:
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
        agents = [_agent(url, settings.state_dir, f"w{i}", delay=0.0) for i in range(2)]
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
        with httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=60) as c:
            wait_for(
                lambda: len(c.get("/compute/v2.1/os-hypervisors").json()["hypervisors"]) == 2, timeout=30
            )
            pid = c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).json()["token"][
                "project"
            ]["id"]
            c.put(
                f"/compute/v2.1/os-quota-sets/{pid}",
                json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}},
            )
            flavor = c.post(
                "/compute/v2.1/flavors", json={"flavor": {"name": "f", "vcpus": 1, "ram": 64, "disk": 1}}
            )
            image = c.post(
                "/image/v2/images", json={"name": "i", "disk_format": "raw", "container_format": "bare"}
            ).json()
            c.put(
                f"/image/v2/images/{image['id']}/file",
                content=b"i",
                headers={"Content-Type": "application/octet-stream"},
            )

            def create(n: int) -> str:
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
                return str(resp.json()["server"]["id"])

            with ThreadPoolExecutor(16) as pool:
                ids = list(pool.map(create, range(60)))
            wait_for(lambda: _statuses(c)["ACTIVE"] == 60, timeout=90)
        _assert_consistent(pg_database_url, ids)
    finally:
        for agent in agents:
            _kill(agent)
        _kill(api)
