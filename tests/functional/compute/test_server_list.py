"""GET /servers and /servers/detail over the API: each listed server is its GET /servers/{id}
body, pages follow their next links, and the filters, sort keys, all_tenants, deleted and
changes-since select what they say."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from kumo.compute.models import Instance
from tests.conftest import Cloud
from tests.functional.compute.helpers import (
    API,
    BACKENDS,
    database,
    demo_token,
    either_cloud,
    project_id,
    register_hosts,
)

T0 = dt.datetime(2026, 11, 3, 9, 0, 0, 250000)


@pytest.fixture(params=BACKENDS)
def listed(request: pytest.FixtureRequest) -> Cloud:
    """Servers in the admin and demo projects: active, building, error (with a fault), shut off,
    deleted; pairs sharing created_at (the id breaks ties); one on no host."""
    cloud = either_cloud(request)
    register_hosts(cloud, "h1", "h2")
    with cloud.client() as c:
        admin, demo = project_id(c, "admin"), project_id(c, "demo")
    rows = []
    for i in range(14):
        state = ["active", "building", "error", "stopped", "active", "active", "deleted"][i % 7]
        rows.append(
            Instance(
                uuid=str(uuid.UUID(int=i + 1)),
                project_id=demo if i % 2 else admin,
                user_id="u",
                name=f"vm-{i:02d}",
                hostname=f"vm-{i:02d}",
                image_ref="img-1" if i % 3 else "",
                flavor={
                    "id": "1",
                    "name": "m1",
                    "vcpus": 1,
                    "ram": 512,
                    "disk": 1,
                    "extra_specs": {"a": "b"},
                },
                vm_state=state,
                # spawning, not scheduling: the scheduler loop would take it.
                task_state="spawning" if state == "building" else None,
                power_state=1 if state == "active" else 0,
                host=None if i == 8 else f"h{i % 2 + 1}",
                availability_zone="nova",
                metadata_={"i": str(i)},
                tags=["even"] if i % 2 == 0 else [],
                user_data="dXNlcg==" if i % 4 == 0 else None,
                fault={"code": 500, "message": "boom", "details": "tb"} if state == "error" else None,
                deleted=state == "deleted",
                created_at=T0 + dt.timedelta(seconds=i // 2),
                updated_at=T0 + dt.timedelta(minutes=i),
                launched_at=T0 + dt.timedelta(seconds=i) if state == "active" else None,
                terminated_at=T0 + dt.timedelta(hours=1) if state == "deleted" else None,
            )
        )
    db = database(cloud)
    with db.transaction() as s:
        s.add_all(rows)
    db.dispose()
    return cloud


def _walk(c: httpx.Client, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page, by each page's next link."""
    resp = c.get(path, params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    items = list(body["servers"])
    while "servers_links" in body:
        (link,) = body["servers_links"]
        assert link["rel"] == "next" and f"marker={items[-1]['id']}" in link["href"]
        body = c.get(link["href"]).json()
        items += body["servers"]
    return items


@pytest.mark.parametrize("version", ["2.1", "2.3", "2.16", "2.26", "2.47", "2.64"])
def test_each_listed_server_is_its_show_body(listed: Cloud, version: str) -> None:
    with listed.client(microversion=version) as admin, listed.client(demo_token(listed), version) as demo:
        for c, params, count in ((admin, {"all_tenants": 1}, 12), (admin, {}, 6), (demo, {}, 6)):
            whole = c.get(f"{API}/servers/detail", params=params).json()["servers"]
            assert len(whole) == count
            assert _walk(c, f"{API}/servers/detail", {**params, "limit": 5}) == whole
            for item in whole:
                assert item == c.get(f"{API}/servers/{item['id']}").json()["server"]
            brief = _walk(c, f"{API}/servers", {**params, "limit": 4})
            assert [b["id"] for b in brief] == [s["id"] for s in whole]
            assert all(set(b) == {"id", "name", "links"} for b in brief)
    # The default order: created_at, then id, newest first.
    assert [s["name"] for s in whole] == [f"vm-{i:02d}" for i in (11, 9, 7, 5, 3, 1)]


def _names(c: httpx.Client, path: str = f"{API}/servers/detail", **params: Any) -> list[str]:
    resp = c.get(path, params=params)
    assert resp.status_code == 200, resp.text
    return [s["name"] for s in resp.json()["servers"]]


def test_filters_sorts_deleted_and_changes_since(listed: Cloud) -> None:
    with listed.client(microversion="2.64") as c:
        every = {"all_tenants": 1}
        assert _names(c, **every, status="ERROR") == ["vm-09", "vm-02"]
        assert _names(c, **every, status="build") == ["vm-08", "vm-01"]
        assert _names(c, **every, host="h2", sort_key="display_name", sort_dir="asc") == [
            "vm-01",
            "vm-03",
            "vm-05",
            "vm-07",
            "vm-09",
            "vm-11",
        ]
        assert _names(c, **every, name="^vm-1[0-3]$", sort_key="uuid", sort_dir="asc") == [
            "vm-10",
            "vm-11",
            "vm-12",
        ]
        assert _names(c, **every, tags="even") == ["vm-12", "vm-10", "vm-08", "vm-04", "vm-02", "vm-00"]
        assert _names(c, **every, deleted="true") == ["vm-13", "vm-06"]
        since = (T0 + dt.timedelta(minutes=10)).isoformat() + "Z"
        # changes-since also shows deleted servers, as Nova does.
        assert _names(c, **every, **{"changes-since": since}) == ["vm-13", "vm-12", "vm-11", "vm-10"]
        # Sorted by a column other than created_at, pages still follow their markers.
        by_name = _walk(c, f"{API}/servers/detail", {**every, "sort_key": "display_name", "limit": 3})
        assert [s["name"] for s in by_name] == sorted(_names(c, **every), reverse=True)
        assert c.get(f"{API}/servers/detail", params={"sort_key": "nope"}).status_code == 400
        assert c.get(f"{API}/servers/detail", params={"marker": str(uuid.uuid4())}).status_code == 400
        user_data = {
            s["name"]: s["OS-EXT-SRV-ATTR:user_data"]
            for s in c.get(f"{API}/servers/detail", params=every).json()["servers"]
        }
        assert user_data["vm-00"] == "dXNlcg==" and user_data["vm-01"] is None


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_changes_since_outside_the_calendar_is_a_400(cloud: Cloud, since: str) -> None:
    """Valid ISO 8601 that leaves years 1-9999 once in UTC (an OverflowError, a 500 before)."""
    with cloud.client() as c:
        for path in (f"{API}/servers", f"{API}/servers/detail"):
            resp = c.get(path, params={"changes-since": since})
            assert resp.status_code == 400, resp.text
            assert resp.json()["badRequest"]["message"] == "Invalid changes-since value"
