"""`kumo api --workers N` on PostgreSQL: workers share pending instances (SKIP LOCKED) and wake
each other with LISTEN/NOTIFY; a storm ends with every server ACTIVE and nothing doubled. The
same with the scheduling moved out of the API workers into `kumo scheduler` processes, one of
which is killed mid-storm."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from kumo.config import Settings
from kumo.deploy import init_cloud
from kumo.server import free_port
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, wait_for
from tests.functional.test_crash_safety import KUMO, _agent, _assert_consistent, _kill, _statuses, _up


class _Cloud:
    """A `kumo api --workers 2` on PostgreSQL with two fake-driver agents, and an admin client
    with a flavor and an image to boot from."""

    def __init__(self, tmp_path: Path, database_url: str, env: dict[str, str]) -> None:
        self.state = tmp_path / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **env, "KUMO_STATE_DIR": str(self.state), "KUMO_DATABASE_URL": database_url}
        self.url = f"http://127.0.0.1:{free_port()}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [KUMO, *args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.state / f"{args[0]}.log", "ab"),
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def client(self, hypervisors: int = 2) -> tuple[httpx.Client, str, str]:
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
        token = httpx.post(f"{self.url}/identity/v3/auth/tokens", json=body).headers["X-Subject-Token"]
        c = httpx.Client(base_url=self.url, headers={"X-Auth-Token": token}, timeout=60)
        listed = lambda: c.get("/compute/v2.1/os-hypervisors").json()["hypervisors"]  # noqa: E731
        wait_for(lambda: len(listed()) == hypervisors, timeout=30)
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
        )
        c.put(
            f"/image/v2/images/{image.json()['id']}/file",
            content=b"i",
            headers={"Content-Type": "application/octet-stream"},
        )
        return c, str(flavor.json()["flavor"]["id"]), str(image.json()["id"])


@contextmanager
def _cloud(tmp_path: Path, database_url: str, **env: str) -> Iterator[_Cloud]:
    cloud = _Cloud(tmp_path, database_url, env)
    init_cloud(
        Settings(state_dir=cloud.state, database_url=database_url), ADMIN_PASSWORD, DEMO_PASSWORD
    ).dispose()
    try:
        cloud.start("api", "--port", cloud.url.rsplit(":", 1)[1], "--workers", "2")
        wait_for(lambda: _up(cloud.url), timeout=60)
        cloud.processes += [_agent(cloud.url, cloud.state, f"w{i}", delay=0.0) for i in range(2)]
        yield cloud
    finally:
        for process in cloud.processes:
            _kill(process)


def _create(c: httpx.Client, flavor: str, image: str, n: int) -> str:
    body = {"name": f"s{n}", "flavorRef": flavor, "imageRef": image, "networks": "none"}
    resp = c.post("/compute/v2.1/servers", json={"server": body})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["server"]["id"])


@pytest.mark.postgres
def test_storm_over_two_workers_on_postgres(tmp_path: Path, pg_database_url: str) -> None:
    with _cloud(tmp_path, pg_database_url) as cloud:
        c, flavor, image = cloud.client()
        with ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(lambda n: _create(c, flavor, image, n), range(60)))
        wait_for(lambda: _statuses(c)["ACTIVE"] == 60, timeout=90)
    _assert_consistent(pg_database_url, ids)


@pytest.mark.postgres
def test_scheduler_processes_schedule_and_one_killed_mid_storm_loses_nothing(
    tmp_path: Path, pg_database_url: str
) -> None:
    with _cloud(tmp_path, pg_database_url, KUMO_SCHEDULER_IN_API="0") as cloud:
        c, flavor, image = cloud.client()
        first = _create(c, flavor, image, 0)
        time.sleep(2)  # the API workers schedule nothing themselves
        assert (
            c.get(f"/compute/v2.1/servers/{first}").json()["server"]["OS-EXT-STS:task_state"] == "scheduling"
        )
        doomed = cloud.start("scheduler")
        cloud.start("scheduler")
        wait_for(lambda: _statuses(c)["ACTIVE"] == 1, timeout=30)
        with ThreadPoolExecutor(16) as pool:
            creates = [pool.submit(_create, c, flavor, image, n) for n in range(1, 80)]
            wait_for(lambda: _statuses(c)["ACTIVE"] >= 20, timeout=60)
            _kill(doomed)  # mid-storm: its pass dies with it, the other process goes on
            ids = [first, *(create.result() for create in creates)]
        wait_for(lambda: _statuses(c)["ACTIVE"] == 80, timeout=120)
    _assert_consistent(pg_database_url, ids)
