"""Operating a dead host, as in Nova: a server whose host is down is deleted in the API (its
allocations and quota freed), os-resetState, forceDelete, evacuate (only from a host whose
service is down), forced_down for the scheduler, service delete once the host is empty, and a
host that comes back destroys the guests that moved or were deleted meanwhile, nothing else."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from kumo.agent.drivers.fake import _GUESTS, FakeDriver
from kumo.compute import hosts
from kumo.compute.models import ComputeHost
from kumo.db import utcnow
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.helpers import (
    API,
    BACKENDS,
    add_instance,
    database,
    demo_token,
    either_cloud,
    project_id,
)
from tests.functional.compute.test_servers import _create, _server, _setup, _wait_status

MV = "2.64"


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


@pytest.fixture
def any_fleet(any_cloud: Cloud) -> Iterator[Fleet]:
    f = Fleet(any_cloud)
    yield f
    f.stop()


def _kill(fleet: Fleet, name: str) -> None:
    """The host's agent stops for good (its guests stay in the fake hypervisor)."""
    agent = next(a for a in fleet.agents if a.host == name)
    agent.stop()
    fleet.agents.remove(agent)


def _age_heartbeat(cloud: Cloud, name: str) -> None:
    """The host's last heartbeat is an hour old: down, as a dead agent's host becomes."""
    db = database(cloud)
    try:
        with db.transaction() as s:
            old = utcnow() - dt.timedelta(hours=1)
            s.execute(update(ComputeHost).where(ComputeHost.name == name).values(last_heartbeat=old))
    finally:
        db.dispose()


def _service_id(c: httpx.Client, name: str) -> str:
    found = c.get(f"{API}/os-services", params={"host": name}, headers=_mv("2.53")).json()["services"]
    return str(found[0]["id"])


def _force_down(c: httpx.Client, name: str, down: bool = True) -> None:
    resp = c.put(f"{API}/os-services/{_service_id(c, name)}", json={"forced_down": down}, headers=_mv("2.53"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["service"]["state"] == ("down" if down else "up")


def _dead(fleet: Fleet, c: httpx.Client, name: str) -> None:
    """The host's agent stops for good and the host is forced down: down at once."""
    _kill(fleet, name)
    _force_down(c, name)


def _mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def _action(c: httpx.Client, sid: str, body: dict[str, Any], version: str = MV) -> httpx.Response:
    return c.post(f"{API}/servers/{sid}/action", json=body, headers=_mv(version))


def _usage(c: httpx.Client, name: str) -> dict[str, int]:
    rps = c.get("/placement/resource_providers", params={"name": name}).json()["resource_providers"]
    return dict(c.get(f"/placement/resource_providers/{rps[0]['uuid']}/usages").json()["usages"])


def _instances_in_use(c: httpx.Client) -> int:
    detail = c.get(f"{API}/os-quota-sets/{project_id(c, 'admin')}/detail").json()["quota_set"]
    return int(detail["instances"]["in_use"])


def _actions(c: httpx.Client, sid: str) -> list[str]:
    listed = c.get(f"{API}/servers/{sid}/os-instance-actions").json()["instanceActions"]
    return [a["action"] for a in listed]


def _gone(c: httpx.Client, sid: str) -> bool:
    return c.get(f"{API}/servers/{sid}").status_code == 404


def _host_of(server: dict[str, Any]) -> str:
    return str(server["OS-EXT-SRV-ATTR:host"])


def _boot_on(c: httpx.Client, flavor: str, image: str, host: str, name: str = "vm") -> str:
    sid = _create(c, flavor, image, name=name, availability_zone=f"nova:{host}")
    _wait_status(c, sid, "ACTIVE")
    return sid


def test_delete_on_a_dead_host_completes_and_frees_everything(any_cloud: Cloud, any_fleet: Fleet) -> None:
    """An ACTIVE server, one stuck in `deleting` and one in BUILD whose spawn was never taken:
    once the host is down (heartbeat too old), a delete completes each of them."""
    any_fleet.add("dh-1")
    with any_cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        active = _boot_on(c, flavor, image, "dh-1", "active")
        stuck = _boot_on(c, flavor, image, "dh-1", "stuck")
        _kill(any_fleet, "dh-1")
        # The agent is gone but its heartbeat is still fresh: the delete waits for it...
        assert c.delete(f"{API}/servers/{stuck}").status_code == 204
        assert c.get(f"{API}/servers/{stuck}").json()["server"]["OS-EXT-STS:task_state"] == "deleting"
        # ...and so does a spawn (the scheduler still sees the host up).
        building = _create(c, flavor, image, name="building", availability_zone="nova:dh-1")
        wait_for(
            lambda: c.get(f"{API}/servers/{building}").json()["server"]["OS-EXT-STS:task_state"] == "spawning"
        )
        assert c.delete(f"{API}/servers/{stuck}").status_code == 409
        assert _instances_in_use(c) == 3 and _usage(c, "dh-1")["VCPU"] == 6
        _age_heartbeat(any_cloud, "dh-1")
        for sid in (active, stuck, building):
            assert c.delete(f"{API}/servers/{sid}").status_code == 204
            assert _gone(c, sid)
        assert _instances_in_use(c) == 0
        assert _usage(c, "dh-1") == {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0}
        shown = c.get(f"{API}/servers/{active}/os-instance-actions", headers=_mv("2.51")).json()[
            "instanceActions"
        ]
        delete = next(a for a in shown if a["action"] == "delete")
        detail = c.get(
            f"{API}/servers/{active}/os-instance-actions/{delete['request_id']}", headers=_mv("2.51")
        )
        (event,) = detail.json()["instanceAction"]["events"]
        assert (event["event"], event["result"]) == ("api_local_delete", "Success")


def test_reset_state_is_admin_only_and_recorded(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("rs-1")
    with cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        sid = _boot_on(c, flavor, image, "rs-1")
        _kill(fleet, "rs-1")
        assert _action(c, sid, {"os-stop": None}).status_code == 202  # never answered
        assert c.get(f"{API}/servers/{sid}").json()["server"]["OS-EXT-STS:task_state"] == "powering-off"
        assert _action(c, sid, {"os-resetState": {"state": "error"}}).status_code == 202
        server = c.get(f"{API}/servers/{sid}").json()["server"]
        assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ERROR", None)
        assert _action(c, sid, {"os-resetState": {"state": "active"}}).status_code == 202
        assert c.get(f"{API}/servers/{sid}").json()["server"]["status"] == "ACTIVE"
        assert _actions(c, sid)[:2] == ["resetState", "resetState"]
        for bad in ({"os-resetState": {"state": "stopped"}}, {"os-resetState": {}}, {"os-resetState": None}):
            resp = _action(c, sid, bad)
            assert resp.status_code == 400 and "badRequest" in resp.json(), bad
    with cloud.client(demo_token(cloud), microversion=MV) as demo:
        assert _action(demo, sid, {"os-resetState": {"state": "error"}}).status_code in (403, 404)


def test_a_forced_down_host_takes_no_servers_and_force_deletes_locally(cloud: Cloud, fleet: Fleet) -> None:
    """forced_down (the legacy 2.11 action) is down at once, for the scheduler as for delete."""
    fleet.add("fd-1")
    fleet.add("fd-2")
    with cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        sid = _boot_on(c, flavor, image, "fd-1")
        _kill(fleet, "fd-1")
        forced = c.put(
            f"{API}/os-services/force-down",
            json={"host": "fd-1", "binary": "nova-compute", "forced_down": True},
            headers=_mv("2.11"),
        )
        assert forced.status_code == 200, forced.text
        others = [_create(c, flavor, image, name=f"vm{i}") for i in range(3)]
        assert {_host_of(_wait_status(c, other, "ACTIVE")) for other in others} == {"fd-2"}
        assert _action(c, sid, {"forceDelete": None}).status_code == 202
        assert _gone(c, sid)
        assert _usage(c, "fd-1")["VCPU"] == 0 and _instances_in_use(c) == 3


def test_force_delete_overrides_a_delete_in_flight_on_a_live_host(cloud: Cloud, fleet: Fleet) -> None:
    slow = FakeDriver("fl-1")
    fleet.add("fl-1", driver=slow)
    with cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        sid = _boot_on(c, flavor, image, "fl-1")
        slow.delay = 3.0
        assert c.delete(f"{API}/servers/{sid}").status_code == 204
        assert c.delete(f"{API}/servers/{sid}").status_code == 409  # a delete is in flight
        assert _action(c, sid, {"forceDelete": None}).status_code == 202
        wait_for(lambda: _gone(c, sid), timeout=30)
        assert sid not in _GUESTS["fl-1"] and _usage(c, "fl-1")["VCPU"] == 0


def test_evacuate_moves_the_server_and_its_allocations(any_cloud: Cloud, any_fleet: Fleet) -> None:
    any_fleet.add("ev-src")
    with any_cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        sid = _boot_on(c, flavor, image, "ev-src")
        any_fleet.add("ev-dst")
        _kill(any_fleet, "ev-src")
        refused = _action(c, sid, {"evacuate": {}})
        assert refused.status_code == 400, refused.text
        assert refused.json()["badRequest"]["message"] == "Compute service of ev-src is still in use."
        _age_heartbeat(any_cloud, "ev-src")
        resp = _action(c, sid, {"evacuate": {}})
        assert resp.status_code == 200, resp.text
        server = _wait_status(c, sid, "ACTIVE")
        assert _host_of(server) == "ev-dst" and server["OS-EXT-STS:task_state"] is None
        assert sid in _GUESTS["ev-dst"]
        assert _usage(c, "ev-src")["VCPU"] == 0 and _usage(c, "ev-dst")["VCPU"] == 2
        assert _instances_in_use(c) == 1
        assert _actions(c, sid)[0] == "evacuate"
        # A stopped server comes back stopped (and its action ends with the stop).
        stopped = _boot_on(c, flavor, image, "ev-dst", "stopped")
        assert _action(c, stopped, {"os-stop": None}).status_code == 202
        _wait_status(c, stopped, "SHUTOFF")
        any_fleet.add("ev-third")
        _dead(any_fleet, c, "ev-dst")
        assert _action(c, stopped, {"evacuate": {"host": "ev-third"}}).status_code == 200
        server = wait_for(lambda: (s := _server(c, stopped))["OS-EXT-STS:task_state"] is None and s)
        assert (server["status"], _host_of(server)) == ("SHUTOFF", "ev-third")


def test_evacuate_at_2_95_leaves_the_server_stopped(cloud: Cloud, fleet: Fleet) -> None:
    """2.95: an active server evacuated is stopped at its destination, within the evacuation."""
    fleet.add("e95-src")
    with cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        sid = _boot_on(c, flavor, image, "e95-src")
        fleet.add("e95-dst")
        _dead(fleet, c, "e95-src")
        assert _action(c, sid, {"evacuate": {}}, "2.95").status_code == 200
        server = wait_for(lambda: (s := _server(c, sid))["OS-EXT-STS:task_state"] is None and s)
        assert (server["status"], _host_of(server)) == ("SHUTOFF", "e95-dst")
        assert server["OS-EXT-STS:power_state"] == 4
        assert _actions(c, sid)[0] == "evacuate"


def test_evacuate_requests_nova_refuses(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("er-src")
    with cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        sid = _boot_on(c, flavor, image, "er-src")
        _dead(fleet, c, "er-src")
        cases: list[tuple[dict[str, Any], str, int]] = [
            ({"host": "er-src"}, MV, 400),  # the same host
            ({"host": "nowhere"}, MV, 404),
            ({"force": True}, MV, 400),  # forced to no destination
            ({"force": True}, "2.28", 400),  # no force before 2.29
            ({"onSharedStorage": False}, MV, 400),  # gone in 2.14
            ({}, "2.13", 400),  # required before 2.14
            ({"host": 5}, MV, 400),
            ({"host": "no such/host"}, MV, 400),  # Nova's hostname pattern, as for migrate
        ]
        for body, version, status in cases:
            resp = _action(c, sid, {"evacuate": body}, version)
            assert resp.status_code == status, (body, version, resp.text)
        # No other host: no valid host, and the server stays where it was.
        resp = _action(c, sid, {"evacuate": {}})
        assert resp.status_code == 400 and "No valid host found for evacuation" in resp.text
        assert _host_of(c.get(f"{API}/servers/{sid}").json()["server"]) == "er-src"
        # A named host (2.29) is the destination; before 2.14 the answer carries the password.
        fleet.add("er-a")
        fleet.add("er-b")
        resp = _action(c, sid, {"evacuate": {"host": "er-b", "onSharedStorage": False}}, "2.13")
        assert resp.status_code == 200 and resp.json()["adminPass"]
        assert _host_of(_wait_status(c, sid, "ACTIVE")) == "er-b"
    with cloud.client(demo_token(cloud), microversion=MV) as demo:
        assert _action(demo, sid, {"evacuate": {}}).status_code in (403, 404)


def test_baremetal_servers_cannot_be_evacuated(cloud: Cloud) -> None:
    db = database(cloud)
    try:
        with db.transaction() as s:
            hosts.register_host(s, "bm-node", vcpus=0, memory_mb=0, disk_gb=0, hypervisor_type="ironic")
    finally:
        db.dispose()
    with cloud.client(microversion=MV) as c:
        sid = add_instance(cloud, "bm-node", project_id(c, "admin"))
        resp = _action(c, sid, {"evacuate": {}})
        assert resp.status_code == 400 and "Baremetal servers cannot be evacuated" in resp.text


def test_a_returning_host_destroys_only_what_left_it(cloud: Cloud, fleet: Fleet) -> None:
    """Evacuated and deleted while it was away: destroyed when its agent comes back. The server
    still assigned to it, and one booted there after its return, stay."""
    fleet.add("rh-old")
    with cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        moved = _boot_on(c, flavor, image, "rh-old", "moved")
        gone_later = _boot_on(c, flavor, image, "rh-old", "moved-then-deleted")
        deleted = _boot_on(c, flavor, image, "rh-old", "deleted")
        stays = _boot_on(c, flavor, image, "rh-old", "stays")
        fleet.add("rh-new")
        _dead(fleet, c, "rh-old")
        for sid in (moved, gone_later):
            assert _action(c, sid, {"evacuate": {"host": "rh-new"}}).status_code == 200
            assert _host_of(_wait_status(c, sid, "ACTIVE")) == "rh-new"
        assert c.delete(f"{API}/servers/{gone_later}").status_code == 204  # by rh-new's agent
        wait_for(lambda: gone_later not in _GUESTS["rh-new"] and _gone(c, gone_later))
        assert c.delete(f"{API}/servers/{deleted}").status_code == 204  # locally
        assert {moved, gone_later, deleted, stays} <= set(_GUESTS["rh-old"])
        fleet.add("rh-old")
        _force_down(c, "rh-old", down=False)
        wait_for(lambda: set(_GUESTS["rh-old"]) == {stays})
        fresh = _boot_on(c, flavor, image, "rh-old", "fresh")
        assert set(_GUESTS["rh-old"]) == {stays, fresh}
        assert moved in _GUESTS["rh-new"]
        assert c.get(f"{API}/servers/{stays}").json()["server"]["status"] == "ACTIVE"


def test_service_delete_once_its_servers_are_gone(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("sd-1")
    with cloud.client(microversion="2.53") as c:
        flavor, image = _setup(c)
        sid = _boot_on(c, flavor, image, "sd-1")
        _dead(fleet, c, "sd-1")
        service = _service_id(c, "sd-1")
        busy = c.delete(f"{API}/os-services/{service}")
        assert busy.status_code == 409 and "hosting instances" in busy.json()["conflictingRequest"]["message"]
        assert c.delete(f"{API}/servers/{sid}").status_code == 204
        assert c.delete(f"{API}/os-services/{service}").status_code == 204
        assert (
            c.get("/placement/resource_providers", params={"name": "sd-1"}).json()["resource_providers"] == []
        )
        assert c.get(f"{API}/os-services", params={"host": "sd-1"}).json()["services"] == []
