"""Ironic's API subset under /baremetal through HTTP: version discovery, enrolment, updates,
errors in Ironic's format, and a node as a host (provider, inventory, zone, labels)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from kumo.compute.models import ComputeHost
from kumo.db import Database
from tests.conftest import Cloud
from tests.functional.baremetal.helpers import (
    IRONIC,
    enroll,
    inventory,
    ironic,
    make_available,
    node,
    provision,
    wait_node,
)
from tests.functional.baremetal.standin import StandInConductor
from tests.functional.compute.helpers import demo_token


@pytest.fixture
def conductor(cloud: Cloud) -> Iterator[StandInConductor]:
    c = StandInConductor(cloud.url, cloud.settings.secret("agent_token")).start()
    yield c
    c.stop()


def fault(resp: httpx.Response) -> str:
    return str(json.loads(resp.json()["error_message"])["faultstring"])


def test_version_discovery(cloud: Cloud) -> None:
    root = httpx.get(f"{cloud.url}/baremetal")
    assert root.status_code == 200
    body = root.json()
    assert body["default_version"]["id"] == "v1"
    assert body["default_version"]["min_version"] == "1.1"
    assert body["default_version"]["version"] == root.headers["X-OpenStack-Ironic-API-Maximum-Version"]
    assert body["default_version"]["links"][0]["href"] == f"{cloud.url}/baremetal/v1/"
    v1 = httpx.get(f"{cloud.url}/baremetal/v1/", headers=IRONIC)
    assert v1.status_code == 200 and v1.json()["id"] == "v1"
    assert v1.headers["X-OpenStack-Ironic-API-Version"] == "1.65"
    assert v1.headers["X-OpenStack-Ironic-API-Minimum-Version"] == "1.1"


def test_too_new_a_version_is_406_with_the_range(cloud: Cloud) -> None:
    with cloud.client() as c:
        resp = c.get("/baremetal/v1/nodes", headers={"X-OpenStack-Ironic-API-Version": "1.115"})
    assert resp.status_code == 406
    assert resp.headers["X-OpenStack-Ironic-API-Maximum-Version"] == "1.65"
    assert "The supported version range is: [1.1, 1.65]" in fault(resp)
    assert json.loads(resp.json()["error_message"])["faultcode"] == "Client"


def test_admin_only_with_ironic_error_body(cloud: Cloud) -> None:
    with ironic(cloud, demo_token(cloud)) as c:
        resp = c.get("/baremetal/v1/nodes")
    assert resp.status_code == 403
    assert set(json.loads(resp.json()["error_message"])) == {"faultstring", "faultcode", "debuginfo"}
    assert httpx.get(f"{cloud.url}/baremetal/v1/nodes", headers=IRONIC).status_code == 401


def test_create_show_list_patch_delete(cloud: Cloud) -> None:
    with ironic(cloud) as c:
        created = enroll(c, "n1", rack="r1", availability_zone="az1", region="RegionOne")
        assert created["provision_state"] == "enroll" and created["power_state"] is None
        assert created["lessee"] is None and created["conductor"] is None
        assert node(c, created["uuid"])["name"] == "n1"
        listed = c.get("/baremetal/v1/nodes").json()["nodes"]
        assert [n["name"] for n in listed] == ["n1"]
        assert "driver_info" not in listed[0]
        detail = c.get("/baremetal/v1/nodes/detail").json()["nodes"]
        assert detail[0]["properties"]["rack"] == "r1"
        patched = c.patch(
            "/baremetal/v1/nodes/n1",
            json=[
                {"op": "replace", "path": "/properties/rack", "value": "r2"},
                {"op": "remove", "path": "/properties/region"},
                {"op": "add", "path": "/extra/owner_team", "value": "db"},
                {"op": "replace", "path": "/name", "value": "n1b"},
            ],
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["properties"] == {
            "cpus": 4, "memory_mb": 8192, "local_gb": 100, "rack": "r2", "availability_zone": "az1"
        }  # fmt: skip
        assert patched.json()["extra"] == {"owner_team": "db"} and patched.json()["name"] == "n1b"
        old_version = c.get(
            "/baremetal/v1/nodes/n1b", headers={"X-OpenStack-Ironic-API-Version": "1.20"}
        ).json()
        assert "resource_class" not in old_version and "lessee" not in old_version
        assert c.delete("/baremetal/v1/nodes/n1b").status_code == 204
        gone = c.get("/baremetal/v1/nodes/n1b")
    assert gone.status_code == 404 and fault(gone) == "Node n1b could not be found."


def test_bad_input(cloud: Cloud) -> None:
    with ironic(cloud) as c:
        enroll(c, "n1")
        dup = c.post("/baremetal/v1/nodes", json={"name": "n1", "driver": "redfish"})
        no_driver = c.post("/baremetal/v1/nodes", json={"name": "n2"})
        bad_driver = c.post("/baremetal/v1/nodes", json={"name": "n2", "driver": "carrier-pigeon"})
        bad_prop = c.post("/baremetal/v1/nodes", json={"driver": "redfish", "properties": {"cpus": "many"}})
        unknown = c.post("/baremetal/v1/nodes", json={"driver": "redfish", "colour": "red"})
        read_only = c.patch(
            "/baremetal/v1/nodes/n1", json=[{"op": "replace", "path": "/provision_state", "value": "x"}]
        )
        bad_verb = c.put("/baremetal/v1/nodes/n1/states/provision", json={"target": "fly"})
        deploy = c.put("/baremetal/v1/nodes/n1/states/provision", json={"target": "active"})
        bad_power = c.put("/baremetal/v1/nodes/n1/states/power", json={"target": "sideways"})
    assert dup.status_code == 409 and "already exists" in fault(dup)
    assert no_driver.status_code == 400 and "driver" in fault(no_driver)
    assert bad_driver.status_code == 400 and "carrier-pigeon" in fault(bad_driver)
    assert bad_prop.status_code == 400 and "cpus" in fault(bad_prop)
    assert unknown.status_code == 400 and "colour" in fault(unknown)
    assert read_only.status_code == 400 and "provision_state" in fault(read_only)
    assert bad_verb.status_code == 400
    assert deploy.status_code == 400 and "compute API" in fault(deploy)
    assert bad_power.status_code == 400


def test_a_node_is_a_host_offered_only_when_available(cloud: Cloud, conductor: StandInConductor) -> None:
    with ironic(cloud) as c:
        n = enroll(c, "n1", rack="r1", availability_zone="az1", region="RegionOne")
        uuid = n["uuid"]
        one = dict(total=1, reserved=1, min_unit=1, max_unit=1, step_size=1, allocation_ratio=1.0)
        assert inventory(c, uuid) == {"CUSTOM_BM_SMALL": one}
        zones = c.get("/compute/v2.1/os-aggregates").json()["aggregates"]
        assert [(a["availability_zone"], a["hosts"]) for a in zones] == [("az1", [uuid])]
        shown = make_available(c, uuid)
        assert shown["conductor"] == "standin" and shown["power_state"] == "power off"
        assert inventory(c, uuid)["CUSTOM_BM_SMALL"]["reserved"] == 0
        hypervisors = c.get(
            "/compute/v2.1/os-hypervisors/detail", headers={"OpenStack-API-Version": "compute 2.53"}
        )
        hv = hypervisors.json()["hypervisors"][0]
        assert (hv["hypervisor_hostname"], hv["hypervisor_type"], hv["state"]) == (uuid, "ironic", "up")
        assert c.put(f"/baremetal/v1/nodes/{uuid}/maintenance", json={"reason": "fan"}).status_code == 202
        assert inventory(c, uuid)["CUSTOM_BM_SMALL"]["reserved"] == 1
        assert node(c, uuid)["maintenance_reason"] == "fan"
        assert c.delete(f"/baremetal/v1/nodes/{uuid}/maintenance").status_code == 202
        assert inventory(c, uuid)["CUSTOM_BM_SMALL"]["reserved"] == 0
        # Labels move with the node.
        moved = c.patch(f"/baremetal/v1/nodes/{uuid}", json=[
            {"op": "replace", "path": "/properties/availability_zone", "value": "az2"},
            {"op": "replace", "path": "/properties/rack", "value": "r9"},
        ])  # fmt: skip
        assert moved.status_code == 200, moved.text
        zones = c.get("/compute/v2.1/os-aggregates").json()["aggregates"]
        assert {a["availability_zone"]: a["hosts"] for a in zones} == {"az1": [], "az2": [uuid]}
        assert c.delete(f"/baremetal/v1/nodes/{uuid}").status_code == 204
        assert c.get(f"/placement/resource_providers/{uuid}").status_code == 404
    db = Database(cloud.settings.resolved_database_url)
    with db.read() as session:
        assert session.scalar(select(ComputeHost).where(ComputeHost.name == uuid)) is None
    db.dispose()


def test_rack_and_region_are_copied_onto_the_host(cloud: Cloud) -> None:
    with ironic(cloud) as c:
        uuid = enroll(c, "n1", rack="r7", region="west")["uuid"]
    db = Database(cloud.settings.resolved_database_url)
    with db.read() as session:
        host = session.scalar(select(ComputeHost).where(ComputeHost.name == uuid))
        assert host is not None
        assert (host.rack, host.region, host.hypervisor_type, host.vcpus) == ("r7", "west", "ironic", 4)
    db.dispose()


def test_provision_and_power_through_the_conductor(cloud: Cloud, conductor: StandInConductor) -> None:
    with ironic(cloud) as c:
        uuid = enroll(c, "n1")["uuid"]
        wrong = provision(c, "n1", "provide", expect=400)
        assert 'while it is in state "enroll"' in fault(wrong)
        make_available(c, "n1")
        power = c.put(f"/baremetal/v1/nodes/{uuid}/states/power", json={"target": "power on"})
        assert power.status_code == 202
        wait_node(c, uuid, power_state="power on", target_power_state=None)
        states = c.get(f"/baremetal/v1/nodes/{uuid}/states").json()
        assert (states["provision_state"], states["power_state"], states["target_power_state"]) == (
            "available",
            "power on",
            None,
        )
    kinds = [t["kind"] for t in conductor.seen]
    assert kinds == ["node_verify", "node_clean", "node_power"]
    assert all(t["payload"]["node"]["uuid"] == uuid for t in conductor.seen)


def test_failed_verification_returns_to_enroll_with_the_error(
    cloud: Cloud, conductor: StandInConductor
) -> None:
    conductor.fail["node_verify"] = "BMCUnreachable: connection refused by 127.0.0.1:8000"
    with ironic(cloud) as c:
        enroll(c, "n1")
        provision(c, "n1", "manage")
        shown = wait_node(c, "n1", provision_state="enroll", target_provision_state=None)
    assert "connection refused" in shown["last_error"]


def _walk_names(c: httpx.Client, **params: str) -> list[str | None]:
    resp = c.get("/baremetal/v1/nodes", params={"limit": "1", **params}).json()
    names = [n["name"] for n in resp["nodes"]]
    while "next" in resp:
        resp = c.get(resp["next"]).json()
        names += [n["name"] for n in resp["nodes"]]
    return names


def test_paging_follows_the_sort_key(cloud: Cloud) -> None:
    """Pages of one node by name (a nullable key) visit every node once, in either direction."""
    with ironic(cloud) as c:
        for name in ("nc", "na", "nb"):
            enroll(c, name)
        unnamed = {"driver": "redfish", "resource_class": "bm.small"}
        assert c.post("/baremetal/v1/nodes", json=unnamed).status_code == 201
        assert _walk_names(c, sort_key="name") == [None, "na", "nb", "nc"]
        assert _walk_names(c, sort_key="name", sort_dir="desc") == ["nc", "nb", "na", None]
        assert _walk_names(c) == ["nc", "na", "nb", None]
