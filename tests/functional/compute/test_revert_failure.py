"""A resize revert that fails on the host leaves the server in ERROR with a fault, its failed
event on the revertResize action and its migration errored, as Nova (fake-driver agent: the
metadata `fake_day2_error` fails the guest's resize back on its own host)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.helpers import API
from tests.functional.helpers import make_flavor, upload_image


def test_a_failed_revert_errors_the_server_out(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("rv-h1")  # one host: the resize and its revert stay on it
    with cloud.client(microversion="2.60") as c:
        small, big = make_flavor(c, "rv.small"), make_flavor(c, "rv.big", ram=1024)
        server = {"name": "rv", "flavorRef": small, "imageRef": upload_image(c), "networks": "none"}
        sid = c.post(f"{API}/servers", json={"server": server}).json()["server"]["id"]

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
        errored = wait_for(lambda: status("ERROR"))
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
