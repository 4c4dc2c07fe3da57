"""`kumo up`: the whole cloud in one process, driven through its own public API."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console

from kumo.agent.agent import Agent
from kumo.agent.drivers import load_driver
from kumo.config import Settings
from kumo.deploy import init_cloud
from kumo.runtime import build_runtime
from kumo.server import ThreadedServer

console = Console()
ZONES = ("az1", "az2")


def write_clouds_yaml(path: Path, url: str, region: str, admin_password: str, demo_password: str) -> None:
    def cloud(user: str, password: str, project: str) -> dict[str, Any]:
        return {
            "auth": {
                "auth_url": f"{url}/identity",
                "username": user,
                "password": password,
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": region,
            "identity_api_version": 3,
        }

    doc = {
        "clouds": {
            "kumo": cloud("admin", admin_password, "admin"),
            "kumo-demo": cloud("demo", demo_password, "demo"),
        }
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)


def token(url: str, user: str, password: str, project: str) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }
    }
    resp = httpx.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=30)
    resp.raise_for_status()
    return resp.headers["X-Subject-Token"]


def ensure_zones(admin: httpx.Client, host_names: list[str]) -> None:
    existing = {a["name"]: a for a in admin.get("/compute/v2.1/os-aggregates").json()["aggregates"]}
    for index, zone in enumerate(ZONES):
        agg = existing.get(zone)
        if agg is None:
            resp = admin.post(
                "/compute/v2.1/os-aggregates", json={"aggregate": {"name": zone, "availability_zone": zone}}
            )
            resp.raise_for_status()
            agg = resp.json()["aggregate"]
            agg["hosts"] = []
        for host in host_names[index :: len(ZONES)]:
            if host not in agg.get("hosts", []):
                admin.post(
                    f"/compute/v2.1/os-aggregates/{agg['id']}/action", json={"add_host": {"host": host}}
                ).raise_for_status()


def ensure_flavors(admin: httpx.Client) -> None:
    names = {f["name"] for f in admin.get("/compute/v2.1/flavors").json()["flavors"]}
    for name, vcpus, ram, disk in (
        ("m1.tiny", 1, 512, 1),
        ("m1.small", 1, 2048, 20),
        ("m1.medium", 2, 4096, 40),
    ):
        if name not in names:
            admin.post(
                "/compute/v2.1/flavors",
                json={"flavor": {"name": name, "vcpus": vcpus, "ram": ram, "disk": disk}},
            ).raise_for_status()


def ensure_image(admin: httpx.Client) -> str:
    found = admin.get("/image/v2/images", params={"name": "demo-image"}).json()["images"]
    if found and found[0]["status"] == "active":
        return str(found[0]["id"])
    image = admin.post(
        "/image/v2/images",
        json={"name": "demo-image", "disk_format": "raw", "container_format": "bare", "visibility": "public"},
    ).json()
    admin.put(
        f"/image/v2/images/{image['id']}/file",
        content=b"\0" * 1024 * 1024,
        headers={"Content-Type": "application/octet-stream"},
    ).raise_for_status()
    return str(image["id"])


def boot_demo(url: str, demo_token: str, image_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=url, headers={"X-Auth-Token": demo_token}, timeout=30) as demo:
        flavor = next(
            f for f in demo.get("/compute/v2.1/flavors").json()["flavors"] if f["name"] == "m1.tiny"
        )
        resp = demo.post(
            "/compute/v2.1/servers",
            json={
                "server": {
                    "name": "demo-server",
                    "flavorRef": flavor["id"],
                    "imageRef": image_id,
                    "networks": "none",
                }
            },
            headers={"OpenStack-API-Version": "compute 2.37"},
        )
        resp.raise_for_status()
        server_id = resp.json()["server"]["id"]
        with console.status("booting demo-server …"):
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                server = demo.get(f"/compute/v2.1/servers/{server_id}").json()["server"]
                if server["status"] in ("ACTIVE", "ERROR"):
                    return dict(server)
                time.sleep(0.2)
    raise RuntimeError("demo server did not become ACTIVE in 120 s")


def run_all_in_one(settings: Settings, port: int, host_count: int, demo: bool, exit_after_demo: bool) -> None:
    admin_password = settings.secret("admin_password")
    demo_password = settings.secret("demo_password")
    with console.status("migrating and bootstrapping the database …"):
        db = init_cloud(settings, admin_password, demo_password)
    rt = build_runtime(settings, db)
    server = ThreadedServer(rt, port=port).start()
    url = server.url
    console.print(f"[green]API[/] listening on {url} (database {settings.resolved_database_url})")
    host_names = [f"compute-{i + 1}" for i in range(host_count)]
    agents = [
        Agent(url, name, load_driver("fake", name), rt.agent_token, heartbeat_interval=5).start()
        for name in host_names
    ]
    console.print(f"[green]agents[/] {', '.join(host_names)} (fake driver) registered")
    admin_token = token(url, "admin", admin_password, "admin")
    with httpx.Client(base_url=url, headers={"X-Auth-Token": admin_token}, timeout=30) as admin:
        ensure_zones(admin, host_names)
        ensure_flavors(admin)
        image_id = ensure_image(admin)
    clouds = settings.state_dir / "clouds.yaml"
    write_clouds_yaml(clouds, url, settings.region, admin_password, demo_password)
    if demo:
        result = boot_demo(url, token(url, "demo", demo_password, "demo"), image_id)
        zone = result["OS-EXT-AZ:availability_zone"]
        console.print(f"[green]demo-server[/] {result['id']} is {result['status']} in {zone}")
    console.print(f"""
Next:
  export OS_CLIENT_CONFIG_FILE={clouds}
  openstack --os-cloud kumo server list --all-projects
  openstack --os-cloud kumo-demo server create --flavor m1.tiny --image demo-image --wait my-server
  openstack --os-cloud kumo hypervisor list
Press Ctrl-C to stop.""")
    stop = threading.Event()
    if not exit_after_demo:
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
    for a in agents:
        a.stop()
    server.stop()
