"""os-hypervisors: ids per microversion, usage from allocations, state from heartbeats."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Cloud
from tests.functional.compute.helpers import (
    API,
    BACKENDS,
    add_instance,
    demo_token,
    either_cloud,
    project_id,
    register_hosts,
)


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


DETAIL_KEYS = {
    "id",
    "hypervisor_hostname",
    "state",
    "status",
    "vcpus",
    "memory_mb",
    "local_gb",
    "vcpus_used",
    "memory_mb_used",
    "local_gb_used",
    "hypervisor_type",
    "hypervisor_version",
    "free_ram_mb",
    "free_disk_gb",
    "current_workload",
    "running_vms",
    "disk_available_least",
    "host_ip",
    "service",
    "cpu_info",
}


def test_ids_are_integers_before_253_and_uuids_from_it(cloud: Cloud) -> None:
    register_hosts(cloud, "h1", "h2")
    with cloud.client(microversion="2.1") as c:
        old = c.get(f"{API}/os-hypervisors").json()["hypervisors"]
        assert [(type(h["id"]), h["hypervisor_hostname"]) for h in old] == [(int, "h1"), (int, "h2")]
        assert set(old[0]) == {"id", "hypervisor_hostname", "state", "status"}
        shown = c.get(f"{API}/os-hypervisors/{old[0]['id']}").json()["hypervisor"]
        assert set(shown) == DETAIL_KEYS
        assert isinstance(shown["cpu_info"], str)  # a JSON string before 2.28
        assert isinstance(shown["service"]["id"], int)
        assert c.get(f"{API}/os-hypervisors/999").status_code == 404
        assert c.get(f"{API}/os-hypervisors/not-a-number").status_code == 404
    with cloud.client(microversion="2.53") as c:
        new = c.get(f"{API}/os-hypervisors").json()["hypervisors"]
        assert all(uuid.UUID(h["id"]) for h in new)
        shown = c.get(f"{API}/os-hypervisors/{new[0]['id']}").json()["hypervisor"]
        assert set(shown) == DETAIL_KEYS and shown["cpu_info"] == {}
        uuid.UUID(shown["service"]["id"])
        assert c.get(f"{API}/os-hypervisors/{old[0]['id']}").status_code == 400  # an int is not a uuid
        assert c.get(f"{API}/os-hypervisors/{uuid.uuid4()}").status_code == 404


def test_usage_comes_from_allocations_and_state_from_heartbeat(any_cloud: Cloud) -> None:
    register_hosts(any_cloud, "busy", vcpus=16, memory_mb=32768, disk_gb=500, reserved_memory_mb=1024)
    register_hosts(any_cloud, "silent", heartbeat=False)
    with any_cloud.client(microversion="2.53") as c:
        project = project_id(c, "admin")
    first = add_instance(any_cloud, "busy", project, vcpus=2, ram=2048, disk=20, name="one")
    add_instance(any_cloud, "busy", project, vcpus=4, ram=4096, disk=40, name="two")
    add_instance(any_cloud, "busy", project, vcpus=8, ram=8192, disk=80, name="gone", deleted=True)
    with any_cloud.client(microversion="2.53") as c:
        detail = {
            h["hypervisor_hostname"]: h for h in c.get(f"{API}/os-hypervisors/detail").json()["hypervisors"]
        }
        stats = c.get(f"{API}/os-hypervisors/statistics").json()["hypervisor_statistics"]
        with_servers = c.get(f"{API}/os-hypervisors", params={"with_servers": "true"}).json()["hypervisors"]
        assert c.get(f"{API}/os-hypervisors", params={"with_servers": "perhaps"}).status_code == 400
    busy = detail["busy"]
    assert (busy["vcpus"], busy["vcpus_used"]) == (16, 6)
    assert (busy["memory_mb"], busy["memory_mb_used"], busy["free_ram_mb"]) == (
        32768,
        1024 + 6144,
        32768 - 7168,
    )
    assert (busy["local_gb"], busy["local_gb_used"], busy["free_disk_gb"]) == (500, 60, 440)
    assert busy["running_vms"] == 2 and busy["state"] == "up" and busy["status"] == "enabled"
    assert busy["service"]["host"] == "busy"
    assert detail["silent"]["state"] == "down"
    assert (
        stats["count"] == 2
        and stats["vcpus"] == 24
        and stats["vcpus_used"] == 6
        and stats["running_vms"] == 2
    )
    servers = {h["hypervisor_hostname"]: h.get("servers") for h in with_servers}
    assert servers["silent"] is None  # left out when empty before 2.75
    assert {s["name"] for s in servers["busy"]} == {"one", "two"}
    assert first in {s["uuid"] for s in servers["busy"]}


def test_hostname_pattern_from_253(cloud: Cloud) -> None:
    register_hosts(cloud, "rack1-a", "rack1-b", "rack2-a")
    with cloud.client(microversion="2.53") as c:
        found = c.get(f"{API}/os-hypervisors", params={"hypervisor_hostname_pattern": "rack1"}).json()
        assert sorted(h["hypervisor_hostname"] for h in found["hypervisors"]) == ["rack1-a", "rack1-b"]
        none = c.get(f"{API}/os-hypervisors", params={"hypervisor_hostname_pattern": "rack9"})
        assert none.status_code == 404
        paged = c.get(f"{API}/os-hypervisors", params={"hypervisor_hostname_pattern": "rack", "limit": 1})
        assert paged.status_code == 400
    with cloud.client(microversion="2.1") as c:
        legacy = c.get(f"{API}/os-hypervisors/rack2/search").json()["hypervisors"]
        assert [h["hypervisor_hostname"] for h in legacy] == ["rack2-a"]
    with cloud.client(microversion="2.53") as c:
        assert c.get(f"{API}/os-hypervisors/rack2/search").status_code == 404


def test_paging_from_233(cloud: Cloud) -> None:
    register_hosts(cloud, "p1", "p2", "p3")
    with cloud.client(microversion="2.53") as c:
        first = c.get(f"{API}/os-hypervisors", params={"limit": 2}).json()
        assert [h["hypervisor_hostname"] for h in first["hypervisors"]] == ["p1", "p2"]
        marker = first["hypervisors"][1]["id"]
        assert f"marker={marker}" in first["hypervisors_links"][0]["href"]
        rest = c.get(f"{API}/os-hypervisors/detail", params={"limit": 2, "marker": marker}).json()
        assert [h["hypervisor_hostname"] for h in rest["hypervisors"]] == ["p3"]
        assert c.get(f"{API}/os-hypervisors", params={"marker": str(uuid.uuid4())}).status_code == 400


def test_uptime(cloud: Cloud) -> None:
    register_hosts(cloud, "up1")
    register_hosts(cloud, "down1", heartbeat=False)
    with cloud.client(microversion="2.53") as c:
        ids = {
            h["hypervisor_hostname"]: h["id"] for h in c.get(f"{API}/os-hypervisors").json()["hypervisors"]
        }
        body = c.get(f"{API}/os-hypervisors/{ids['up1']}/uptime").json()["hypervisor"]
        assert " up " in body["uptime"] and "load average" in body["uptime"]
        assert c.get(f"{API}/os-hypervisors/{ids['down1']}/uptime").status_code == 400


@pytest.mark.parametrize("path", ["/os-hypervisors", "/os-hypervisors/detail", "/os-hypervisors/statistics"])
def test_admin_only(cloud: Cloud, path: str) -> None:
    with cloud.client(demo_token(cloud)) as c:
        assert c.get(API + path).status_code == 403
