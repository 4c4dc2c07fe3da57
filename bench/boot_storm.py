"""Boot storm: N concurrent `server create` calls through the API against an all-in-one kumo
(API + fake agents in one process, run as a subprocess), timed until every server is ACTIVE.

Baseline, measured in the same run against the same API: the rate of a trivial authenticated
request (GET /compute/v2.1/flavors) at the same concurrency. The ratio says how close a whole
create → schedule → claim → agent → ACTIVE cycle gets to the API's floor cost per request.

    .venv/bin/python bench/boot_storm.py --servers 500 --concurrency 50 [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml


def start_cloud(state: Path, port: int, hosts: int, database_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUMO_STATE_DIR": str(state), "KUMO_DATABASE_URL": database_url}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kumo.cli",
            "up",
            "--state-dir",
            str(state),
            "--port",
            str(port),
            "--hosts",
            str(hosts),
            "--no-demo",
            "--driver",
            "fake",  # the storm measures the control plane: no real guests
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(state / "up.log", "wb"),
    )
    deadline = time.monotonic() + 120
    while not (state / "clouds.yaml").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("kumo up failed: " + (state / "up.log").read_text()[-2000:])
        time.sleep(0.2)
    return proc


def admin_client(state: Path) -> httpx.AsyncClient:
    auth = yaml.safe_load((state / "clouds.yaml").read_text())["clouds"]["kumo"]["auth"]
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": auth["username"],
                        "domain": {"id": "default"},
                        "password": auth["password"],
                    }
                },
            },
            "scope": {"project": {"name": auth["project_name"], "domain": {"id": "default"}}},
        }
    }
    base = auth["auth_url"].rsplit("/identity", 1)[0]
    token = httpx.post(f"{base}/identity/v3/auth/tokens", json=body).headers["X-Subject-Token"]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    return httpx.AsyncClient(
        base_url=base,
        headers={"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.64"},
        timeout=120,
        limits=limits,
    )


async def baseline(client: httpx.AsyncClient, requests: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            (await client.get("/compute/v2.1/flavors")).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    return requests / (time.perf_counter() - started)


async def storm(client: httpx.AsyncClient, servers: int, concurrency: int) -> dict[str, Any]:
    project = (
        await client.get(
            "/identity/v3/auth/tokens", headers={"X-Subject-Token": client.headers["X-Auth-Token"]}
        )
    ).json()["token"]["project"]["id"]
    (
        await client.put(
            f"/compute/v2.1/os-quota-sets/{project}",
            json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}},
        )
    ).raise_for_status()
    flavor = next(
        f for f in (await client.get("/compute/v2.1/flavors")).json()["flavors"] if f["name"] == "m1.tiny"
    )
    image = (await client.get("/image/v2/images", params={"name": "demo-image"})).json()["images"][0]["id"]
    tag = uuid.uuid4().hex[:6]
    sem = asyncio.Semaphore(concurrency)
    errors: list[str] = []
    latencies: list[float] = []

    async def create(i: int) -> None:
        async with sem:
            t0 = time.perf_counter()
            resp = await client.post(
                "/compute/v2.1/servers",
                json={
                    "server": {
                        "name": f"storm-{tag}-{i}",
                        "flavorRef": flavor["id"],
                        "imageRef": image,
                        "networks": "none",
                    }
                },
            )
            latencies.append(time.perf_counter() - t0)
            if resp.status_code != 202:
                errors.append(f"{resp.status_code} {resp.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(create(i) for i in range(servers)))
    accepted = time.perf_counter() - started
    active = error = 0
    while True:
        body = (
            await client.get(
                "/compute/v2.1/servers/detail", params={"name": f"^storm-{tag}-", "limit": servers + 10}
            )
        ).json()["servers"]
        active = sum(s["status"] == "ACTIVE" for s in body)
        error = sum(s["status"] == "ERROR" for s in body)
        if active + error >= servers - len(errors) or time.perf_counter() - started > 600:
            break
        await asyncio.sleep(1.0)
    elapsed = time.perf_counter() - started
    return {
        "servers": servers,
        "concurrency": concurrency,
        "api_errors": len(errors),
        "error_samples": errors[:3],
        "active": active,
        "error_state": error,
        "seconds_to_all_active": round(elapsed, 2),
        "servers_per_second": round(active / elapsed, 1),
        "seconds_to_accept_all": round(accepted, 2),
        "create_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "create_p99_ms": round(sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1000, 1),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far, threads included (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def create_pg_database() -> str | None:
    try:
        name = f"kumo_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    except Exception as exc:  # PostgreSQL absent: report SQLite only
        print(f"PostgreSQL unavailable ({exc}); skipping its run", file=sys.stderr)
        return None


def run(backend: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        port = 18780 + (hash(backend) % 100)
        proc = start_cloud(state, port, args.hosts, database_url)
        try:

            async def go() -> dict[str, Any]:
                async with admin_client(state) as client:
                    cpu0 = cpu_seconds(proc.pid)
                    base = await baseline(client, args.servers, args.concurrency)
                    cpu1 = cpu_seconds(proc.pid)
                    result = await storm(client, args.servers, args.concurrency)
                    cpu2 = cpu_seconds(proc.pid)
                    result["baseline_get_flavors_per_second"] = round(base, 1)
                    result["ratio_creates_to_baseline"] = round(result["servers_per_second"] / base, 3)
                    # CPU of the cloud's process (API, scheduler, agents): steadier than rates on
                    # a shared machine. The baseline makes `servers` GETs.
                    result["cloud_cpu_ms_per_server"] = round((cpu2 - cpu1) * 1000 / args.servers, 2)
                    result["cloud_cpu_ms_per_baseline_get"] = round((cpu1 - cpu0) * 1000 / args.servers, 2)
                    return result

            result = asyncio.run(go())
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    result["backend"] = backend
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    args = parser.parse_args()
    results = [run("sqlite", "", args)]
    if args.postgres and (url := create_pg_database()):
        results.append(run("postgresql", url, args))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
