"""Servers end to end over the API with in-process fake agents (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Cloud, Fleet, wait_for

MV = "2.64"


def _setup(c: httpx.Client) -> tuple[str, str]:
    flavor = c.post(
        "/compute/v2.1/flavors", json={"flavor": {"name": "t1", "vcpus": 2, "ram": 1024, "disk": 10}}
    )
    assert flavor.status_code == 200, flavor.text
    image = c.post(
        "/image/v2/images",
        json={"name": "img", "disk_format": "raw", "container_format": "bare", "visibility": "public"},
    ).json()
    assert (
        c.put(
            f"/image/v2/images/{image['id']}/file",
            content=b"x" * 4096,
            headers={"Content-Type": "application/octet-stream"},
        ).status_code
        == 204
    )
    return flavor.json()["flavor"]["id"], image["id"]


def _server(c: httpx.Client, sid: str) -> dict[str, Any]:
    resp = c.get(f"/compute/v2.1/servers/{sid}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["server"])


def _wait_status(c: httpx.Client, sid: str, status: str) -> dict[str, Any]:
    return dict(wait_for(lambda: (s := _server(c, sid))["status"] == status and s))


def _create(c: httpx.Client, flavor: str, image: str, **extra: Any) -> str:
    hints = extra.pop("hints", None)
    body: dict[str, Any] = {
        "server": {"name": "vm", "flavorRef": flavor, "imageRef": image, "networks": "none", **extra}
    }
    if hints:
        body["os:scheduler_hints"] = hints
    resp = c.post("/compute/v2.1/servers", json=body)
    assert resp.status_code == 202, resp.text
    assert resp.headers["x-openstack-request-id"].startswith("req-")
    return str(resp.json()["server"]["id"])


def _lifecycle(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("h1")
    fleet.add("h2")
    with cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        sid = _create(c, flavor, image)
        server = _wait_status(c, sid, "ACTIVE")
        assert server["OS-EXT-STS:power_state"] == 1
        assert server["OS-EXT-SRV-ATTR:host"] in ("h1", "h2")
        assert server["flavor"]["original_name"] == "t1"
        for action, status, power in (("os-stop", "SHUTOFF", 4), ("os-start", "ACTIVE", 1)):
            assert c.post(f"/compute/v2.1/servers/{sid}/action", json={action: None}).status_code == 202
            assert _wait_status(c, sid, status)["OS-EXT-STS:power_state"] == power
        assert (
            c.post(f"/compute/v2.1/servers/{sid}/action", json={"reboot": {"type": "SOFT"}}).status_code
            == 202
        )
        wait_for(lambda: _server(c, sid)["OS-EXT-STS:task_state"] is None)
        # Stopping twice in a row: the second is a 409 while the first is in flight or done.
        c.post(f"/compute/v2.1/servers/{sid}/action", json={"os-stop": None})
        _wait_status(c, sid, "SHUTOFF")
        conflict = c.post(f"/compute/v2.1/servers/{sid}/action", json={"os-stop": None})
        assert conflict.status_code == 409
        assert conflict.json()["conflictingRequest"]["code"] == 409
        actions = c.get(f"/compute/v2.1/servers/{sid}/os-instance-actions").json()["instanceActions"]
        assert [a["action"] for a in actions][-1] == "create"
        assert {"stop", "start", "reboot"} <= {a["action"] for a in actions}
        create = c.get(f"/compute/v2.1/servers/{sid}/os-instance-actions/{actions[-1]['request_id']}").json()
        events = {e["event"]: e["result"] for e in create["instanceAction"]["events"]}
        assert events == {
            "conductor_schedule_and_build_instances": "Success",
            "compute__do_build_and_run_instance": "Success",
        }
        assert c.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
        wait_for(lambda: c.get(f"/compute/v2.1/servers/{sid}").status_code == 404)
        usages = c.get("/compute/v2.1/os-hypervisors/detail").json()["hypervisors"]
        assert all(h["vcpus_used"] == 0 for h in usages)


def test_server_lifecycle_sqlite(cloud: Cloud, fleet: Fleet) -> None:
    _lifecycle(cloud, fleet)


@pytest.mark.postgres
def test_server_lifecycle_postgres(pg_cloud: Cloud, pg_fleet: Fleet) -> None:
    _lifecycle(pg_cloud, pg_fleet)


def test_no_valid_host_fault_names_filters(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("small", vcpus=1, memory_mb=1024)
    with cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        big = c.post(
            "/compute/v2.1/flavors", json={"flavor": {"name": "big", "vcpus": 1, "ram": 8192, "disk": 1}}
        )
        sid = _create(c, big.json()["flavor"]["id"], image)
        server = _wait_status(c, sid, "ERROR")
        assert "No valid host was found" in server["fault"]["message"]
        assert "ResourcesFilter" in server["fault"]["message"]


def test_anti_affinity_group_spreads(cloud: Cloud, fleet: Fleet) -> None:
    for name in ("a", "b", "c"):
        fleet.add(name)
    with cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        group = c.post(
            "/compute/v2.1/os-server-groups", json={"server_group": {"name": "g", "policy": "anti-affinity"}}
        )
        assert group.status_code == 200, group.text
        gid = group.json()["server_group"]["id"]
        ids = [_create(c, flavor, image, hints={"group": gid}) for _ in range(4)]
        finals = [
            wait_for(lambda i=i: (s := _server(c, i))["status"] in ("ACTIVE", "ERROR") and s) for i in ids
        ]
        active_hosts = [s["OS-EXT-SRV-ATTR:host"] for s in finals if s["status"] == "ACTIVE"]
        assert sorted(active_hosts) == ["a", "b", "c"]
        assert sum(s["status"] == "ERROR" for s in finals) == 1


def test_tenancy_other_projects_server_is_404(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("h1")
    with cloud.client(microversion=MV) as admin:
        flavor, image = _setup(admin)
        sid = _create(admin, flavor, image)
    demo = cloud.client(cloud.token("demo", "demo-secret", "demo"), microversion=MV)
    resp = demo.get(f"/compute/v2.1/servers/{sid}")
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["code"] == 404
    assert demo.delete(f"/compute/v2.1/servers/{sid}").status_code == 404


@pytest.mark.parametrize(
    "body, status",
    [
        ({"server": {"name": "x" * 256, "flavorRef": "f", "imageRef": "i"}}, 400),
        ({"server": {"name": "ok", "flavorRef": "nope", "imageRef": "nope"}}, 400),
        ({"server": {"name": "ok"}}, 400),
        ({"nothing": {}}, 400),
    ],
)
def test_bad_create_requests(cloud: Cloud, body: dict[str, Any], status: int) -> None:
    with cloud.client(microversion=MV) as c:
        resp = c.post("/compute/v2.1/servers", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["badRequest"]["code"] == 400


def test_unknown_microversion_is_406_and_bad_one_400(cloud: Cloud) -> None:
    with cloud.client(microversion="2.999") as c:
        assert c.get("/compute/v2.1/servers").status_code == 406
    with cloud.client(microversion="two") as c:
        assert c.get("/compute/v2.1/servers").status_code == 400


def test_pagination_with_marker(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("h1", vcpus=64, memory_mb=65536)
    with cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        ids = {_create(c, flavor, image) for _ in range(5)}
        page1 = c.get("/compute/v2.1/servers", params={"limit": 2}).json()
        assert len(page1["servers"]) == 2 and "servers_links" in page1
        seen = [s["id"] for s in page1["servers"]]
        marker = seen[-1]
        while True:
            page = c.get("/compute/v2.1/servers", params={"limit": 2, "marker": marker}).json()
            seen += [s["id"] for s in page["servers"]]
            if "servers_links" not in page:
                break
            marker = page["servers"][-1]["id"]
        assert sorted(seen) == sorted(ids) and len(seen) == 5
        assert c.get("/compute/v2.1/servers", params={"marker": "nope"}).status_code == 400


def _check_access_ips(cloud: Cloud) -> None:
    """accessIPv4/v6 are addresses of their version (Nova's formats). Anything else reached the
    64-character column unchecked: a 500 on PostgreSQL for a long one."""
    with cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        sid = _create(c, flavor, image, accessIPv4="192.0.2.7", accessIPv6="2001:db8::7")
        shown = _server(c, sid)
        assert (shown["accessIPv4"], shown["accessIPv6"]) == ("192.0.2.7", "2001:db8::7")
        bad = [("accessIPv4", "1" * 300), ("accessIPv4", "2001:db8::1"), ("accessIPv6", "192.0.2.1")]
        bad += [("accessIPv6", "fe80::1%" + "e" * 80), ("accessIPv4", "not-an-ip")]
        for field, value in bad:
            server = {"name": "vm", "flavorRef": flavor, "imageRef": image, "networks": "none", field: value}
            created = c.post("/compute/v2.1/servers", json={"server": server})
            assert created.status_code == 400, (field, value, created.text)
            assert field in created.json()["badRequest"]["message"]
            updated = c.put(f"/compute/v2.1/servers/{sid}", json={"server": {field: value}})
            assert updated.status_code == 400, (field, value, updated.text)
        cleared = c.put(f"/compute/v2.1/servers/{sid}", json={"server": {"accessIPv4": ""}})
        assert cleared.status_code == 200 and cleared.json()["server"]["accessIPv4"] == ""


def test_access_ips_are_addresses_sqlite(cloud: Cloud) -> None:
    _check_access_ips(cloud)


@pytest.mark.postgres
def test_access_ips_are_addresses_postgres(pg_cloud: Cloud) -> None:
    _check_access_ips(pg_cloud)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_update_description_must_be_a_short_string(request: pytest.FixtureRequest, backend: str) -> None:
    """A list or an object as the description reached the database (a 500 on PostgreSQL)."""
    cloud: Cloud = request.getfixturevalue("pg_cloud" if backend == "postgresql" else "cloud")
    with cloud.client(microversion=MV) as c:
        flavor, image = _setup(c)
        sid = _create(c, flavor, image)
        for bad in ([{"a": 1}], {"a": 1}, 5, "d" * 256):
            resp = c.put(f"/compute/v2.1/servers/{sid}", json={"server": {"description": bad}})
            assert resp.status_code == 400, (bad, resp.text)
            assert "description" in resp.json()["badRequest"]["message"]
        for good in ("fine", None):
            resp = c.put(f"/compute/v2.1/servers/{sid}", json={"server": {"description": good}})
            assert resp.status_code == 200 and resp.json()["server"]["description"] == good
