"""Servers on baremetal nodes through the compute API, with a conductor stand-in: a baremetal
flavor lands on an available node, deploy failures and teardown, adoption without power
actions, and moves refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Cloud, wait_for
from tests.functional.baremetal.helpers import (
    bm_flavor,
    create_server,
    enroll,
    image,
    inventory,
    ironic,
    make_available,
    node,
    provision,
    server,
    wait_node,
    wait_server,
)
from tests.functional.baremetal.standin import StandInConductor
from tests.functional.compute.helpers import demo_token, project_id


@pytest.fixture
def conductor(cloud: Cloud) -> Iterator[StandInConductor]:
    c = StandInConductor(cloud.url, cloud.settings.secret("agent_token")).start()
    yield c
    c.stop()


def allocations(c: object, consumer: str) -> dict[str, object]:
    import httpx

    assert isinstance(c, httpx.Client)
    resp = c.get(f"/placement/allocations/{consumer}", headers={"OpenStack-API-Version": "placement 1.28"})
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["allocations"])


def test_server_lands_on_an_available_node_and_delete_returns_it(
    cloud: Cloud, conductor: StandInConductor
) -> None:
    with ironic(cloud) as c:
        busy = enroll(c, "enrolled-only")["uuid"]  # never made available: never picked
        uuid = enroll(c, "n1", availability_zone="az1")["uuid"]
        make_available(c, uuid)
        flavor, img = bm_flavor(c), image(c)
        sid = create_server(c, flavor, img)
        shown = wait_server(c, sid, "ACTIVE")
        assert shown["OS-EXT-SRV-ATTR:hypervisor_hostname"] == uuid
        assert shown["OS-EXT-AZ:availability_zone"] == "az1"
        n = node(c, uuid)
        assert (n["provision_state"], n["instance_uuid"], n["power_state"]) == ("active", sid, "power on")
        assert n["instance_info"]["image_source"] == img
        assert allocations(c, sid)[uuid]["resources"] == {"CUSTOM_BM_SMALL": 1}  # type: ignore[index]
        spawn = next(t for t in conductor.seen if t["kind"] == "spawn")
        assert spawn["host"] == uuid and spawn["payload"]["node"]["uuid"] == uuid
        assert spawn["payload"]["image_ref"] == img
        # The machine is switched off behind kumo's back: the power sync pass says so.
        report = {"nodes": {uuid: "power off"}}
        conductor.http.put("/internal/v1/conductors/standin/power-states", json=report).raise_for_status()
        wait_server(c, sid, "SHUTOFF")
        assert node(c, uuid)["power_state"] == "power off"
        # A second server finds no other node.
        other = create_server(c, flavor, img, name="bm2")
        failed = wait_server(c, other, "ERROR")
        assert "No valid host" in failed["fault"]["message"]
        assert c.delete(f"/compute/v2.1/servers/{other}").status_code == 204
        # Delete: the node is torn down and offered again.
        assert c.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
        n = wait_node(c, uuid, provision_state="available")
        assert n["instance_uuid"] is None and n["power_state"] == "power off" and n["instance_info"] == {}
        assert inventory(c, uuid)["CUSTOM_BM_SMALL"]["reserved"] == 0
        assert allocations(c, sid) == {}
        assert node(c, busy)["provision_state"] == "enroll"
    kinds = [t["kind"] for t in conductor.seen if t["host"] == uuid]
    assert kinds == ["node_verify", "node_clean", "spawn", "delete"]


def test_deploy_failure_puts_the_server_in_error_and_the_node_in_deploy_failed(
    cloud: Cloud, conductor: StandInConductor
) -> None:
    conductor.fail["spawn"] = "DeployTimeout: no deploy-complete marker on the console after 600 s"
    with ironic(cloud) as c:
        uuid = enroll(c, "n1")["uuid"]
        make_available(c, uuid)
        sid = create_server(c, bm_flavor(c), image(c))
        failed = wait_server(c, sid, "ERROR")
        assert "DeployTimeout" in failed["fault"]["message"]
        n = node(c, uuid)
        assert n["provision_state"] == "deploy failed" and n["instance_uuid"] == sid
        assert "Deploy failed: DeployTimeout" in n["last_error"]
        # The operator deletes the server: the node is cleaned and offered again.
        conductor.fail.clear()
        assert c.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
        n = wait_node(c, uuid, provision_state="available")
        assert n["instance_uuid"] is None and n["last_error"] is None


def test_a_failed_teardown_leaves_the_node_in_error_for_the_operator(
    cloud: Cloud, conductor: StandInConductor
) -> None:
    with ironic(cloud) as c:
        uuid = enroll(c, "n1")["uuid"]
        make_available(c, uuid)
        sid = create_server(c, bm_flavor(c), image(c))
        wait_server(c, sid, "ACTIVE")
        conductor.fail["delete"] = "BMCUnreachable: the BMC did not answer"
        c.delete(f"/compute/v2.1/servers/{sid}")
        wait_server(c, sid, "ERROR")
        n = wait_node(c, uuid, provision_state="error")
        assert "BMC did not answer" in n["last_error"]
        conductor.fail.clear()
        c.delete(f"/compute/v2.1/servers/{sid}")
        wait_node(c, uuid, provision_state="available")


def test_rebuild_redeploys_and_moves_are_refused(cloud: Cloud, conductor: StandInConductor) -> None:
    with ironic(cloud) as c:
        uuid = enroll(c, "n1")["uuid"]
        spare = enroll(c, "n2")["uuid"]
        make_available(c, uuid)
        img = image(c)
        sid = create_server(c, bm_flavor(c), img)
        wait_server(c, sid, "ACTIVE")
        make_available(c, spare)  # somewhere to move to, in principle
        rebuilt = c.post(f"/compute/v2.1/servers/{sid}/action", json={"rebuild": {"imageRef": img}})
        assert rebuilt.status_code == 202, rebuilt.text
        wait_for(lambda: [t for t in conductor.seen if t["kind"] == "rebuild"])
        wait_server(c, sid, "ACTIVE")
        assert node(c, uuid)["provision_state"] == "active"
        assert c.post(f"/compute/v2.1/servers/{sid}/action", json={"os-stop": None}).status_code == 202
        wait_server(c, sid, "SHUTOFF")
        assert node(c, uuid)["power_state"] == "power off"
        assert c.post(f"/compute/v2.1/servers/{sid}/action", json={"os-start": None}).status_code == 202
        wait_server(c, sid, "ACTIVE")
        assert node(c, uuid)["power_state"] == "power on"
        # Power off through the baremetal API: the server follows.
        power = c.put(f"/baremetal/v1/nodes/{uuid}/states/power", json={"target": "power off"})
        assert power.status_code == 202, power.text
        wait_server(c, sid, "SHUTOFF")
        assert node(c, uuid)["target_power_state"] is None
        assert c.post(f"/compute/v2.1/servers/{sid}/action", json={"os-start": None}).status_code == 202
        wait_server(c, sid, "ACTIVE")
        moved = c.post(f"/compute/v2.1/servers/{sid}/action", json={"migrate": None})
        assert moved.status_code == 409, moved.text
        assert "physical machine" in moved.text
        assert server(c, sid)["status"] == "ACTIVE"
        assert node(c, spare)["provision_state"] == "available"
        usages = c.get(f"/placement/resource_providers/{spare}/usages").json()["usages"]
        assert usages.get("CUSTOM_BM_SMALL", 0) == 0


def test_adoption_makes_a_server_without_any_power_action(cloud: Cloud, conductor: StandInConductor) -> None:
    with ironic(cloud) as c:
        demo = project_id(c, "demo")
        bm_flavor(c)  # the flavor adoption picks: the first asking for one CUSTOM_BM_SMALL
        uuid = enroll(c, "legacy-1", availability_zone="az1")["uuid"]
        provision(c, uuid, "manage")
        wait_node(c, uuid, provision_state="manageable")
        no_project = provision(c, uuid, "adopt", expect=400)
        assert "instance_info/project_id" in no_project.text
        patch = [
            {"op": "add", "path": "/extra/kumo:project_id", "value": demo},
            {"op": "add", "path": "/instance_info/display_name", "value": "legacy-db"},
        ]
        assert c.patch(f"/baremetal/v1/nodes/{uuid}", json=patch).status_code == 200
        conductor.power[uuid] = "power on"  # the machine runs already
        provision(c, uuid, "adopt")
        n = wait_node(c, uuid, provision_state="active")
        assert n["power_state"] == "power on" and n["instance_uuid"]
        assert allocations(c, n["instance_uuid"])[uuid]["resources"] == {"CUSTOM_BM_SMALL": 1}  # type: ignore[index]
        assert inventory(c, uuid)["CUSTOM_BM_SMALL"]["reserved"] == 0
    with ironic(cloud, demo_token(cloud)) as mine:
        listed = mine.get("/compute/v2.1/servers").json()["servers"]
        assert [s["name"] for s in listed] == ["legacy-db"]
        shown = server(mine, n["instance_uuid"])
        assert shown["status"] == "ACTIVE" and shown["flavor"]["original_name"] == "bm.small"
    kinds = [t["kind"] for t in conductor.seen if t["host"] == uuid]
    assert kinds == ["node_verify", "node_adopt"]  # read the power state, never changed it
    # The adopted server is an ordinary one: delete tears the node down to available.
    with ironic(cloud) as c:
        assert c.delete(f"/compute/v2.1/servers/{n['instance_uuid']}").status_code == 204
        wait_node(c, uuid, provision_state="available")


def test_an_adopted_server_takes_actions(cloud: Cloud, conductor: StandInConductor) -> None:
    """An adopted server has no task in flight (not the column's default, scheduling): it can
    be stopped and started like any other."""
    with ironic(cloud) as c:
        demo = project_id(c, "demo")
        bm_flavor(c)
        uuid = enroll(c, "legacy-2")["uuid"]
        provision(c, uuid, "manage")
        wait_node(c, uuid, provision_state="manageable")
        patch = [{"op": "add", "path": "/extra/kumo:project_id", "value": demo}]
        assert c.patch(f"/baremetal/v1/nodes/{uuid}", json=patch).status_code == 200
        conductor.power[uuid] = "power on"
        provision(c, uuid, "adopt")
        sid = wait_node(c, uuid, provision_state="active")["instance_uuid"]
        shown = server(c, sid)
        assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
        stopped = c.post(f"/compute/v2.1/servers/{sid}/action", json={"os-stop": None})
        assert stopped.status_code == 202, stopped.text
        wait_server(c, sid, "SHUTOFF")
        started = c.post(f"/compute/v2.1/servers/{sid}/action", json={"os-start": None})
        assert started.status_code == 202, started.text
        wait_server(c, sid, "ACTIVE")


def test_spawn_and_delete_on_postgresql(pg_cloud: Cloud) -> None:
    conductor = StandInConductor(pg_cloud.url, pg_cloud.settings.secret("agent_token")).start()
    try:
        with ironic(pg_cloud) as c:
            uuid = enroll(c, "n1")["uuid"]
            make_available(c, uuid)
            sid = create_server(c, bm_flavor(c), image(c))
            assert wait_server(c, sid, "ACTIVE")["OS-EXT-SRV-ATTR:hypervisor_hostname"] == uuid
            assert c.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
            wait_node(c, uuid, provision_state="available", instance_uuid=None)
    finally:
        conductor.stop()
