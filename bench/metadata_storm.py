"""Metadata boot storm (issue 17): N instances in a real kumo (fake driver: control plane only),
each doing cloud-init's crawl (29 requests: the OpenStack tree, then the EC2 tree, one new
connection per request as cloud-init's url_helper makes them) against the metadata responder
over real HTTP, each from its own source address on 127.0.0.0/8 (the (network, source) map
resolves it, as inside a network's namespace).

Scenarios, each against a fresh responder (a cold cache) in a process of its own:
  cached-spread   the crawls start uniformly over --spread seconds (the target: p99 ≤ 100 ms,
                  max ≤ 1 s, 0 errors, ≤ 1 backend read per instance)
  cached-burst    all crawls start at once
  warm-burst      all at once, the bundles read ahead as the data plane plugs the ports
                  (MetadataService.plug) before the load starts: backend reads outside the load
  uncached-spread, uncached-burst   the same with the cache off (ttl 0): every request reads the
                  API (the baseline)
Latency is per request, from connect to the last byte, on the client. A request fails when it
does not answer 200 within cloud-init's 10 s.

    .venv/bin/python bench/metadata_storm.py --instances 1000 --spread 60
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import multiprocessing.connection
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.boot_storm import admin_client, start_cloud
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.config import Settings
from kumo.metadata.bundle import Bundle
from kumo.metadata.client import ApiBundleSource
from kumo.metadata.service import MetadataService

NETWORK = "storm-net"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKc+c6ISht6ng7x7nTRitYVqcSHEtzlto4atNKr2cyu storm@kumo"
USER_DATA = base64.b64encode(b"#cloud-config\nruncmd:\n  - [echo, storm]\n").decode()
TIMEOUT = 10.0  # cloud-init's url_timeout
# cloud-init 22.4's crawl of an OpenStack metadata service (DataSourceOpenStack, then the EC2
# tree it reads as ec2-metadata), in its order.
EC2 = "/2009-04-04/meta-data/"
CRAWL: tuple[str, ...] = (
    "/openstack",  # wait_for_metadata_service's probe
    "/openstack",  # the reader's version list
    "/openstack/2018-08-27/meta_data.json",
    "/openstack/2018-08-27/user_data",
    "/openstack/2018-08-27/vendor_data.json",
    "/openstack/2018-08-27/vendor_data2.json",
    "/openstack/2018-08-27/network_data.json",
    EC2,
    *(
        EC2 + leaf
        for leaf in (
            "ami-id",
            "ami-launch-index",
            "ami-manifest-path",
            "block-device-mapping/",
            "block-device-mapping/ami",
            "block-device-mapping/root",
            "hostname",
            "instance-action",
            "instance-id",
            "instance-type",
            "local-hostname",
            "local-ipv4",
            "placement/",
            "placement/availability-zone",
            "public-hostname",
            "public-ipv4",
            "public-keys/",
            "public-keys/0/openssh-key",
            "reservation-id",
            "security-groups",
        )
    ),
    "/2009-04-04/user-data",
)
SCENARIOS = ("cached-spread", "cached-burst", "warm-burst", "uncached-spread", "uncached-burst")


def source_address(i: int) -> str:
    return f"127.{1 + i // 62500}.{(i // 250) % 250}.{1 + i % 250}"


# -- the responder, in a process of its own ------------------------------------------------------


class _Counting:
    def __init__(self, inner: ApiBundleSource) -> None:
        self.inner = inner
        self.reads = 0

    async def __call__(self, instance_uuid: str) -> Bundle | None:
        self.reads += 1
        return await self.inner(instance_uuid)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _serve(
    api_url: str,
    token: str,
    ttl: float,
    sources: list[tuple[str, str]],
    conn: multiprocessing.connection.Connection,
    warm: bool = False,
) -> None:
    fetch = _Counting(ApiBundleSource(api_url, {AGENT_TOKEN_HEADER: token}, timeout=TIMEOUT))
    service = MetadataService(fetch, ttl=ttl).start()
    for address, instance_uuid in sources:
        if warm:  # as the data plane plugs each port: the bundle read ahead
            service.plug(NETWORK, address, instance_uuid)
        else:
            service.sources.set(NETWORK, address, instance_uuid)
    deadline = time.monotonic() + 120
    while warm and time.monotonic() < deadline and not all(service.is_cached(u) for _, u in sources):
        time.sleep(0.5)
    conn.send(service.listen(NETWORK, "127.0.0.1", 0))
    conn.recv()  # the load is over
    conn.send(fetch.reads)
    service.stop()


@dataclass
class Responder:
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    address: tuple[str, int]

    @classmethod
    def start(
        cls, api_url: str, token: str, ttl: float, sources: list[tuple[str, str]], warm: bool = False
    ) -> Responder:
        ours, theirs = multiprocessing.Pipe()
        process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(api_url, token, ttl, sources, theirs, warm), daemon=True
        )
        process.start()
        return cls(process, ours, ours.recv())

    def stop(self) -> int:
        """Backend reads made."""
        self.conn.send("done")
        reads = int(self.conn.recv())
        self.process.join(30)
        return reads


# -- the load ------------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    crawls: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _get(address: tuple[str, int], source: str, path: str) -> int:
    reader, writer = await asyncio.open_connection(address[0], address[1], local_addr=(source, 0))
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: Cloud-Init/22.4\r\n"
            "Accept: */*\r\nConnection: keep-alive\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        return status
    finally:
        writer.close()


async def _crawl(address: tuple[str, int], source: str, delay: float, tally: Tally) -> None:
    await asyncio.sleep(delay)
    started = time.perf_counter()
    for path in CRAWL:
        t0 = time.perf_counter()
        try:
            status = await asyncio.wait_for(_get(address, source, path), TIMEOUT)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, StopIteration) as exc:
            tally.errors.append(f"{path}: {type(exc).__name__}")
            continue
        tally.latencies.append(time.perf_counter() - t0)
        if status != 200:
            tally.errors.append(f"{path}: {status}")
    tally.crawls.append(time.perf_counter() - started)


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


async def load(address: tuple[str, int], sources: list[str], spread: float) -> Tally:
    tally = Tally()
    step = spread / len(sources) if sources else 0.0
    await asyncio.gather(*(_crawl(address, s, i * step, tally) for i, s in enumerate(sources)))
    return tally


def scenario(api_url: str, token: str, instances: list[str], name: str, spread: float) -> dict[str, Any]:
    cached = not name.startswith("uncached")
    sources = [source_address(i) for i in range(len(instances))]
    responder = Responder.start(
        api_url,
        token,
        15.0 if cached else 0.0,
        list(zip(sources, instances, strict=True)),
        warm=name.startswith("warm"),
    )
    started = time.perf_counter()
    try:
        tally = asyncio.run(load(responder.address, sources, spread if name.endswith("spread") else 0.0))
    finally:
        reads = responder.stop()
    elapsed = time.perf_counter() - started
    ms = [v * 1000 for v in tally.latencies]
    return {
        "scenario": name,
        "instances": len(instances),
        "requests": len(CRAWL) * len(instances),
        "seconds": round(elapsed, 1),
        "requests_per_second": round(len(ms) / elapsed, 1),
        "p50_ms": round(statistics.median(ms), 2) if ms else None,
        "p95_ms": round(_quantile(ms, 0.95), 2),
        "p99_ms": round(_quantile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2) if ms else None,
        "crawl_p99_s": round(_quantile(tally.crawls, 0.99), 3),
        "errors": len(tally.errors),
        "error_samples": sorted(set(tally.errors))[:5],
        "backend_reads": reads,
        "backend_reads_per_instance": round(reads / len(instances), 2),
    }


# -- the cloud -----------------------------------------------------------------------------------


async def create_instances(
    client: httpx.AsyncClient, count: int, concurrency: int = 50, settle: float = 300.0
) -> list[str]:
    """`count` servers with a key pair and user data (what cloud-init fetches), in a project
    without quota limits. They need not be ACTIVE: metadata reads their rows."""
    project = (
        await client.get(
            "/identity/v3/auth/tokens", headers={"X-Subject-Token": client.headers["X-Auth-Token"]}
        )
    ).json()["token"]["project"]["id"]
    quota = {"quota_set": {"instances": -1, "cores": -1, "ram": -1}}
    (await client.put(f"/compute/v2.1/os-quota-sets/{project}", json=quota)).raise_for_status()
    key_name = f"storm-{uuid.uuid4().hex[:6]}"
    resp = await client.post(
        "/compute/v2.1/os-keypairs", json={"keypair": {"name": key_name, "public_key": KEY}}
    )
    resp.raise_for_status()
    flavors = (await client.get("/compute/v2.1/flavors")).json()["flavors"]
    flavor = next((f["id"] for f in flavors if f["name"] == "m1.tiny"), None)
    if flavor is None:
        body = {"flavor": {"name": f"storm-{key_name}", "vcpus": 1, "ram": 64, "disk": 1}}
        flavor = (await client.post("/compute/v2.1/flavors", json=body)).json()["flavor"]["id"]
    images = (await client.get("/image/v2/images")).json()["images"]
    if images:
        image = images[0]["id"]
    else:
        made = await client.post(
            "/image/v2/images", json={"name": "storm", "disk_format": "raw", "container_format": "bare"}
        )
        image = made.json()["id"]
        await client.put(
            f"/image/v2/images/{image}/file",
            content=b"x" * 64,
            headers={"Content-Type": "application/octet-stream"},
        )
    sem = asyncio.Semaphore(concurrency)
    created: list[str] = []

    async def create(i: int) -> None:
        body = {
            "server": {
                "name": f"{key_name}-{i}",
                "flavorRef": flavor,
                "imageRef": image,
                "networks": "none",
                "key_name": key_name,
                "user_data": USER_DATA,
                "metadata": {"index": str(i), "role": "storm"},
            }
        }
        async with sem:
            resp = await client.post("/compute/v2.1/servers", json=body)
        resp.raise_for_status()
        created.append(resp.json()["server"]["id"])

    await asyncio.gather(*(create(i) for i in range(count)))
    # Measure once the scheduler and the agents are done with them (they share the machine).
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        building = await client.get("/compute/v2.1/servers", params={"status": "BUILD", "limit": 1})
        if not building.json()["servers"]:
            break
        await asyncio.sleep(1.0)
    return created


def run_storm(
    api_url: str,
    token: str,
    client: httpx.AsyncClient,
    instances: int,
    spread: float,
    scenarios: Sequence[str],
    settle: float = 300.0,
) -> dict[str, Any]:
    async def create() -> list[str]:
        async with client:
            return await create_instances(client, instances, settle=settle)

    created = asyncio.run(create())
    return {
        "instances": instances,
        "requests_per_crawl": len(CRAWL),
        "spread_seconds": spread,
        "results": [scenario(api_url, token, created, name, spread) for name in scenarios],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=60.0)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated, of " + ", ".join(SCENARIOS)
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        proc: subprocess.Popen[bytes] = start_cloud(state, 18890, args.hosts, "")
        try:
            client = admin_client(state)
            api_url = str(client.base_url).rstrip("/")
            token = Settings(state_dir=state).secret("agent_token")
            report = run_storm(api_url, token, client, args.instances, args.spread, args.scenarios.split(","))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
