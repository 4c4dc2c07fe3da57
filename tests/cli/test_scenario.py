"""Acceptance: an operator's day with the unmodified `openstack` CLI against a real kumo.

One sequential scenario (identity, images, flavors, aggregates and zones, hypervisors, server
groups, the server lifecycle with rebuild, live and cold migration, events, quotas, keypairs)
with two in-process fake-driver agents on SQLite; its server half again on PostgreSQL. Each CLI
call is a fresh process (1-2 s) and each `--wait` polls every 5 s, so the scenario asserts on
every output it gets rather than making extra calls.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import CLIError, OpenStackCLI, openstack_binary, write_clouds_yaml
from tests.conftest import Cloud, Fleet

pytestmark = pytest.mark.cli

HOSTS = ("host1", "host2")


@pytest.fixture
def pg_osc(pg_cloud: Cloud, tmp_path: Path) -> OpenStackCLI:
    binary = openstack_binary()
    if binary is None:
        pytest.skip("the openstack CLI is not installed")
    return OpenStackCLI(binary, write_clouds_yaml(pg_cloud, tmp_path / "clouds.yaml"))


def _wait_server(osc: OpenStackCLI, server: str, status: str, timeout: float = 30) -> dict[str, Any]:
    """Poll `server show` for commands without --wait (stop/start, resize confirm)."""
    deadline = time.monotonic() + timeout
    while True:
        shown: dict[str, Any] = osc.run("server", "show", server)
        if shown["status"] == status and shown["OS-EXT-STS:task_state"] is None:
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"server {server} is {shown['status']}, not {status}, after {timeout}s")
        time.sleep(0.2)


def _identity(osc: OpenStackCLI) -> None:
    token = osc.run("token", "issue")
    assert token["id"] and token["project_id"] and token["user_id"]

    catalog = {entry["Type"]: entry for entry in osc.run("catalog", "list")}
    assert {"identity", "compute", "image", "network"} <= set(catalog)
    assert catalog["network"]["Name"] == "neutron" and "volume" not in catalog

    project = osc.run("project", "create", "--description", "acceptance", "acme")
    assert project["name"] == "acme" and project["enabled"] is True
    user = osc.run("user", "create", "--project", "acme", "--password", "acme-secret", "alice")
    assert user["name"] == "alice" and user["default_project_id"] == project["id"]
    osc.run("role", "add", "--project", "acme", "--user", "alice", "member", json=False)

    # The grant is real: alice can now get a token scoped to acme.
    as_alice = ("--os-username", "alice", "--os-password", "acme-secret", "--os-project-name", "acme")
    alice = osc.run(*as_alice, "token", "issue")
    assert alice["user_id"] == user["id"] and alice["project_id"] == project["id"]


def _flavor_and_image(osc: OpenStackCLI, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    flavor = osc.run(
        "flavor",
        "create",
        "--vcpus",
        "2",
        "--ram",
        "1024",
        "--disk",
        "10",
        "--property",
        "hw:cpu_policy=shared",
        "--property",
        "quota:cpu_shares=512",
        "m1.small",
    )
    assert (flavor["vcpus"], flavor["ram"], flavor["disk"]) == (2, 1024, 10)
    assert flavor["properties"] == {"hw:cpu_policy": "shared", "quota:cpu_shares": "512"}

    disk = tmp_path / "cirros.raw"
    disk.write_bytes(b"\0" * 65536 + b"kumo")
    image = osc.run(
        "image",
        "create",
        "--file",
        str(disk),
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--public",
        "cirros",
    )
    assert image["status"] == "active" and image["size"] == 65540
    return flavor, image


def _zones_and_hosts(osc: OpenStackCLI) -> None:
    aggregate = osc.run("aggregate", "create", "--zone", "az1", "agg1")
    assert aggregate["name"] == "agg1" and aggregate["availability_zone"] == "az1"
    for host in HOSTS:
        added = osc.run("aggregate", "add", "host", "agg1", host)
        assert host in added["hosts"]
    osc.run("aggregate", "set", "--property", "ssd=true", "agg1", json=False)
    shown = osc.run("aggregate", "show", "agg1")
    assert sorted(shown["hosts"]) == list(HOSTS)
    assert shown["availability_zone"] == "az1"
    assert shown["properties"] == {"ssd": "true"}

    zones = osc.run("availability", "zone", "list")
    assert {"Zone Name": "az1", "Zone Status": "available"} in [
        {k: z[k] for k in ("Zone Name", "Zone Status")} for z in zones
    ]

    hypervisors = osc.run("hypervisor", "list")
    assert sorted(h["Hypervisor Hostname"] for h in hypervisors) == list(HOSTS)
    assert all(h["State"] == "up" for h in hypervisors)
    hypervisor = osc.run("hypervisor", "show", "host1")
    assert hypervisor["hypervisor_hostname"] == "host1"
    assert hypervisor["state"] == "up" and hypervisor["status"] == "enabled"
    assert hypervisor["aggregates"] == ["agg1"]

    services = osc.run("compute", "service", "list")
    computes = {s["Host"]: s for s in services if s["Binary"] == "nova-compute"}
    assert sorted(computes) == list(HOSTS)
    assert {(s["Zone"], s["Status"], s["State"]) for s in computes.values()} == {("az1", "enabled", "up")}


def _boot(osc: OpenStackCLI, image: dict[str, Any], zone: str) -> tuple[str, str]:
    """An anti-affinity group and a server in it; returns the server's id and host."""
    group = osc.run("server", "group", "create", "--policy", "anti-affinity", "spread")
    assert group["policy"] == "anti-affinity"

    server = osc.run(
        "server",
        "create",
        "--flavor",
        "m1.small",
        "--image",
        "cirros",
        "--hint",
        f"group={group['id']}",
        "--property",
        "team=blue",
        "--wait",
        "vm1",
    )
    assert server["status"] == "ACTIVE"
    assert server["OS-EXT-STS:power_state"] == 1
    assert server["OS-EXT-SRV-ATTR:host"] in HOSTS
    assert server["OS-EXT-AZ:availability_zone"] == zone
    assert server["flavor"]["name"] == "m1.small"
    assert server["image"] == f"cirros ({image['id']})"
    return str(server["id"]), str(server["OS-EXT-SRV-ATTR:host"])


def _inspect(osc: OpenStackCLI, sid: str) -> None:
    listed = osc.run("server", "list")
    assert [(s["ID"], s["Name"], s["Status"]) for s in listed] == [(sid, "vm1", "ACTIVE")]
    assert listed[0]["Flavor"] == "m1.small" and listed[0]["Image"] == "cirros"

    shown = osc.run("server", "show", "vm1")
    assert shown["id"] == sid
    assert shown["properties"] == {"team": "blue"}

    members = osc.run("server", "group", "show", "spread")["members"]
    assert members == [sid]


def _power_cycle(osc: OpenStackCLI, image: dict[str, Any], full: bool) -> None:
    osc.run("server", "stop", "vm1", json=False)
    assert _wait_server(osc, "vm1", "SHUTOFF")["OS-EXT-STS:power_state"] == 4
    if full:
        # A stopped server comes back stopped from a rebuild: the CLI waits for SHUTOFF here.
        out = osc.run_openstack("server", "rebuild", "--image", "cirros", "--wait", "vm1")
        assert "Complete" in out
        rebuilt = _wait_server(osc, "vm1", "SHUTOFF")
        assert rebuilt["OS-EXT-STS:power_state"] == 4 and rebuilt["image"] == f"cirros ({image['id']})"
    osc.run("server", "start", "vm1", json=False)
    assert _wait_server(osc, "vm1", "ACTIVE")["OS-EXT-STS:power_state"] == 1
    if not full:
        return
    osc.run("server", "reboot", "--wait", "vm1", json=False)

    osc.run("server", "set", "--property", "env=prod", "--property", "team=red", "vm1", json=False)
    shown = osc.run("server", "show", "vm1")
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:power_state"] == 1
    assert shown["properties"] == {"team": "red", "env": "prod"}


def _migrations(osc: OpenStackCLI, sid: str, source: str) -> None:
    other = next(h for h in HOSTS if h != source)

    osc.run("server", "migrate", "--live-migration", "--host", other, "--wait", sid, json=False)
    moved = _wait_server(osc, sid, "ACTIVE")
    assert moved["OS-EXT-SRV-ATTR:host"] == other
    assert moved["OS-EXT-STS:power_state"] == 1

    osc.run("server", "migrate", "--wait", sid, json=False)
    resized = _wait_server(osc, sid, "VERIFY_RESIZE")
    assert resized["OS-EXT-SRV-ATTR:host"] == source  # the only host left to the scheduler
    osc.run("server", "resize", "confirm", sid, json=False)
    confirmed = _wait_server(osc, sid, "ACTIVE")
    assert confirmed["OS-EXT-SRV-ATTR:host"] == source and confirmed["OS-EXT-STS:power_state"] == 1

    # Confirming gave back the claim on the host it left.
    # (2.88 dropped the usage fields: asked for at 2.87)
    listed = osc.run("--os-compute-api-version", "2.87", "hypervisor", "list", "--long")
    hypervisors = {h["Hypervisor Hostname"]: h for h in listed}
    assert hypervisors[source]["vCPUs Used"] == 2 and hypervisors[other]["vCPUs Used"] == 0


def _events(osc: OpenStackCLI, sid: str, expected: list[str]) -> None:
    events = osc.run("server", "event", "list", sid)
    assert [e["Action"] for e in events] == expected  # newest first
    live = next(e for e in events if e["Action"] == "live-migration")
    shown = osc.run("server", "event", "show", sid, live["Request ID"])
    assert shown["action"] == "live-migration"
    assert shown["request_id"] == live["Request ID"]
    assert [(e["event"], e["result"]) for e in shown["events"]] == [("compute_live_migration", "Success")]


def _delete(osc: OpenStackCLI, sid: str) -> None:
    osc.run("server", "delete", "--wait", "vm1", json=False)
    assert osc.run("server", "list") == []
    with pytest.raises(CLIError, match="No Server found"):
        osc.run("server", "show", sid)


def _quotas_and_keys(osc: OpenStackCLI, tmp_path: Path) -> None:
    quota = {row["Resource"]: row for row in osc.run("quota", "show", "--usage")}
    assert {k: (quota[k]["Limit"], quota[k]["In Use"]) for k in ("instances", "cores", "ram")} == {
        "instances": (10, 0),
        "cores": (20, 0),
        "ram": (51200, 0),
    }

    limits = {row["Name"]: row["Value"] for row in osc.run("limits", "show", "--absolute")}
    maxima = (limits["max_total_instances"], limits["max_total_cores"], limits["max_total_ram_size"])
    assert maxima == (10, 20, 51200)
    assert limits["total_instances_used"] == 0 and limits["total_cores_used"] == 0
    assert limits["total_server_groups_used"] == 1

    created = osc.run_openstack("keypair", "create", "kp1")
    assert "PRIVATE KEY" in created
    public = tmp_path / "id.pub"
    public.write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3Z7w0bLNxfW7kAMlNm0vq0r1yXU8mPqK3qvS7o3d3h acceptance@kumo\n"
    )
    imported = osc.run("keypair", "create", "--public-key", str(public), "kp2")
    assert imported["name"] == "kp2" and imported["fingerprint"]
    names = sorted(k["Name"] for k in osc.run("keypair", "list"))
    assert names == ["kp1", "kp2"]


def test_operator_scenario(osc: OpenStackCLI, fleet: Fleet, tmp_path: Path) -> None:
    for host in HOSTS:
        fleet.add(host, vcpus=8, memory_mb=16384)
    _identity(osc)
    _, image = _flavor_and_image(osc, tmp_path)
    _zones_and_hosts(osc)
    sid, host = _boot(osc, image, zone="az1")
    _inspect(osc, sid)
    _power_cycle(osc, image, full=True)
    _migrations(osc, sid, host)
    _events(
        osc,
        sid,
        [
            "confirmResize",
            "migrate",
            "live-migration",
            "reboot",
            "start",
            "rebuild",
            "stop",
            "create",
        ],
    )
    _delete(osc, sid)
    _quotas_and_keys(osc, tmp_path)


@pytest.mark.postgres
def test_server_scenario_postgres(pg_osc: OpenStackCLI, pg_fleet: Fleet, tmp_path: Path) -> None:
    """The parts that lean on the database (claims, moves, events) on PostgreSQL; all of the
    scenario would take about two minutes more."""
    for host in HOSTS:
        pg_fleet.add(host, vcpus=8, memory_mb=16384)
    osc = pg_osc
    _, image = _flavor_and_image(osc, tmp_path)
    sid, host = _boot(osc, image, zone="nova")
    _power_cycle(osc, image, full=False)
    _migrations(osc, sid, host)
    _events(osc, sid, ["confirmResize", "migrate", "live-migration", "start", "stop", "create"])
    _delete(osc, sid)
