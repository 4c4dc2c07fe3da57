"""The unmodified `openstack` CLI against kumo's compute resources around servers: flavors,
key pairs, server groups, aggregates and zones, hypervisors, services, quotas and limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import DEMO_CLOUD, OpenStackCLI
from tests.conftest import Cloud
from tests.functional.compute.helpers import register_hosts

pytestmark = pytest.mark.cli


def test_flavor_keypair_and_server_group(osc: OpenStackCLI, tmp_path: Path) -> None:
    flavor = osc.run(
        "flavor",
        "create",
        "--vcpus",
        "2",
        "--ram",
        "256",
        "--disk",
        "1",
        "--property",
        "hw:cpu_policy=dedicated",
        "cli-flavor",
    )
    assert flavor["properties"] == {"hw:cpu_policy": "dedicated"}
    assert (flavor["vcpus"], flavor["ram"], flavor["os-flavor-access:is_public"]) == (2, 256, True)

    private_key = tmp_path / "cli-key.pem"
    keypair = osc.run("keypair", "create", "--private-key", str(private_key), "cli-key")
    assert keypair["name"] == "cli-key" and keypair["type"] == "ssh"
    assert len(keypair["fingerprint"].split(":")) == 16
    assert "PRIVATE KEY" in private_key.read_text()
    assert [k["Name"] for k in osc.run("keypair", "list")] == ["cli-key"]

    group = osc.run("server", "group", "create", "--policy", "anti-affinity", "cli-group")
    assert (group["name"], group["policy"], group["rules"], group["members"]) == (
        "cli-group",
        "anti-affinity",
        {},
        [],
    )


def test_aggregates_zones_hypervisors_services(cloud: Cloud, osc: OpenStackCLI) -> None:
    register_hosts(cloud, "cmp1", "cmp2")
    aggregate = osc.run("aggregate", "create", "--zone", "az1", "agg1")
    assert aggregate["availability_zone"] == "az1" and aggregate["name"] == "agg1"
    added = osc.run("aggregate", "add", "host", "agg1", "cmp1")
    assert added["hosts"] == ["cmp1"]
    osc.run("aggregate", "set", "--property", "ssd=true", "agg1", json=False)
    shown = osc.run("aggregate", "show", "agg1")
    assert shown["hosts"] == ["cmp1"] and shown["availability_zone"] == "az1"
    assert shown["properties"] == {"ssd": "true"}  # the CLI shows the zone apart from the properties

    zones = {z["Zone Name"]: z["Zone Status"] for z in osc.run("availability", "zone", "list")}
    assert zones["az1"] == "available" and zones["nova"] == "available"
    # A non-admin's detail call is refused; the CLI falls back to the plain list.
    demo_zones = {z["Zone Name"] for z in osc.run("availability", "zone", "list", cloud=DEMO_CLOUD)}
    assert demo_zones == {"az1", "nova"}

    register_hosts(cloud, "cmp1", "cmp2")  # fresh heartbeats for the state checks below
    hypervisors = {h["Hypervisor Hostname"]: h for h in osc.run("hypervisor", "list")}
    assert set(hypervisors) == {"cmp1", "cmp2"} and hypervisors["cmp1"]["State"] == "up"
    hypervisor = osc.run("hypervisor", "show", "cmp1")
    assert hypervisor["aggregates"] == ["agg1"] and hypervisor["service_host"] == "cmp1"
    assert hypervisor["state"] == "up" and "vcpus" not in hypervisor  # 2.88 dropped the usage fields
    hypervisor = osc.run("--os-compute-api-version", "2.87", "hypervisor", "show", "cmp1")
    assert (hypervisor["vcpus"], hypervisor["vcpus_used"], hypervisor["state"]) == (8, 0, "up")

    services = osc.run("compute", "service", "list", "--service", "nova-compute")
    assert {(s["Host"], s["Zone"], s["Status"], s["State"]) for s in services} == {
        ("cmp1", "az1", "enabled", "up"),
        ("cmp2", "nova", "enabled", "up"),
    }


def test_quota_and_limits(osc: OpenStackCLI) -> None:
    quotas = {q["Resource"]: q["Limit"] for q in osc.run("quota", "show")}
    assert (quotas["instances"], quotas["cores"], quotas["ram"]) == (10, 20, 51200)
    osc.run("quota", "set", "--instances", "25", "admin", json=False)
    assert {q["Resource"]: q["Limit"] for q in osc.run("quota", "show", "admin")}["instances"] == 25
    limits = {row["Name"]: row["Value"] for row in osc.run("limits", "show", "--absolute")}
    assert limits["max_total_instances"] == 25 and limits["total_instances_used"] == 0
    assert limits["max_total_cores"] == 20
