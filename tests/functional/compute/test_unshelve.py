"""Unshelve's choices (2.77 zone, 2.91 host and unpinning), the create's forced host dropped
by an unshelve, and an unshelve the scheduler cannot place left SHELVED_OFFLOADED."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import DEMO_PASSWORD, Cloud, Fleet, wait_for
from tests.functional.compute.helpers import register_hosts

API = "/compute/v2.1"


def _server(c: httpx.Client, sid: str) -> dict[str, Any]:
    resp = c.get(f"{API}/servers/{sid}", headers={"OpenStack-API-Version": "compute 2.1"})
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["server"])


def _settled(c: httpx.Client, sid: str, status: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = _server(c, sid)
        return body if body["status"] == status and body["OS-EXT-STS:task_state"] is None else None

    result: dict[str, Any] = wait_for(done)
    return result


def _unshelve(c: httpx.Client, sid: str, version: str, value: Any) -> httpx.Response:
    return c.post(
        f"{API}/servers/{sid}/action",
        json={"unshelve": value},
        headers={"OpenStack-API-Version": f"compute {version}"},
    )


def _offload(c: httpx.Client, sid: str) -> None:
    assert c.post(f"{API}/servers/{sid}/action", json={"shelve": None}).status_code == 202
    _settled(c, sid, "SHELVED_OFFLOADED")


def _boot(c: httpx.Client) -> str:
    flavor = c.post(f"{API}/flavors", json={"flavor": {"name": "us.1", "vcpus": 1, "ram": 256, "disk": 1}})
    image = c.post(
        "/image/v2/images",
        json={"name": "us-base", "disk_format": "raw", "container_format": "bare", "visibility": "public"},
    ).json()
    headers = {"Content-Type": "application/octet-stream"}
    assert (
        c.put(f"/image/v2/images/{image['id']}/file", content=b"\0" * 512, headers=headers).status_code == 204
    )
    body = {
        "server": {
            "name": "us-vm",
            "flavorRef": flavor.json()["flavor"]["id"],
            "imageRef": image["id"],
            "networks": "none",
            "availability_zone": "nova:us-h1",  # forced onto us-h1 (admins)
        }
    }
    resp = c.post(f"{API}/servers", json=body, headers={"OpenStack-API-Version": "compute 2.37"})
    assert resp.status_code == 202, resp.text
    sid = str(resp.json()["server"]["id"])
    assert _settled(c, sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "us-h1"
    return sid


def test_unshelve_choices(cloud: Cloud, fleet: Fleet) -> None:
    for name in ("us-h1", "us-h2"):
        fleet.add(name, vcpus=2, memory_mb=2048)
    register_hosts(cloud, "us-down", heartbeat=False)  # known, never up: no valid host
    cloud.settings.shelved_offload_time = 0
    with cloud.client() as c:
        agg = c.post(
            f"{API}/os-aggregates", json={"aggregate": {"name": "us-b", "availability_zone": "us-b"}}
        )
        c.post(
            f"{API}/os-aggregates/{agg.json()['aggregate']['id']}/action",
            json={"add_host": {"host": "us-h2"}},
        )
        sid = _boot(c)
        _offload(c, sid)
        # 2.77: a zone for an offloaded server; the create's forced us-h1 (not in us-b) is dropped
        for bad in ({}, {"availability_zone": None}, {"host": "us-h1"}, {"availability_zone": ""}):
            assert _unshelve(c, sid, "2.77", bad).status_code == 400, bad
        assert _unshelve(c, sid, "2.77", {"availability_zone": "no-such"}).status_code == 400
        assert _unshelve(c, sid, "2.77", {"availability_zone": "us-b"}).status_code == 202
        shown = _settled(c, sid, "ACTIVE")
        assert shown["OS-EXT-SRV-ATTR:host"] == "us-h2" and shown["OS-EXT-AZ:availability_zone"] == "us-b"
        _offload(c, sid)
        # 2.91: a host for admins only; it must be in the pinned zone unless the zone is unpinned
        demo = cloud.token("demo", DEMO_PASSWORD, "demo")
        with cloud.client(token=demo) as d:
            assert _unshelve(d, sid, "2.91", {"host": "us-h1"}).status_code == 403
        assert _unshelve(c, sid, "2.91", {"host": "us-h1"}).status_code == 400  # us-h1 is not in us-b
        assert _unshelve(c, sid, "2.91", {"host": "nowhere"}).status_code == 400
        # a host that cannot take it: no valid host leaves the server offloaded, not ERROR
        assert _unshelve(c, sid, "2.91", {"availability_zone": None, "host": "us-down"}).status_code == 202
        shown = _settled(c, sid, "SHELVED_OFFLOADED")
        assert shown["OS-EXT-SRV-ATTR:host"] is None and "fault" not in shown
        listed = c.get(f"{API}/servers/{sid}/os-instance-actions").json()["instanceActions"]
        last = c.get(f"{API}/servers/{sid}/os-instance-actions/{listed[0]['request_id']}").json()
        assert last["instanceAction"]["action"] == "unshelve"
        assert [e["result"] for e in last["instanceAction"]["events"]] == ["Error"]
        assert _unshelve(c, sid, "2.91", {"availability_zone": None, "host": "us-h1"}).status_code == 202
        shown = _settled(c, sid, "ACTIVE")
        assert shown["OS-EXT-SRV-ATTR:host"] == "us-h1" and shown["OS-EXT-AZ:availability_zone"] == "nova"
        # SHELVED (still on its host): no zone can be chosen (409); before 2.77 a body is ignored
        cloud.settings.shelved_offload_time = -1
        assert c.post(f"{API}/servers/{sid}/action", json={"shelve": None}).status_code == 202
        _settled(c, sid, "SHELVED")
        assert _unshelve(c, sid, "2.77", {"availability_zone": "us-b"}).status_code == 409
        assert _unshelve(c, sid, "2.76", {"availability_zone": "us-b"}).status_code == 202
        assert _settled(c, sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "us-h1"
