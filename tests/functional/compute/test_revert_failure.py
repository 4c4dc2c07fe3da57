"""A resize revert that fails on the host leaves the server in ERROR with a fault, its failed
event on the revertResize action and its migration errored, as Nova, with the flavor it was
resized to and both claims as they were (fake-driver agent: the metadata `fake_day2_error`
fails the guest's resize back on its own host); a reset to active then releases the source's
share, and a reset server resizes again."""

from __future__ import annotations

from typing import Any

from kumo.compute.lifecycle import migration_consumer
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.helpers import API
from tests.functional.compute.test_dead_host import _dead
from tests.functional.helpers import make_flavor, upload_image


def _allocations(c: Any, consumer: str) -> list[dict[str, int]]:
    resp = c.get(f"/placement/allocations/{consumer}")
    assert resp.status_code == 200, resp.text
    return [dict(a["resources"]) for a in resp.json()["allocations"].values()]


SMALL = {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}
BIG = {"VCPU": 1, "MEMORY_MB": 1024, "DISK_GB": 1}


def _fail_revert(c: Any, sid: str, big: str) -> dict[str, Any]:
    def status(wanted: str) -> dict[str, Any] | None:
        shown = dict(c.get(f"{API}/servers/{sid}").json()["server"])
        return shown if shown["status"] == wanted and shown["OS-EXT-STS:task_state"] is None else None

    wait_for(lambda: status("ACTIVE"))
    assert c.post(f"{API}/servers/{sid}/action", json={"resize": {"flavorRef": big}}).status_code == 202
    wait_for(lambda: status("VERIFY_RESIZE"))
    put = c.put(
        f"{API}/servers/{sid}/metadata/fake_day2_error", json={"meta": {"fake_day2_error": "disk gone"}}
    )
    assert put.status_code == 200, put.text
    assert c.post(f"{API}/servers/{sid}/action", json={"revertResize": None}).status_code == 202
    return dict(wait_for(lambda: status("ERROR")))


def test_a_failed_revert_keeps_the_new_flavor_and_both_claims(cloud: Cloud, fleet: Fleet) -> None:
    """As Nova (the flavor swapped back only in finish_revert_resize): ERROR with the flavor it
    was resized to, its own consumer holding that, the migration consumer the source's old
    share; reset to active, the source's share goes and the server can be resized again."""
    fleet.add("rf-h1")
    with cloud.client(microversion="2.60") as c:
        small, big = make_flavor(c, "rf.small"), make_flavor(c, "rf.big", ram=1024)
        server = {"name": "rf", "flavorRef": small, "imageRef": upload_image(c), "networks": "none"}
        sid = c.post(f"{API}/servers", json={"server": server}).json()["server"]["id"]
        errored = _fail_revert(c, sid, big)
        assert errored["flavor"]["original_name"] == "rf.big" and errored["flavor"]["ram"] == 1024
        assert _allocations(c, sid) == [BIG]
        assert _allocations(c, migration_consumer(sid)) == [SMALL]
        # an admin declares it fine where it is: the source's share is released, nothing else
        reset = c.post(f"{API}/servers/{sid}/action", json={"os-resetState": {"state": "active"}})
        assert reset.status_code == 202, reset.text
        shown = c.get(f"{API}/servers/{sid}").json()["server"]
        assert shown["status"] == "ACTIVE" and shown["flavor"]["original_name"] == "rf.big"
        assert _allocations(c, sid) == [BIG]
        assert _allocations(c, migration_consumer(sid)) == []
        # ... and it moves again (its source share no longer in the migration consumer's way)
        c.delete(f"{API}/servers/{sid}/metadata/fake_day2_error")
        resized = c.post(f"{API}/servers/{sid}/action", json={"resize": {"flavorRef": small}})
        assert resized.status_code == 202, resized.text
        wait_for(lambda: c.get(f"{API}/servers/{sid}").json()["server"]["status"] == "VERIFY_RESIZE")
        assert _allocations(c, sid) == [SMALL] and _allocations(c, migration_consumer(sid)) == [BIG]


def test_a_failed_revert_errors_the_server_out(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("rv-h1")  # one host: the resize and its revert stay on it
    with cloud.client(microversion="2.60") as c:
        small, big = make_flavor(c, "rv.small"), make_flavor(c, "rv.big", ram=1024)
        server = {"name": "rv", "flavorRef": small, "imageRef": upload_image(c), "networks": "none"}
        sid = c.post(f"{API}/servers", json={"server": server}).json()["server"]["id"]
        errored = _fail_revert(c, sid, big)
        assert errored["fault"]["code"] == 500
        assert errored["fault"]["message"] == "Reverting the resize failed: disk gone"
        assert errored["OS-EXT-SRV-ATTR:host"] == "rv-h1"
        actions = c.get(f"{API}/servers/{sid}/os-instance-actions").json()["instanceActions"]
        (revert,) = [a for a in actions if a["action"] == "revertResize"]
        detail = c.get(f"{API}/servers/{sid}/os-instance-actions/{revert['request_id']}").json()
        events = [(e["event"], e["result"]) for e in detail["instanceAction"]["events"]]
        assert events == [("compute_revert_resize", "Error")]
        rows = c.get(f"{API}/os-migrations", params={"instance_uuid": sid}).json()["migrations"]
        assert [(m["migration_type"], m["status"]) for m in rows] == [("resize", "error")]
        # an errored server can be deleted, its allocations with it
        assert c.delete(f"{API}/servers/{sid}").status_code == 204
        wait_for(lambda: c.get(f"{API}/servers/{sid}").status_code == 404)
        assert c.get(f"/placement/allocations/{sid}").json()["allocations"] == {}


def test_an_errored_server_holding_a_failed_moves_share_can_be_evacuated(cloud: Cloud, fleet: Fleet) -> None:
    """The source's share a failed revert left behind is no obstacle to evacuating the server
    off its dead host: it is released, and only the evacuation's claim remains."""
    fleet.add("re-h1")
    with cloud.client(microversion="2.60") as c:
        small, big = make_flavor(c, "re.small"), make_flavor(c, "re.big", ram=1024)
        server = {"name": "re", "flavorRef": small, "imageRef": upload_image(c), "networks": "none"}
        sid = c.post(f"{API}/servers", json={"server": server}).json()["server"]["id"]
        _fail_revert(c, sid, big)
        assert _allocations(c, migration_consumer(sid)) == [SMALL]
        fleet.add("re-h2")
        _dead(fleet, c, "re-h1")
        resp = c.post(f"{API}/servers/{sid}/action", json={"evacuate": {}})
        assert resp.status_code == 200, resp.text
        moved = wait_for(
            lambda: (s := c.get(f"{API}/servers/{sid}").json()["server"])["status"] == "ACTIVE" and s
        )
        assert moved["OS-EXT-SRV-ATTR:host"] == "re-h2"
        assert _allocations(c, sid) == [BIG]
        assert _allocations(c, migration_consumer(sid)) == []
