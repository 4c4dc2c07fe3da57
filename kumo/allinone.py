"""`kumo up`: the whole cloud in one process, driven through its own public API."""

from __future__ import annotations

import ipaddress
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from rich.console import Console

from kumo.agent.agent import Agent
from kumo.agent.drivers import libvirt as libvirt_driver
from kumo.agent.drivers.load import load_driver
from kumo.agent.firewall_sync import firewall_role
from kumo.agent.netsync import NetworkSync, UnavailableDataPlane, network_role
from kumo.agent.network import links
from kumo.agent.network.run import NetworkError
from kumo.agent.network.spec import host_gateway_name
from kumo.agent.precache import cache_of
from kumo.baremetal import allinone as baremetal_demo
from kumo.canary.loop import CANARY_PROJECT, CANARY_USER, CanaryLoop, ensure_canary_user, resolve_spec
from kumo.canary.policy import policy_from
from kumo.config import Settings, write_private
from kumo.deploy import init_cloud
from kumo.server import ThreadedServer
from kumo.wiring import build_runtime

T = TypeVar("T")

console = Console()
ZONES = ("az1", "az2")
REAL_FLAVOR = "r1.tiny"  # lands on the libvirt hypervisor only (aggregate_instance_extra_specs)
REAL_IMAGE = "kumo-test-image"
# Where the network host's files (dnsmasq's hosts directories, leases) live: searchable by the
# user dnsmasq drops to, as `kumo agent --network-state-dir`'s default is.
NETWORK_STATE_ROOT = Path("/var/lib/kumo/network")
# The demo network, as devstack's: shared and external, its gateway on this machine.
PUBLIC_NETWORK = "public"
PUBLIC_SUBNET = "public-subnet"
PUBLIC_CIDR = "172.24.4.0/24"
NETWORKING = "/networking/v2.0"


@dataclass(frozen=True)
class PublicNetwork:
    id: str
    cidr: str
    gateway: str


def public_gateway(cidr: str) -> str:
    """The subnet's gateway: its first host address, "ip/prefixlen". SystemExit when `cidr` is
    not an IPv4 subnet with room for a gateway, a DHCP port and guests."""
    try:
        network = ipaddress.IPv4Network(cidr)
    except ValueError as exc:
        raise SystemExit(f"--public-network {cidr}: {exc}") from None
    if network.prefixlen > 29:
        raise SystemExit(f"--public-network {cidr}: too small (at most a /29)")
    return f"{next(network.hosts())}/{network.prefixlen}"


def check_public_cidr(cidr: str, routes: list[links.Route]) -> None:
    """SystemExit, naming the route, when this machine already routes part of `cidr`: its
    gateway on this machine would take that traffic (or lose it)."""
    conflicts = links.route_conflicts([public_gateway(cidr)], routes)
    if conflicts:
        raise SystemExit(
            f"the public network {cidr} overlaps this machine's route(s) {'; '.join(conflicts)}: "
            "choose a free subnet with --public-network CIDR"
        )


def ensure_public_network(admin: httpx.Client, cidr: str) -> PublicNetwork:
    """The shared external network `public` with its subnet (devstack's `public`): the one that
    exists (its own subnet, whatever `cidr` says), else made, after checking `cidr` against this
    machine's routes. Its gateway (the subnet's first address) is this machine's."""
    found = admin.get(
        f"{NETWORKING}/networks", params={"name": PUBLIC_NETWORK, "router:external": "true"}
    ).json()["networks"]
    if found:
        network_id = str(found[0]["id"])
        subnets = admin.get(f"{NETWORKING}/subnets", params={"network_id": network_id}).json()["subnets"]
        if subnets:
            return PublicNetwork(network_id, subnets[0]["cidr"], subnets[0]["gateway_ip"])
    gateway = public_gateway(cidr)
    check_public_cidr(cidr, links.routes())
    if not found:
        body = {"network": {"name": PUBLIC_NETWORK, "shared": True, "router:external": True}}
        resp = admin.post(f"{NETWORKING}/networks", json=body)
        resp.raise_for_status()
        network_id = str(resp.json()["network"]["id"])
    body = {
        "subnet": {
            "name": PUBLIC_SUBNET,
            "network_id": network_id,
            "ip_version": 4,
            "cidr": cidr,
            "gateway_ip": gateway.split("/")[0],
        }
    }
    resp = admin.post(f"{NETWORKING}/subnets", json=body)
    resp.raise_for_status()
    subnet = resp.json()["subnet"]
    return PublicNetwork(network_id, subnet["cidr"], subnet["gateway_ip"])


def wait_reachable(network: NetworkSync, public: PublicNetwork, timeout: float = 60) -> tuple[bool, str]:
    """Whether this machine holds the public network's gateway (the network host applied it)
    within `timeout`, and a line saying so, or why not."""
    if isinstance(network.plane, UnavailableDataPlane):
        return False, f"[yellow]not reachable from this machine[/]: {network.plane.reason}"
    prefixlen = ipaddress.IPv4Network(public.cidr).prefixlen
    wanted = f"{public.gateway}/{prefixlen}"
    device = host_gateway_name(public.id)
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for {public.gateway} on this machine …"):
        while time.monotonic() < deadline:
            try:
                if wanted in links.addresses(None, device):
                    return True, f"gateway {public.gateway} on this machine ({device}): guests are reachable"
            except NetworkError:
                pass  # not made yet
            failure = network.failures.get(public.id)
            if failure is not None:  # e.g. a route of this machine over the subnet
                return False, f"[yellow]not reachable from this machine[/]: {failure}"
            time.sleep(0.2)
    return (
        False,
        f"[yellow]not reachable from this machine yet[/]: no {wanted} on {device} after {timeout:.0f} s",
    )


def choose_driver(requested: str) -> tuple[str, str]:
    """The driver of the all-in-one's first hypervisor and a line saying why: `auto` takes
    libvirt when this machine can run QEMU guests through it, else the fake driver."""
    if requested == "fake":
        return "fake", "fake driver (asked for)"
    reason = libvirt_driver.unusable_reason()
    if reason is None:
        return "libvirt", "libvirt/QEMU: real guests"
    if requested == "libvirt":
        raise SystemExit(f"libvirt was asked for but is not usable here: {reason}")
    return "fake", f"libvirt is not usable here ({reason}); falling back to the fake driver"


def test_image_files(image_dir: Path | None) -> dict[str, Path | str] | None:
    """kumo's bootable test guest (scripts/build-test-image), when it has been built."""
    if image_dir is None or not (image_dir / "manifest").is_file():
        return None
    manifest = dict(
        line.split("=", 1) for line in (image_dir / "manifest").read_text().splitlines() if "=" in line
    )
    return {
        "kernel": image_dir / "vmlinux",
        "ramdisk": image_dir / "initrd.img",
        "disk": image_dir / "disk.raw",
        "cmdline": manifest.get("os_command_line", "console=ttyS0"),
    }


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
    write_private(path, yaml.safe_dump(doc, sort_keys=False))  # it holds the passwords


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


def _upload(admin: httpx.Client, name: str, data: bytes, disk_format: str, **properties: str) -> str:
    container = disk_format if disk_format in ("aki", "ari") else "bare"
    body = {"name": name, "disk_format": disk_format, "container_format": container, "visibility": "public"}
    image = admin.post("/image/v2/images", json={**body, **properties})
    image.raise_for_status()
    image_id = str(image.json()["id"])
    admin.put(
        f"/image/v2/images/{image_id}/file",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    ).raise_for_status()
    return image_id


def ensure_driver_aggregate(admin: httpx.Client, driver: str, hosts: list[str]) -> None:
    """An aggregate `driver` (metadata kumo_driver=<driver>) holding `hosts`, so flavors can
    say which kind of hypervisor they want (aggregate_instance_extra_specs)."""
    aggs = {a["name"]: a for a in admin.get("/compute/v2.1/os-aggregates").json()["aggregates"]}
    agg = aggs.get(driver)
    if agg is None:
        created = admin.post("/compute/v2.1/os-aggregates", json={"aggregate": {"name": driver}})
        created.raise_for_status()
        agg = created.json()["aggregate"]
        admin.post(
            f"/compute/v2.1/os-aggregates/{agg['id']}/action",
            json={"set_metadata": {"metadata": {"kumo_driver": driver}}},
        ).raise_for_status()
    for host in hosts:
        if host not in agg.get("hosts", []):
            admin.post(
                f"/compute/v2.1/os-aggregates/{agg['id']}/action", json={"add_host": {"host": host}}
            ).raise_for_status()


def ensure_real_guest(
    admin: httpx.Client, files: dict[str, Path | str], libvirt_host: str, fake_hosts: list[str]
) -> str:
    """The test guest's images, a flavor that only the libvirt hypervisor takes, and the fake
    demo flavors kept on the fake hypervisors."""
    found = admin.get("/image/v2/images", params={"name": REAL_IMAGE}).json()["images"]
    if found and found[0]["status"] == "active":
        image_id = str(found[0]["id"])
    else:
        kernel = _upload(admin, f"{REAL_IMAGE}-kernel", Path(files["kernel"]).read_bytes(), "aki")
        ramdisk = _upload(admin, f"{REAL_IMAGE}-ramdisk", Path(files["ramdisk"]).read_bytes(), "ari")
        image_id = _upload(
            admin,
            REAL_IMAGE,
            Path(files["disk"]).read_bytes(),
            "raw",
            kernel_id=kernel,
            ramdisk_id=ramdisk,
            os_command_line=str(files["cmdline"]),
        )
    ensure_driver_aggregate(admin, "libvirt", [libvirt_host])
    ensure_driver_aggregate(admin, "fake", fake_hosts)
    flavors = {f["name"]: f["id"] for f in admin.get("/compute/v2.1/flavors").json()["flavors"]}
    if REAL_FLAVOR not in flavors:
        flavor = admin.post(
            "/compute/v2.1/flavors", json={"flavor": {"name": REAL_FLAVOR, "vcpus": 1, "ram": 128, "disk": 1}}
        )
        flavor.raise_for_status()
        flavors[REAL_FLAVOR] = flavor.json()["flavor"]["id"]
    # r1.* boot real guests on the libvirt host; m1.* (the fake demo image) stay on fake hosts.
    for name, flavor_id in flavors.items():
        driver = "libvirt" if name == REAL_FLAVOR else "fake" if name.startswith("m1.") else None
        if driver:
            admin.post(
                f"/compute/v2.1/flavors/{flavor_id}/os-extra_specs",
                json={"extra_specs": {"aggregate_instance_extra_specs:kumo_driver": driver}},
            ).raise_for_status()
    return image_id


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


def boot_demo(
    url: str, demo_token: str, image_id: str, flavor_name: str = "m1.tiny", network_id: str | None = None
) -> dict[str, Any]:
    with httpx.Client(base_url=url, headers={"X-Auth-Token": demo_token}, timeout=30) as demo:
        flavor = next(
            f for f in demo.get("/compute/v2.1/flavors").json()["flavors"] if f["name"] == flavor_name
        )
        resp = demo.post(
            "/compute/v2.1/servers",
            json={
                "server": {
                    "name": "demo-server",
                    "flavorRef": flavor["id"],
                    "imageRef": image_id,
                    "networks": [{"uuid": network_id}] if network_id else "none",
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


def wait_console(url: str, demo_token: str, server_id: str, marker: str, timeout: float = 120) -> str | None:
    """The demo guest's console line with `marker`, read through the API, once it boots."""
    with httpx.Client(base_url=url, headers={"X-Auth-Token": demo_token}, timeout=30) as demo:
        deadline = time.monotonic() + timeout
        with console.status("waiting for the guest's console …"):
            while time.monotonic() < deadline:
                resp = demo.post(
                    f"/compute/v2.1/servers/{server_id}/action", json={"os-getConsoleOutput": {}}
                )
                if resp.status_code == 200:
                    # Only whole lines: the guest may be half-way through writing the marker's.
                    output = str(resp.json()["output"])
                    whole = [line for line in output.splitlines(keepends=True) if line.endswith("\n")]
                    lines = [line for line in whole if marker in line]
                    if lines:
                        return lines[-1].rstrip()
                time.sleep(1)
    return None


def run_all_in_one(
    settings: Settings,
    port: int,
    host_count: int,
    demo: bool,
    exit_after_demo: bool,
    driver: str = "auto",
    image_dir: Path | None = None,
    public_cidr: str = PUBLIC_CIDR,
    baremetal: bool = True,
    canaries: bool = False,
) -> None:
    public_gateway(public_cidr)  # a malformed --public-network stops it before anything starts
    admin_password = settings.secret("admin_password")
    demo_password = settings.secret("demo_password")
    with console.status("migrating and bootstrapping the database …"):
        db = init_cloud(settings, admin_password, demo_password)
    rt = build_runtime(settings, db)
    server = ThreadedServer(rt, port=port).start()
    url = server.url
    console.print(f"[green]API[/] listening on {url} (database {settings.resolved_database_url})")
    host_names = [f"compute-{i + 1}" for i in range(host_count)]
    first_driver, why = choose_driver(driver)
    files = test_image_files(image_dir) if first_driver == "libvirt" else None
    if first_driver == "libvirt" and files is None:
        first_driver, why = (
            "fake",
            (
                f"libvirt is usable but kumo's test guest is not built in {image_dir} "
                "(scripts/build-test-image); falling back to the fake driver"
            ),
        )
    console.print(f"[{'green' if first_driver == 'libvirt' else 'yellow'}]{host_names[0]}[/]: {why}")
    agents = []
    for index, name in enumerate(host_names):
        kind = first_driver if index == 0 else "fake"
        options: dict[str, Any] = {}
        if kind == "libvirt":
            options = {"api_url": url, "token": rt.agent_token, "state_dir": settings.state_dir / "libvirt"}
        # The first host's agent serves networks' DHCP and metadata (kumo/agent/netsync.py). Its
        # files live outside the state directory, which holds secrets and is private: dnsmasq
        # drops to user nobody and must reach them. One directory per API port, so a restarted
        # all-in-one adopts its own dnsmasqs.
        network_dir = NETWORK_STATE_ROOT / f"up-{port}"
        network = network_role(url, rt.agent_token, network_dir) if index == 0 else None
        compute = load_driver(kind, name, **options)
        # Every host of real guests enforces its guests' security groups (kumo/agent/firewall_sync.py).
        firewall = firewall_role() if kind == "libvirt" else None
        agent = Agent(
            url,
            name,
            compute,
            rt.agent_token,
            heartbeat_interval=5,
            image_cache=cache_of(compute, settings.state_dir / "agent-images" / name),
            network=network,
            firewall=firewall,
            unfiltered=kind == "libvirt" and firewall is None,
        )
        agents.append(agent.start())
    console.print(f"[green]agents[/] {', '.join(host_names)} registered")
    admin_token = token(url, "admin", admin_password, "admin")
    with httpx.Client(base_url=url, headers={"X-Auth-Token": admin_token}, timeout=30) as admin:
        try:
            public = ensure_public_network(admin, public_cidr)
        except SystemExit:
            stop_all(server, agents)
            raise
        network_host = agents[0].network  # the first agent serves networks
        reachable, reach = (
            wait_reachable(network_host, public) if network_host is not None else (False, "no network host")
        )
        about = f"{PUBLIC_NETWORK} {public.cidr} (shared, external) {public.id}: {reach}"
        console.print(f"[green]network[/] {about}")
        ensure_zones(admin, host_names)
        ensure_flavors(admin)
        image_id = ensure_image(admin)
        if files is not None:
            image_id = ensure_real_guest(admin, files, host_names[0], host_names[1:])
        metal = (
            started_or_stopped(  # start_baremetal stops its own conductor and emulator if it fails
                lambda: start_baremetal(url, rt.agent_token, admin, settings, files is not None, image_dir),
                lambda: stop_all(server, agents),
            )
            if baremetal
            else None
        )
    real = files is not None
    flavor = REAL_FLAVOR if real else "m1.tiny"
    image_name = REAL_IMAGE if real else "demo-image"
    clouds = settings.state_dir / "clouds.yaml"
    write_clouds_yaml(clouds, url, settings.region, admin_password, demo_password)
    if demo:
        demo_token = token(url, "demo", demo_password, "demo")
        result = boot_demo(url, demo_token, image_id, flavor, public.id)
        zone = result["OS-EXT-AZ:availability_zone"]
        addresses = ", ".join(
            f"{name}={address['addr']}"
            for name, entries in result["addresses"].items()
            for address in entries
        )
        console.print(f"[green]demo-server[/] {result['id']} is {result['status']} in {zone} {addresses}")
        if real and result["status"] == "ACTIVE":
            line = wait_console(url, demo_token, result["id"], "KUMO-BOOT-OK")
            console.print(f"[green]console[/] {line}" if line else "[yellow]console[/] no boot marker yet")
    if metal is not None and not metal.ready.is_set():

        def admin_client() -> httpx.Client:
            return httpx.Client(base_url=url, headers={"X-Auth-Token": admin_token}, timeout=30)

        if exit_after_demo:  # --exit: the nodes reported before it stops
            with admin_client() as admin:
                metal.bring_up(admin)
            console.print(metal.summary())
        else:
            metal.start_in_background(admin_client, console.print)
            console.print("[green]baremetal[/] getting ready in the background: a line says when")
    canary_loop = None
    if canaries and not exit_after_demo:
        canary_loop = started_or_stopped(
            # a login only into real guests, and only when this machine reaches them
            lambda: start_canaries(url, admin_token, settings, image_name, public.id, real and reachable),
            lambda: stop_all(server, agents, metal),
        )
    if settings.dashboard:
        console.print(
            f"[green]dashboard[/] {url}/dashboard/ (sign in as demo in project demo, or as admin; "
            f"the passwords are in {clouds})",
            soft_wrap=True,
            highlight=False,
        )
    journey = next_commands(clouds, flavor, image_name, real, metal is not None)
    # soft_wrap: a command stays one line, whatever the terminal's width (copied as it is)
    console.print("\nNext:\n" + "\n".join("  " + line for line in journey), soft_wrap=True, highlight=False)
    console.print("Stopping takes the public network's gateway, bridge and DHCP off this machine.")
    console.print("Press Ctrl-C to stop.")
    stop = threading.Event()
    if not exit_after_demo:
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
        console.print("stopping …")
    if canary_loop is not None:
        canary_loop.stop()
    stop_all(server, agents, metal)


CANARY_FLAVOR = "canary.tiny"  # any hypervisor's (no aggregate_instance_extra_specs): every zone has one


def start_canaries(
    url: str, admin_token: str, settings: Settings, image: str, network: str, ssh: bool
) -> CanaryLoop:
    """The health canaries' loop in this process, as their service user (kumo/canary/loop.py),
    with a flavor of their own that every hypervisor takes, and the demo's image (kumo's test
    image where real guests run), on the `public` network (`network`: its id): each canary also
    checks its guest's DHCP address and the metadata it read and, with `ssh` (real guests that
    this machine reaches), an SSH login with the canaries' key pair, whose private key is kept
    in the state directory."""
    password = settings.secret("canary_password")
    flavor = CANARY_FLAVOR
    with httpx.Client(base_url=url, headers={"X-Auth-Token": admin_token}, timeout=30) as admin:
        ensure_canary_user(admin, password)
        names = {f["name"] for f in admin.get("/compute/v2.1/flavors").json()["flavors"]}
        if flavor not in names:
            body = {"flavor": {"name": flavor, "vcpus": 1, "ram": 128, "disk": 1}}
            admin.post("/compute/v2.1/flavors", json=body).raise_for_status()
    policy = policy_from(settings)
    key_dir = settings.state_dir / "canary" if ssh else None
    loop = CanaryLoop(
        url,
        lambda: token(url, CANARY_USER, password, CANARY_PROJECT),
        lambda api: resolve_spec(api, image, flavor, network, key_dir),
        policy,
    ).start()
    console.print(
        f"[green]canaries[/] {flavor} servers of {image} on {PUBLIC_NETWORK} "
        f"(DHCP, metadata{', SSH' if ssh else ''}): "
        f"each zone every {policy.az_interval:g} s, "
        f"each host every {policy.host_interval:g} s and when it joins or comes back; "
        "results at GET /compute/v2.1/os-kumo-canaries"
    )
    return loop


def start_baremetal(
    url: str, agent_token: str, admin: httpx.Client, settings: Settings, real: bool, image_dir: Path | None
) -> baremetal_demo.Baremetal:
    """The conductor started, the baremetal flavor made and, with the fake BMC driver (fast),
    the nodes available; Redfish nodes come up later (`Baremetal.bring_up`)."""
    hardware, why = baremetal_demo.choose_hardware(real)
    logging.getLogger("sushy").setLevel(logging.ERROR)  # its session-discovery warning is noise here
    metal = baremetal_demo.start(url, agent_token, hardware, why, settings.state_dir / "bmlab", image_dir)

    def finish() -> baremetal_demo.Baremetal:
        baremetal_demo.ensure_flavor(admin)
        names = ", ".join(name for name, _ in baremetal_demo.NODES)
        colour = "green" if hardware == baremetal_demo.REDFISH else "yellow"
        console.print(
            f"[{colour}]baremetal[/] {names}: {why}; conductor {baremetal_demo.CONDUCTOR} in this process"
        )
        if hardware == baremetal_demo.FAKE:
            metal.bring_up(admin)
            console.print(metal.summary())
        return metal

    return started_or_stopped(finish, metal.stop)  # a failure stops the conductor (and emulator)


def next_commands(clouds: Path, flavor: str, image: str, real: bool, baremetal: bool = False) -> list[str]:
    """The banner's journey: with real guests, a key, SSH opened in the default security group,
    a server on the public network and SSH to it from this machine; with fake ones, the server."""
    demo = "openstack --os-cloud kumo-demo"
    key = " --key-name mykey" if real else ""
    lines = [
        f"export OS_CLIENT_CONFIG_FILE={clouds}",
        "openstack --os-cloud kumo server list --all-projects",
        "openstack --os-cloud kumo hypervisor list",
    ]
    if real:
        lines += [
            f"{demo} keypair create --public-key ~/.ssh/id_ed25519.pub mykey",
            f"{demo} security group rule create --protocol tcp --dst-port 22 default",
        ]
    lines += [
        f"{demo} server create --flavor {flavor} --image {image} --network {PUBLIC_NETWORK}{key}"
        " --wait my-server",
        f"{demo} server list",
    ]
    if real:
        lines.append(f"ssh root@<my-server's {PUBLIC_NETWORK} address>")
    lines.append(f"{demo} console log show my-server")
    if baremetal:  # the same API, a machine instead of a guest
        lines += [
            "openstack --os-cloud kumo baremetal node list --fields name resource_class provision_state",
            f"{demo} server create --flavor {baremetal_demo.FLAVOR} --image {image} --nic none"
            " --wait my-metal",
            f"{demo} console log show my-metal",
        ]
    return lines


def started_or_stopped(start: Callable[[], T], stop: Callable[[], None]) -> T:
    """What `start` returns; if it raises (Ctrl-C included), `stop` first undoes what was
    started before, then the error goes on."""
    try:
        return start()
    except BaseException:
        stop()
        raise


def stop_all(
    server: ThreadedServer, agents: list[Agent], metal: baremetal_demo.Baremetal | None = None
) -> None:
    """Stop the agents, then the API, in about a second: the agents take no more work, the API
    answers their long polls at once (empty; tasks stay pending in the database), each agent's
    threads end (side by side), the network host takes its networks off this machine (the next
    `kumo up` makes them again: its agent's registration syncs every network it serves), every
    agent that enforced security groups removes its firewall's rules (the next `kumo up`'s
    registration syncs them again), the baremetal conductor stops (with Redfish, the emulator,
    its domains and the lab's files are removed), and the API stops with no request left in
    flight."""
    for agent in agents:
        agent.stop_event.set()
    if metal is not None:
        metal.signal_stop()
    server.rt.waker.stop()
    with ThreadPoolExecutor(max(1, len(agents))) as pool:
        list(pool.map(Agent.stop, agents))
    if metal is not None:  # the conductor; with Redfish the emulator, its domains and files
        metal.stop()
    for agent in agents:
        if agent.network is not None:
            try:  # the machine as it was found: no gateway, bridge, namespace or dnsmasq left
                agent.network.remove_all()
            except NetworkError as exc:
                console.print(f"[yellow]could not remove the networks from this machine[/]: {exc}")
            agent.network.metadata.stop()
    for agent in agents:
        if agent.firewall is not None:
            try:  # only kumo's chains and its jumps into them
                agent.firewall.remove_all()
            except NetworkError as exc:
                console.print(f"[yellow]could not remove the firewall rules from this machine[/]: {exc}")
    server.stop()
