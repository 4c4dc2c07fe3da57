"""IPAM under concurrency: many parallel port creates through a real `kumo api --workers 2`, on
PostgreSQL and on SQLite, on a small subnet. No address and no MAC is handed out twice; when the
pool runs out the rest get a clean 409; racing for one explicit address or MAC, exactly one wins."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumo.config import Settings
from kumo.deploy import init_cloud
from kumo.server import free_port
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, wait_for
from tests.functional.test_crash_safety import KUMO, _kill

V2 = "/networking/v2.0"


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/networking", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def two_workers(tmp_path: Path, database_url: str) -> Iterator[httpx.Client]:
    state = tmp_path / "state"
    state.mkdir(parents=True, exist_ok=True)
    init_cloud(Settings(state_dir=state, database_url=database_url), ADMIN_PASSWORD, DEMO_PASSWORD).dispose()
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "KUMO_STATE_DIR": str(state), "KUMO_DATABASE_URL": database_url}
    api = subprocess.Popen(
        [KUMO, "api", "--port", url.rsplit(":", 1)[1], "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(state / "api.log", "ab"),
        start_new_session=True,
    )
    try:
        wait_for(lambda: _up(url), timeout=60)
        auth = {
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
        token = httpx.post(f"{url}/identity/v3/auth/tokens", json=auth).headers["X-Subject-Token"]
        with httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=60) as client:
            yield client
    finally:
        _kill(api)


def _storm(client: httpx.Client) -> None:
    net = client.post(V2 + "/networks", json={"network": {"name": "storm"}}).json()["network"]["id"]
    # /27: hosts .1-.30; gateway .1, DHCP port .2: 28 addresses for ports.
    sub = {"subnet": {"network_id": net, "cidr": "10.40.0.0/27"}}
    assert client.post(V2 + "/subnets", json=sub).status_code == 201

    def create(body: dict[str, Any]) -> httpx.Response:
        return client.post(V2 + "/ports", json={"port": {"network_id": net, **body}})

    with ThreadPoolExecutor(12) as pool:
        # Racing for one explicit address and one explicit MAC: exactly one of each wins.
        same_ip = list(pool.map(create, [{"fixed_ips": [{"ip_address": "10.40.0.30"}]}] * 6))
        same_mac = list(pool.map(create, [{"mac_address": "fa:16:3e:aa:bb:cc"}] * 6))
        # Then more creates than the pool has left.
        storm = list(pool.map(create, [{}] * 34))
    assert sorted(r.status_code for r in same_ip) == [201] + [409] * 5
    assert {r.json()["NeutronError"]["type"] for r in same_ip if r.status_code == 409} == {
        "IpAddressAlreadyAllocated"
    }
    assert sorted(r.status_code for r in same_mac) == [201] + [409] * 5
    assert {r.json()["NeutronError"]["type"] for r in same_mac if r.status_code == 409} == {"MacAddressInUse"}
    # 28 addresses - the explicit .30 - the MAC racer's one = 26 left for the storm.
    statuses = Counter(r.status_code for r in storm)
    assert statuses == {201: 26, 409: 8}, statuses
    assert {r.json()["NeutronError"]["type"] for r in storm if r.status_code == 409} == {
        "IpAddressGenerationFailure"
    }

    ports = client.get(V2 + "/ports", params={"network_id": net}).json()["ports"]
    addresses = [ip["ip_address"] for p in ports for ip in p["fixed_ips"]]
    macs = [p["mac_address"] for p in ports]
    assert len(ports) == 1 + 1 + 1 + 26  # DHCP, the two racers' winners, the storm's
    assert len(set(addresses)) == len(addresses) == 29
    assert len(set(macs)) == len(macs)
    assert sorted(addresses, key=lambda a: int(a.rsplit(".", 1)[1])) == [f"10.40.0.{i}" for i in range(2, 31)]


@pytest.mark.postgres
def test_parallel_port_creates_on_postgres(tmp_path: Path, pg_database_url: str) -> None:
    with two_workers(tmp_path, pg_database_url) as client:
        _storm(client)


def test_parallel_port_creates_on_sqlite(tmp_path: Path) -> None:
    with two_workers(tmp_path, f"sqlite:///{tmp_path / 'state' / 'kumo.db'}") as client:
        _storm(client)
