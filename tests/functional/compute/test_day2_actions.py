"""Day-2 server actions through openstacksdk, unmodified, on fake-driver agents: pause/unpause,
suspend/resume, rescue/unrescue, trigger crash dump, diagnostics, resize with revert and
confirm (placement's allocations checked at every step), the auto-confirm, and the refusals
(409 for the wrong state, a lock or a baremetal server; 400 for a resize to the same flavor or
a smaller disk; 403 over quota)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openstack import exceptions
from openstack.connection import Connection
from sqlalchemy import update

from kumo.agent.drivers import fake
from kumo.compute.lifecycle import migration_consumer
from kumo.compute.models import Instance
from tests.conftest import DEMO_PASSWORD, Cloud, Fleet, start_cloud, wait_for
from tests.functional.compute.helpers import add_instance, database, project_id
from tests.functional.sdk.test_sdk import IMAGE_DATA, connect

pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedFieldWarning")
API = "/compute/v2.1"


def wait_status(conn: Connection, server: Any, status: str) -> Any:
    """The server once in `status` with no task in flight (RESCUE and RESIZE show during
    their tasks too)."""

    def settled() -> Any:
        fresh = conn.compute.get_server(server.id)
        if fresh.status == "ERROR" and status != "ERROR":
            raise AssertionError(f"server {server.id} went to ERROR: {fresh.fault}")
        return fresh if fresh.status == status and fresh.task_state is None else None

    return wait_for(settled, timeout=30, interval=0.1)


def _image(conn: Connection) -> str:
    image = conn.image.create_image(
        "d2a-image", data=IMAGE_DATA, disk_format="raw", container_format="bare", visibility="public"
    )
    return str(image.id)


def _boot(conn: Connection, flavor: str, image: str, **extra: Any) -> Any:
    server = conn.compute.create_server(
        name="d2a-vm", flavor_id=flavor, image_id=image, networks="none", **extra
    )
    return wait_status(conn, server, "ACTIVE")


def _allocations(c: httpx.Client, consumer: str) -> dict[str, dict[str, int]]:
    """provider uuid -> resources held by `consumer` (placement's own answer)."""
    resp = c.get(f"/placement/allocations/{consumer}")
    assert resp.status_code == 200, resp.text
    return {rp: dict(a["resources"]) for rp, a in resp.json()["allocations"].items()}


def _provider(c: httpx.Client, host: str) -> str:
    resp = c.get("/placement/resource_providers", params={"name": host})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["resource_providers"][0]["uuid"])


def _actions(conn: Connection, server_id: str) -> list[str]:
    return [a.action for a in conn.compute.server_actions(server_id)]


def _events_ok(c: httpx.Client, server_id: str, action: str) -> list[tuple[str, str]]:
    listed = c.get(f"{API}/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    req = next(a["request_id"] for a in listed if a["action"] == action)
    shown = c.get(
        f"{API}/servers/{server_id}/os-instance-actions/{req}",
        headers={"OpenStack-API-Version": "compute 2.51"},
    ).json()["instanceAction"]
    return [(e["event"], e["result"]) for e in shown["events"]]


def _run_states(conn: Connection, admin: httpx.Client, server: Any, image: str) -> None:
    """pause/unpause, suspend/resume, rescue/unrescue, trigger_crash_dump, diagnostics."""
    sid = server.id
    # pause / unpause: the guest's power state follows; a second pause is Nova's 409
    conn.compute.pause_server(sid)
    paused = wait_status(conn, server, "PAUSED")
    assert (paused.vm_state, paused.power_state) == ("paused", 3)
    with pytest.raises(exceptions.ConflictException) as refused:
        conn.compute.pause_server(sid)
    assert f"Cannot 'pause' instance {sid} while it is in vm_state paused" in str(refused.value)
    conn.compute.unpause_server(sid)
    assert wait_status(conn, server, "ACTIVE").power_state == 1

    # suspend / resume
    conn.compute.suspend_server(sid)
    suspended = wait_status(conn, server, "SUSPENDED")
    assert (suspended.vm_state, suspended.power_state) == ("suspended", 7)
    with pytest.raises(exceptions.ConflictException):
        conn.compute.pause_server(sid)  # only an ACTIVE server pauses
    conn.compute.resume_server(sid)
    wait_status(conn, server, "ACTIVE")

    # rescue (the answer carries the password asked for) / unrescue
    resp = admin.post(f"{API}/servers/{sid}/action", json={"rescue": {"adminPass": "rescue-pw"}})
    assert resp.status_code == 200 and resp.json() == {"adminPass": "rescue-pw"}, resp.text
    rescued = wait_status(conn, server, "RESCUE")
    assert rescued.vm_state == "rescued" and sid in fake.RESCUED
    conn.compute.unrescue_server(sid)
    wait_status(conn, server, "ACTIVE")
    assert sid not in fake.RESCUED
    conn.compute.rescue_server(sid, image_ref=image)  # the sdk's way, a named rescue image
    wait_status(conn, server, "RESCUE")
    conn.compute.unrescue_server(sid)
    wait_status(conn, server, "ACTIVE")

    # trigger_crash_dump (2.17): an NMI, the states untouched, the event recorded
    nmis = fake.NMIS.get(sid, 0)
    conn.compute.trigger_server_crash_dump(sid)
    wait_for(lambda: fake.NMIS.get(sid, 0) == nmis + 1)
    wait_for(
        lambda: _events_ok(admin, sid, "trigger_crash_dump") == [("compute_trigger_crash_dump", "Success")]
    )
    old = admin.post(
        f"{API}/servers/{sid}/action",
        json={"trigger_crash_dump": None},
        headers={"OpenStack-API-Version": "compute 2.16"},
    )
    assert old.status_code == 404, old.text  # as Nova: not a method of 2.16

    # diagnostics (admin, 2.48's shape through the sdk)
    diagnostics = conn.compute.get_server_diagnostics(sid)
    assert (diagnostics.driver, diagnostics.state, diagnostics.num_cpus) == (
        "libvirt",
        "running",
        1,
    )  # as Nova's fake driver
    assert diagnostics.memory_details == {"maximum": 512, "used": 0}


def _walk(cloud: Cloud, fleet: Fleet, run_states: bool = True) -> None:
    """`run_states`: the actions that only change run states too (else the resize alone)."""
    fleet.add("d2a-h1", vcpus=4, memory_mb=8192)
    fleet.add("d2a-h2", vcpus=4, memory_mb=8192)
    conn = connect(cloud)
    admin = cloud.client(microversion="2.64")
    try:
        small = conn.compute.create_flavor(name="d2a.small", vcpus=1, ram=512, disk=1)
        big = conn.compute.create_flavor(name="d2a.big", vcpus=2, ram=1024, disk=2)
        image = _image(conn)
        server = _boot(conn, small.id, image)
        sid = server.id

        if run_states:
            _run_states(conn, admin, server, image)

        # resize refusals: the same flavor, a smaller disk
        with pytest.raises(exceptions.BadRequestException) as same:
            conn.compute.resize_server(sid, small.id)
        assert "When resizing, instances must change flavor!" in str(same.value)

        # resize, then revert: the allocations follow at every step
        host = conn.compute.get_server(sid).compute_host
        src_rp = _provider(admin, host)
        migration = migration_consumer(sid)
        conn.compute.resize_server(sid, big.id)
        resized = wait_status(conn, server, "VERIFY_RESIZE")
        assert resized.flavor["original_name"] == "d2a.big" and resized.compute_host != host
        dest_rp = _provider(admin, resized.compute_host)
        held = _allocations(admin, sid)
        assert held == {dest_rp: {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 2}}
        assert _allocations(admin, migration) == {src_rp: {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}
        with pytest.raises(exceptions.ConflictException):
            conn.compute.resize_server(sid, small.id)  # VERIFY_RESIZE: the state's 409 first
        conn.compute.revert_server_resize(sid)
        reverted = wait_status(conn, server, "ACTIVE")
        assert reverted.compute_host == host and reverted.flavor["original_name"] == "d2a.small"
        assert _allocations(admin, sid) == {src_rp: {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}
        assert _allocations(admin, migration) == {}

        # resize again, then confirm: the source's share goes
        conn.compute.resize_server(sid, big.id)
        wait_status(conn, server, "VERIFY_RESIZE")
        conn.compute.confirm_server_resize(sid)
        confirmed = wait_status(conn, server, "ACTIVE")
        assert confirmed.flavor["original_name"] == "d2a.big" and confirmed.flavor["vcpus"] == 2
        assert _allocations(admin, sid) == {
            _provider(admin, confirmed.compute_host): {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 2}
        }
        assert _allocations(admin, migration) == {}
        with pytest.raises(exceptions.BadRequestException) as down:
            conn.compute.resize_server(sid, small.id)
        assert "Unable to resize disk down" in str(down.value)

        states = {"pause", "unpause", "suspend", "resume", "rescue", "unrescue", "trigger_crash_dump"}
        moves = {"resize", "revertResize", "confirmResize"}
        assert set(_actions(conn, sid)) == {"create"} | moves | (states if run_states else set())
        assert ("compute_resize_instance", "Success") in _events_ok(admin, sid, "resize")
    finally:
        admin.close()
        conn.close()


def test_day2_actions_through_the_sdk(cloud: Cloud, fleet: Fleet) -> None:
    _walk(cloud, fleet)


def test_day2_actions_through_the_sdk_on_postgresql(pg_cloud: Cloud, pg_fleet: Fleet) -> None:
    """The resize's claims, renames and releases on PostgreSQL's store."""
    _walk(pg_cloud, pg_fleet, run_states=False)


def test_refusals_lock_quota_and_failures(cloud: Cloud, fleet: Fleet) -> None:
    """A lock refuses non-admins (409); a resize past the quota is 403 and changes nothing; a
    driver failure leaves the server as it was, the event saying why."""
    fleet.add("d2a-r1")
    conn = connect(cloud)
    admin = cloud.client(microversion="2.64")
    try:
        small = conn.compute.create_flavor(name="d2a.s", vcpus=1, ram=512, disk=1)
        huge = conn.compute.create_flavor(name="d2a.huge", vcpus=1, ram=60000, disk=1)
        image = _image(conn)
        demo = connect(cloud, user="demo", password=DEMO_PASSWORD, project="demo")
        try:
            server = demo.compute.create_server(
                name="d2a-demo", flavor_id=small.id, image_id=image, networks="none"
            )
            server = wait_status(demo, server, "ACTIVE")
            demo.compute.lock_server(server.id)
            with pytest.raises(exceptions.ConflictException) as locked:
                demo.compute.suspend_server(server.id)
            assert "is locked" in str(locked.value)
            demo.compute.unlock_server(server.id)
            before = _allocations(admin, server.id)
            with pytest.raises(exceptions.ForbiddenException) as over:
                demo.compute.resize_server(server.id, huge.id)
            assert "Quota exceeded for ram" in str(over.value)
            again = demo.compute.get_server(server.id)
            assert (again.status, again.flavor["original_name"]) == ("ACTIVE", "d2a.s")
            assert _allocations(admin, server.id) == before
            # a revert to a bigger old flavor counts its growth against the quota too
            tiny = conn.compute.create_flavor(name="d2a.tiny", vcpus=1, ram=256, disk=1)
            demo.compute.resize_server(server.id, tiny.id)
            wait_status(demo, server, "VERIFY_RESIZE")
            quota = f"{API}/os-quota-sets/{project_id(admin, 'demo')}"
            assert admin.put(quota, json={"quota_set": {"ram": 256}}).status_code == 200
            with pytest.raises(exceptions.ForbiddenException) as over:
                demo.compute.revert_server_resize(server.id)
            assert "Quota exceeded for ram" in str(over.value)
            assert demo.compute.get_server(server.id).status == "VERIFY_RESIZE"
            assert admin.put(quota, json={"quota_set": {"ram": -1}}).status_code == 200
            demo.compute.revert_server_resize(server.id)
            reverted = wait_status(demo, server, "ACTIVE")
            assert reverted.flavor["original_name"] == "d2a.s"
            # diagnostics are an admin's
            with pytest.raises(exceptions.ForbiddenException):
                demo.compute.get_server_diagnostics(server.id)
        finally:
            demo.close()

        failing = _boot(conn, small.id, image, metadata={"fake_day2_error": "the hypervisor said no"})
        conn.compute.pause_server(failing.id)
        wait_for(lambda: _events_ok(admin, failing.id, "pause") == [("compute_pause_instance", "Error")])
        shown = wait_status(conn, failing, "ACTIVE")
        assert shown.task_state is None and shown.power_state == 1
        # a failed same-host resize gives the old flavor and the claim back
        conn.compute.resize_server(
            failing.id, conn.compute.create_flavor(name="d2a.m", vcpus=2, ram=512, disk=1).id
        )
        wait_for(lambda: _events_ok(admin, failing.id, "resize") == [("compute_resize_instance", "Error")])
        back = wait_status(conn, failing, "ACTIVE")
        assert back.flavor["original_name"] == "d2a.s"
        assert list(_allocations(admin, failing.id).values()) == [{"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}]
        assert _allocations(admin, migration_consumer(failing.id)) == {}
    finally:
        admin.close()
        conn.close()


@pytest.fixture
def confirming_cloud(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cloud]:
    """A cloud whose API confirms resizes left unconfirmed for 1 s."""
    monkeypatch.setenv("KUMO_RESIZE_CONFIRM_WINDOW", "1")
    c = start_cloud(tmp_path, template=sqlite_template)
    yield c
    c.server.stop()


def test_a_resize_on_its_own_host_is_confirmed_automatically(confirming_cloud: Cloud) -> None:
    """One host: the resize lands on it (both claims there until confirmed), and the
    auto-confirm (resize_confirm_window) confirms it, recording confirmResize."""
    fleet = Fleet(confirming_cloud)
    fleet.add("d2a-one", vcpus=4, memory_mb=8192)
    conn = connect(confirming_cloud)
    admin = confirming_cloud.client(microversion="2.64")
    try:
        small = conn.compute.create_flavor(name="d2a.a", vcpus=1, ram=512, disk=1)
        big = conn.compute.create_flavor(name="d2a.b", vcpus=2, ram=1024, disk=1)
        server = _boot(conn, small.id, _image(conn))
        rp = _provider(admin, "d2a-one")
        conn.compute.resize_server(server.id, big.id)
        resized = wait_status(conn, server, "VERIFY_RESIZE")
        assert resized.compute_host == "d2a-one"
        assert _allocations(admin, server.id) == {rp: {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 1}}
        confirmed = wait_status(conn, server, "ACTIVE")
        assert confirmed.flavor["original_name"] == "d2a.b"
        assert _allocations(admin, migration_consumer(server.id)) == {}
        assert "confirmResize" in _actions(conn, server.id)
    finally:
        admin.close()
        conn.close()
        fleet.stop()


def test_a_baremetal_server_refuses_them_with_409(cloud: Cloud) -> None:
    """A node's server (its host is the node's uuid): each day-2 action is a clear 409."""
    with cloud.client(microversion="2.64") as admin:
        sid = add_instance(cloud, None, project_id(admin, "admin"), name="metal")
        db = database(cloud)
        try:
            with db.transaction() as s:
                s.execute(update(Instance).where(Instance.uuid == sid).values(host=str(uuid.uuid4())))
        finally:
            db.dispose()
        for body in (
            {"pause": None},
            {"suspend": None},
            {"rescue": None},
            {"resize": {"flavorRef": "1"}},
            {"trigger_crash_dump": None},
        ):
            resp = admin.post(f"{API}/servers/{sid}/action", json=body)
            assert resp.status_code == 409, resp.text
            assert "it is a baremetal server" in resp.json()["conflictingRequest"]["message"]
        assert admin.get(f"{API}/servers/{sid}/diagnostics").status_code == 409
