"""os-services: the rows per host, shapes per microversion, enable/disable/force-down, delete."""

from __future__ import annotations

import uuid

from tests.conftest import Cloud
from tests.functional.compute.helpers import API, add_instance, demo_token, project_id, register_hosts

KEYS_21 = {"id", "binary", "host", "zone", "status", "state", "updated_at", "disabled_reason"}


def _computes(c: object, **params: str) -> dict[str, dict[str, object]]:
    resp = c.get(f"{API}/os-services", params={"binary": "nova-compute", **params})  # type: ignore[attr-defined]
    assert resp.status_code == 200, resp.text
    return {s["host"]: s for s in resp.json()["services"]}


def test_list_rows_and_shapes(cloud: Cloud) -> None:
    register_hosts(cloud, "c1")
    register_hosts(cloud, "c2", heartbeat=False)
    with cloud.client(microversion="2.1") as c:
        services = c.get(f"{API}/os-services").json()["services"]
        binaries = sorted(s["binary"] for s in services)
        assert binaries == ["nova-compute", "nova-compute", "nova-conductor", "nova-scheduler"]
        assert all(set(s) == KEYS_21 for s in services)
        assert all(isinstance(s["id"], int) for s in services)
        assert len({s["id"] for s in services}) == 4
        computes = _computes(c)
        assert computes["c1"]["state"] == "up" and computes["c2"]["state"] == "down"
        assert computes["c1"]["zone"] == "nova" and computes["c1"]["status"] == "enabled"
        assert [s["host"] for s in c.get(f"{API}/os-services", params={"host": "c2"}).json()["services"]] == [
            "c2"
        ]
        internal = [s for s in services if s["binary"] == "nova-scheduler"][0]
        assert internal["zone"] == "internal" and internal["state"] == "up"
    with cloud.client(microversion="2.11") as c:
        assert all(
            set(s) == KEYS_21 | {"forced_down"} for s in c.get(f"{API}/os-services").json()["services"]
        )
    with cloud.client(microversion="2.53") as c:
        for s in c.get(f"{API}/os-services").json()["services"]:
            uuid.UUID(s["id"])


def test_disable_enable_force_down_by_uuid(cloud: Cloud) -> None:
    register_hosts(cloud, "c1")
    with cloud.client(microversion="2.53") as c:
        service_id = _computes(c)["c1"]["id"]
        resp = c.put(
            f"{API}/os-services/{service_id}", json={"status": "disabled", "disabled_reason": "maint"}
        )
        assert resp.status_code == 200
        body = resp.json()["service"]
        assert set(body) == KEYS_21 | {"forced_down"}
        assert (body["status"], body["disabled_reason"], body["id"]) == ("disabled", "maint", service_id)
        hypervisor = c.get(f"{API}/os-hypervisors/detail").json()["hypervisors"][0]
        assert hypervisor["status"] == "disabled" and hypervisor["service"]["disabled_reason"] == "maint"
        down = c.put(f"{API}/os-services/{service_id}", json={"forced_down": True}).json()["service"]
        assert down["forced_down"] is True and down["state"] == "down"
        up = c.put(f"{API}/os-services/{service_id}", json={"status": "enabled", "forced_down": False}).json()
        assert (up["service"]["status"], up["service"]["state"], up["service"]["disabled_reason"]) == (
            "enabled",
            "up",
            None,
        )
        bad = [
            ({"status": "enabled", "disabled_reason": "x"}, 400),
            ({}, 400),
            ({"status": "sleeping"}, 400),
            ({"forced_down": "maybe"}, 400),
        ]
        for body_, status in bad:
            assert c.put(f"{API}/os-services/{service_id}", json=body_).status_code == status, body_
        assert c.put(f"{API}/os-services/not-a-uuid", json={"status": "disabled"}).status_code == 400
        assert c.put(f"{API}/os-services/{uuid.uuid4()}", json={"status": "disabled"}).status_code == 404
        scheduler = [
            s for s in c.get(f"{API}/os-services").json()["services"] if s["binary"] == "nova-scheduler"
        ]
        assert (
            c.put(f"{API}/os-services/{scheduler[0]['id']}", json={"status": "disabled"}).status_code == 400
        )
        assert (
            c.put(f"{API}/os-services/disable", json={"host": "c1", "binary": "nova-compute"}).status_code
            == 400
        )


def test_legacy_actions_before_253(cloud: Cloud) -> None:
    register_hosts(cloud, "c1")
    with cloud.client(microversion="2.11") as c:
        target = {"host": "c1", "binary": "nova-compute"}
        resp = c.put(f"{API}/os-services/disable-log-reason", json={**target, "disabled_reason": "why"})
        assert resp.json() == {"service": {**target, "status": "disabled", "disabled_reason": "why"}}
        assert _computes(c)["c1"]["disabled_reason"] == "why"
        assert c.put(f"{API}/os-services/enable", json=target).json() == {
            "service": {**target, "status": "enabled"}
        }
        forced = c.put(f"{API}/os-services/force-down", json={**target, "forced_down": True}).json()
        assert forced == {"service": {**target, "forced_down": True}}
        assert _computes(c)["c1"]["state"] == "down"
        assert (
            c.put(f"{API}/os-services/disable", json={"host": "nope", "binary": "nova-compute"}).status_code
            == 404
        )
        assert c.put(f"{API}/os-services/explode", json=target).status_code == 404
    with cloud.client(microversion="2.10") as c:
        assert c.put(f"{API}/os-services/force-down", json={**target, "forced_down": True}).status_code == 404


def test_delete_refuses_busy_hosts(cloud: Cloud) -> None:
    register_hosts(cloud, "idle", "busy")
    with cloud.client(microversion="2.53") as c:
        add_instance(cloud, "busy", project_id(c, "admin"))
        computes = _computes(c)
        assert c.delete(f"{API}/os-services/{computes['busy']['id']}").status_code == 409
        assert c.delete(f"{API}/os-services/{computes['idle']['id']}").status_code == 204
        assert set(_computes(c)) == {"busy"}
        assert [h["hypervisor_hostname"] for h in c.get(f"{API}/os-hypervisors").json()["hypervisors"]] == [
            "busy"
        ]
        assert c.delete(f"{API}/os-services/{computes['idle']['id']}").status_code == 404


def test_admin_only(cloud: Cloud) -> None:
    register_hosts(cloud, "c1")
    with cloud.client(demo_token(cloud), microversion="2.53") as c:
        assert c.get(f"{API}/os-services").status_code == 403
        assert c.put(f"{API}/os-services/{uuid.uuid4()}", json={"status": "disabled"}).status_code == 403
