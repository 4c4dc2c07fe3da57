"""Real boots: time from `server create` to the guest's console marker, for 1 and for N
concurrent guests on one libvirt/QEMU host, with a cold and with a warm image cache.

Each guest's time is split at the moment the API shows it ACTIVE (the agent has started QEMU):
  control plane  create → ACTIVE: API, scheduler, agent, image cache (download + verify on a
                 cold cache), overlay disk, libvirt define + start
  QEMU           ACTIVE → marker: firmware, kernel and /init under QEMU (TCG here)
The marker is watched in the console log file itself (every 20 ms), so console polling through
the API does not blur the split; the API's console output is checked once per round.

Everything but QEMU runs in this process (API on SQLite, agent with the libvirt driver). Needs
root, scripts/install-libvirt and libvirt-python; builds the test image with
scripts/build-test-image.

    .venv/bin/python bench/boot_real.py [--concurrent 10] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kumo.agent.agent import Agent  # noqa: E402
from kumo.agent.drivers.load import load_driver  # noqa: E402
from kumo.config import Settings  # noqa: E402
from kumo.deploy import init_cloud  # noqa: E402
from kumo.server import ThreadedServer  # noqa: E402
from kumo.wiring import build_runtime  # noqa: E402

MARKER = "KUMO-BOOT-OK"
COMPUTE = "/compute/v2.1"
ADMIN_PASSWORD = "bench-admin"


def prepare() -> Path:
    subprocess.run([str(ROOT / "scripts/install-libvirt")], check=True)
    out = subprocess.run([str(ROOT / "scripts/build-test-image")], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def token(url: str) -> str:
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
    resp = httpx.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=30)
    resp.raise_for_status()
    return resp.headers["X-Subject-Token"]


def upload(c: httpx.Client, name: str, path: Path, disk_format: str, **props: str) -> str:
    container = disk_format if disk_format in ("aki", "ari") else "bare"
    image = c.post(
        "/image/v2/images",
        json={
            "name": name,
            "disk_format": disk_format,
            "container_format": container,
            "visibility": "public",
            **props,
        },
    )
    image.raise_for_status()
    image_id = str(image.json()["id"])
    c.put(
        f"/image/v2/images/{image_id}/file",
        content=path.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    ).raise_for_status()
    return image_id


class Host:
    """An in-process agent with the libvirt driver, with its own (initially cold) image cache."""

    def __init__(self, url: str, agent_token: str, state: Path, name: str) -> None:
        self.name = name
        self.driver: Any = load_driver(
            "libvirt", name, api_url=url, token=agent_token, state_dir=state / name, shutdown_timeout=5.0
        )
        self.agent = Agent(url, name, self.driver, agent_token, heartbeat_interval=5, poll_wait=5).start()

    def stop(self) -> None:
        self.agent.stop()
        self.driver.close()


def boot_round(c: httpx.Client, host: Host, image_id: str, flavor_id: str, count: int) -> dict[str, Any]:
    times: dict[str, dict[str, float]] = {}
    lock = threading.Lock()
    start, started_at = time.monotonic(), time.time()

    def create(i: int) -> None:
        t0 = time.monotonic()
        resp = c.post(
            f"{COMPUTE}/servers",
            json={
                "server": {
                    "name": f"bench-{i}",
                    "imageRef": image_id,
                    "flavorRef": flavor_id,
                    "networks": "none",
                    "availability_zone": f":{host.name}",
                }
            },
            headers={"OpenStack-API-Version": "compute 2.37"},
        )
        resp.raise_for_status()
        with lock:
            times[resp.json()["server"]["id"]] = {"create": t0}

    threads = [threading.Thread(target=create, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pending_active, pending_marker = set(times), set(times)
    deadline = time.monotonic() + 600
    while pending_marker and time.monotonic() < deadline:
        if pending_active:
            for server in c.get(f"{COMPUTE}/servers/detail").json()["servers"]:
                if server["id"] in pending_active and server["status"] in ("ACTIVE", "ERROR"):
                    if server["status"] == "ERROR":
                        raise RuntimeError(f"{server['id']} failed: {server.get('fault')}")
                    times[server["id"]]["active"] = time.monotonic()
                    pending_active.discard(server["id"])
        for sid in list(pending_marker):
            log = host.driver.console_log(sid)
            if log.exists() and MARKER in log.read_text(errors="replace"):
                times[sid]["marker"] = time.monotonic()
                pending_marker.discard(sid)
        time.sleep(0.02)
    if pending_marker:
        raise RuntimeError(f"no console marker from {sorted(pending_marker)} in 600 s")
    sample = next(iter(times))
    output = c.post(f"{COMPUTE}/servers/{sample}/action", json={"os-getConsoleOutput": {}}).json()["output"]
    assert MARKER in output, "the API's console output lacks the marker"
    total = [t["marker"] - t["create"] for t in times.values()]
    control = [t["active"] - t["create"] for t in times.values()]
    guest = [t["marker"] - t["active"] for t in times.values()]
    fetched = [e["fetch_seconds"] for e in host.driver.cache.report() if e["fetched_at"] >= started_at]
    for sid in times:
        c.delete(f"{COMPUTE}/servers/{sid}")
    deadline = time.monotonic() + 120
    while any(s["id"] in times for s in c.get(f"{COMPUTE}/servers").json()["servers"]):
        if time.monotonic() > deadline:
            raise RuntimeError("servers were not deleted in 120 s")
        time.sleep(0.2)
    return {
        "guests": count,
        "wall_s": round(max(t["marker"] for t in times.values()) - start, 2),
        "mean_s": round(statistics.mean(total), 2),
        "max_s": round(max(total), 2),
        "control_mean_s": round(statistics.mean(control), 2),
        "qemu_mean_s": round(statistics.mean(guest), 2),
        "control_share": round(sum(control) / sum(total), 3),
        "cache_fetch_s": round(sum(fetched), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrent", type=int, default=10, help="guests booted at once in the big rounds")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    images = prepare()
    state = Path(tempfile.mkdtemp(prefix="kumo-boot-real-"))
    settings = Settings(state_dir=state)
    rt = build_runtime(settings, init_cloud(settings, ADMIN_PASSWORD, "bench-demo"))
    server = ThreadedServer(rt).start()
    results: list[dict[str, Any]] = []
    with httpx.Client(base_url=server.url, headers={"X-Auth-Token": token(server.url)}, timeout=120) as c:
        project = c.get("/identity/v3/auth/projects").json()["projects"][0]["id"]
        unlimited = {"instances": -1, "cores": -1, "ram": -1}
        c.put(f"{COMPUTE}/os-quota-sets/{project}", json={"quota_set": unlimited})
        tiny = {"name": "bench", "vcpus": 1, "ram": 128, "disk": 1}
        flavor = c.post(f"{COMPUTE}/flavors", json={"flavor": tiny})
        flavor_id = flavor.json()["flavor"]["id"]
        kernel = upload(c, "bench-kernel", images / "vmlinux", "aki")
        ramdisk = upload(c, "bench-ramdisk", images / "initrd.img", "ari")
        image_id = upload(
            c,
            "bench-disk",
            images / "disk.raw",
            "raw",
            kernel_id=kernel,
            ramdisk_id=ramdisk,
            os_command_line="console=ttyS0 quiet panic=-1",
        )
        for count in (1, args.concurrent):
            host = Host(server.url, rt.agent_token, state, f"bench-{count}")  # a new host: a cold cache
            try:
                for cache in ("cold", "warm"):
                    result = {"cache": cache, **boot_round(c, host, image_id, flavor_id, count)}
                    results.append(result)
                    print(json.dumps(result), flush=True)
            finally:
                host.stop()
    server.stop()

    print(
        "\n| guests | cache | wall (s) | mean create→marker (s) | max (s) | control plane (s) | QEMU (s) "
        "| control share | image fetch (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['guests']} | {r['cache']} | {r['wall_s']} | {r['mean_s']} | {r['max_s']} | "
            f"{r['control_mean_s']} | {r['qemu_mean_s']} | {r['control_share']:.0%} | "
            f"{r['cache_fetch_s']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
