"""Moves through the API: the destination prepares, then the source moves the guest; a move
that fails at either step leaves the server ACTIVE where it was, says why in its event, gives
back the destination's claim and has the destination clean up (abort_migration)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kumo.agent.drivers.base import DriverError
from kumo.agent.drivers.fake import FakeDriver
from kumo.work.models import Task
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.helpers import database
from tests.functional.compute.test_dead_host import _force_down, _kill
from tests.functional.compute.test_servers import _create, _setup, _wait_status

API = "/compute/v2.1"


class RecordingDriver(FakeDriver):
    """A fake host that records the migration calls it gets and fails the ones it is told to."""

    def __init__(self, host: str, fail: str = "") -> None:
        super().__init__(host)
        self.fail = fail
        self.calls: list[tuple[str, dict[str, Any] | None]] = []

    def prepare_migration(self, instance: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("prepare", None))
        if self.fail == "prepare":
            raise DriverError(f"no room for {instance['uuid']} on {self.host}: disk full")
        return {"host": self.host, "uri": f"fake://{self.host}"}

    def abort_migration(self, instance: dict[str, Any]) -> None:
        self.calls.append(("abort", None))

    def migrate(
        self, instance: dict[str, Any], dest: str, live: bool, target: dict[str, Any] | None = None
    ) -> int:
        self.calls.append(("migrate", target))
        if self.fail == "migrate":
            raise DriverError(f"connection to {dest} lost mid-way")
        return super().migrate(instance, dest, live, target)


def _two_hosts(
    fleet: Fleet, src_fail: str = "", dst_fail: str = ""
) -> tuple[RecordingDriver, RecordingDriver]:
    src, dst = RecordingDriver("mig-src", src_fail), RecordingDriver("mig-dst", dst_fail)
    fleet.add("mig-src", driver=src)
    return src, dst


def _boot_on_source(c: httpx.Client) -> str:
    flavor, image = _setup(c)
    sid = _create(c, flavor, image, availability_zone="nova:mig-src")
    _wait_status(c, sid, "ACTIVE")
    return sid


def _migrate(c: httpx.Client, sid: str, live: bool) -> None:
    body: dict[str, Any] = (
        {"os-migrateLive": {"host": "mig-dst", "block_migration": "auto"}}
        if live
        else {"migrate": {"host": "mig-dst"}}
    )
    resp = c.post(f"{API}/servers/{sid}/action", json=body, headers={"OpenStack-API-Version": "compute 2.56"})
    assert resp.status_code == 202, resp.text


def _action(c: httpx.Client, sid: str, action: str) -> dict[str, Any]:
    listed = c.get(f"{API}/servers/{sid}/os-instance-actions").json()["instanceActions"]
    req = next(a["request_id"] for a in listed if a["action"] == action)
    shown = c.get(
        f"{API}/servers/{sid}/os-instance-actions/{req}", headers={"OpenStack-API-Version": "compute 2.51"}
    )
    return dict(shown.json()["instanceAction"])


def _events(c: httpx.Client, sid: str, action: str) -> list[dict[str, Any]]:
    return list(_action(c, sid, action)["events"])


def _dest_usage(c: httpx.Client) -> dict[str, int]:
    rps = c.get("/placement/resource_providers", params={"name": "mig-dst"}).json()["resource_providers"]
    return dict(c.get(f"/placement/resource_providers/{rps[0]['uuid']}/usages").json()["usages"])


def _settled(c: httpx.Client, sid: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        server = c.get(f"{API}/servers/{sid}").json()["server"]
        return server if server["OS-EXT-STS:task_state"] is None else None

    return dict(wait_for(done, timeout=30))


def _boot_and_move(c: httpx.Client, fleet: Fleet, dst: Any, live: bool) -> tuple[str, dict[str, Any]]:
    """Boot on mig-src, bring mig-dst up with driver `dst`, move there; the settled server."""
    sid = _boot_on_source(c)
    fleet.add("mig-dst", driver=dst)
    _migrate(c, sid, live=live)
    return sid, _settled(c, sid)


def test_live_migration_prepares_the_destination_then_moves(cloud: Cloud, fleet: Fleet) -> None:
    src, dst = _two_hosts(fleet)
    with cloud.client() as c:
        sid, server = _boot_and_move(c, fleet, dst, live=True)
        assert server["OS-EXT-SRV-ATTR:host"] == "mig-dst" and server["status"] == "ACTIVE"
        assert [k for k, _ in dst.calls] == ["prepare"]
        # The source moved the guest with what the destination prepared.
        assert src.calls == [("migrate", {"host": "mig-dst", "uri": "fake://mig-dst"})]
        events = _events(c, sid, "live-migration")
        assert [(e["event"], e["result"]) for e in events] == [("compute_live_migration", "Success")]


def test_failed_prepare_leaves_the_server_on_the_source(cloud: Cloud, fleet: Fleet) -> None:
    src, dst = _two_hosts(fleet, dst_fail="prepare")
    with cloud.client() as c:
        sid, server = _boot_and_move(c, fleet, dst, live=True)
        assert server["OS-EXT-SRV-ATTR:host"] == "mig-src" and server["status"] == "ACTIVE"
        assert src.calls == []  # the source never started moving
        (event,) = _events(c, sid, "live-migration")
        assert event["result"] == "Error"
        assert "Preparing mig-dst failed" in _action(c, sid, "live-migration")["message"]
        assert "disk full" in _action(c, sid, "live-migration")["message"]
        wait_for(lambda: ("abort", None) in dst.calls, timeout=15)
        assert _dest_usage(c).get("VCPU", 0) == 0  # the destination's claim is given back


def test_failed_cold_move_aborts_on_the_destination(cloud: Cloud, fleet: Fleet) -> None:
    src, dst = _two_hosts(fleet, src_fail="migrate")
    with cloud.client() as c:
        sid, server = _boot_and_move(c, fleet, dst, live=False)
        assert server["OS-EXT-SRV-ATTR:host"] == "mig-src" and server["status"] == "ACTIVE"
        (event,) = _events(c, sid, "migrate")
        assert event["result"] == "Error"
        assert "connection to mig-dst lost mid-way" in event["traceback"]  # admins see why
        assert "lost mid-way" in _action(c, sid, "migrate")["message"]
        wait_for(lambda: [k for k, _ in dst.calls] == ["prepare", "abort"], timeout=15)
        assert _dest_usage(c).get("VCPU", 0) == 0


def test_delete_while_resized_leaves_no_allocation(cloud: Cloud, fleet: Fleet) -> None:
    from kumo.compute.lifecycle import migration_consumer

    _, dst = _two_hosts(fleet)
    with cloud.client() as c:
        sid, server = _boot_and_move(c, fleet, dst, live=False)
        assert server["status"] == "VERIFY_RESIZE"  # holding both hosts
        assert c.get(f"/placement/allocations/{migration_consumer(sid)}").json()["allocations"]
        assert c.delete(f"{API}/servers/{sid}").status_code == 204
        wait_for(lambda: c.get(f"{API}/servers/{sid}").status_code == 404, timeout=15)
        for consumer in (sid, migration_consumer(sid)):
            assert c.get(f"/placement/allocations/{consumer}").json()["allocations"] == {}


@pytest.mark.parametrize("live", [True, False])
def test_a_local_delete_mid_move_aborts_on_the_destination(cloud: Cloud, fleet: Fleet, live: bool) -> None:
    """The source dies once the destination has prepared: the move waits for it, the server is
    deleted locally (its host is down), and the destination drops what it prepared."""
    src, dst = _two_hosts(fleet)
    with cloud.client() as c:
        sid = _boot_on_source(c)
        fleet.add("mig-dst", driver=dst)
        _kill(fleet, "mig-src")
        _migrate(c, sid, live=live)
        db = database(cloud)
        try:

            def prepared() -> bool:
                with db.read() as s:
                    done = s.scalar(
                        select(Task.state).where(Task.instance_uuid == sid, Task.kind == "prepare_migration")
                    )
                return done == "done"

            wait_for(prepared, timeout=15)
        finally:
            db.dispose()
        moving = c.get(f"{API}/servers/{sid}").json()["server"]["OS-EXT-STS:task_state"]
        assert moving == ("migrating" if live else "resize_migrating")
        _force_down(c, "mig-src")
        assert c.delete(f"{API}/servers/{sid}").status_code == 204
        assert c.get(f"{API}/servers/{sid}").status_code == 404
        wait_for(lambda: ("abort", None) in dst.calls, timeout=15)
        assert _dest_usage(c).get("VCPU", 0) == 0
        assert src.calls == []
