"""os-aggregates: CRUD, host membership, metadata, and the one-zone-per-host rule."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Cloud
from tests.functional.compute.helpers import (
    API,
    BACKENDS,
    add_instance,
    demo_token,
    either_cloud,
    project_id,
    register_hosts,
)


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


FULL_KEYS = {
    "id",
    "name",
    "availability_zone",
    "hosts",
    "metadata",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
}


def _create(c: httpx.Client, name: str, zone: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if zone is not None:
        body["availability_zone"] = zone
    resp = c.post(f"{API}/os-aggregates", json={"aggregate": body})
    assert resp.status_code == 200, resp.text
    aggregate: dict[str, Any] = resp.json()["aggregate"]
    return aggregate


def _action(c: httpx.Client, aggregate_id: int, body: dict[str, Any]) -> httpx.Response:
    return c.post(f"{API}/os-aggregates/{aggregate_id}/action", json=body)


def test_create_shapes_per_microversion(cloud: Cloud) -> None:
    with cloud.client(microversion="2.40") as c:
        created = _create(c, "a1", "az1")
        assert set(created) == FULL_KEYS - {"hosts", "metadata"}
        assert created["availability_zone"] == "az1" and created["deleted"] is False
        shown = c.get(f"{API}/os-aggregates/{created['id']}").json()["aggregate"]
        assert set(shown) == FULL_KEYS
        assert shown["metadata"] == {"availability_zone": "az1"} and shown["hosts"] == []
    with cloud.client(microversion="2.41") as c:
        created = _create(c, "a2")
        assert set(created) == (FULL_KEYS - {"hosts", "metadata"}) | {"uuid"}
        assert created["availability_zone"] is None
        listed = c.get(f"{API}/os-aggregates").json()["aggregates"]
        assert [a["name"] for a in listed] == ["a1", "a2"] and all(
            set(a) == FULL_KEYS | {"uuid"} for a in listed
        )


def test_update_delete_and_errors(cloud: Cloud) -> None:
    with cloud.client(microversion="2.64") as c:
        agg = _create(c, "a1")
        _create(c, "taken")
        renamed = c.put(
            f"{API}/os-aggregates/{agg['id']}", json={"aggregate": {"name": "b1", "availability_zone": "z9"}}
        )
        assert renamed.status_code == 200
        assert (renamed.json()["aggregate"]["name"], renamed.json()["aggregate"]["availability_zone"]) == (
            "b1",
            "z9",
        )
        assert (
            c.put(f"{API}/os-aggregates/{agg['id']}", json={"aggregate": {"name": "taken"}}).status_code
            == 409
        )
        assert c.put(f"{API}/os-aggregates/{agg['id']}", json={"aggregate": {}}).status_code == 400
        assert c.post(f"{API}/os-aggregates", json={"aggregate": {"name": "taken"}}).status_code == 409
        assert c.post(f"{API}/os-aggregates", json={"aggregate": {}}).status_code == 400
        assert (
            c.post(
                f"{API}/os-aggregates", json={"aggregate": {"name": "x", "availability_zone": "a:b"}}
            ).status_code
            == 400
        )
        assert c.get(f"{API}/os-aggregates/abc").status_code == 404
        assert c.get(f"{API}/os-aggregates/9999").status_code == 404
        assert c.delete(f"{API}/os-aggregates/{agg['id']}").status_code == 200
        assert c.get(f"{API}/os-aggregates/{agg['id']}").status_code == 404


def test_hosts_and_metadata(cloud: Cloud) -> None:
    register_hosts(cloud, "h1", "h2")
    with cloud.client(microversion="2.64") as c:
        agg = _create(c, "rack", "az1")
        added = _action(c, agg["id"], {"add_host": {"host": "h1"}})
        assert added.status_code == 200 and added.json()["aggregate"]["hosts"] == ["h1"]
        assert _action(c, agg["id"], {"add_host": {"host": "h1"}}).status_code == 409
        missing = _action(c, agg["id"], {"add_host": {"host": "nowhere"}})
        assert missing.status_code == 404
        assert missing.json()["itemNotFound"]["message"] == "Compute host nowhere could not be found."
        meta = _action(c, agg["id"], {"set_metadata": {"metadata": {"ssd": "true", "gpu": "1"}}}).json()[
            "aggregate"
        ]
        assert meta["metadata"] == {"availability_zone": "az1", "ssd": "true", "gpu": "1"}
        meta = _action(c, agg["id"], {"set_metadata": {"metadata": {"gpu": None}}}).json()["aggregate"]
        assert meta["metadata"] == {"availability_zone": "az1", "ssd": "true"}
        assert _action(c, agg["id"], {"set_metadata": {"metadata": {"bad/key": "x"}}}).status_code == 400
        assert _action(c, agg["id"], {"set_metadata": {"metadata": {"n": 5}}}).status_code == 400
        assert _action(c, agg["id"], {"explode": {}}).status_code == 400
        assert c.delete(f"{API}/os-aggregates/{agg['id']}").status_code == 400  # not empty
        removed = _action(c, agg["id"], {"remove_host": {"host": "h1"}})
        assert removed.status_code == 200 and removed.json()["aggregate"]["hosts"] == []
        assert _action(c, agg["id"], {"remove_host": {"host": "h1"}}).status_code == 404
        assert _action(c, 9999, {"add_host": {"host": "h1"}}).status_code == 404


def test_a_host_lives_in_one_zone(any_cloud: Cloud) -> None:
    register_hosts(any_cloud, "h1", "h2")
    with any_cloud.client(microversion="2.64") as c:
        az1 = _create(c, "one", "az1")
        az2 = _create(c, "two", "az2")
        plain = _create(c, "plain")
        also_az1 = _create(c, "also-one", "az1")
        assert _action(c, az1["id"], {"add_host": {"host": "h1"}}).status_code == 200
        conflict = _action(c, az2["id"], {"add_host": {"host": "h1"}})
        assert conflict.status_code == 409
        assert "az1" in conflict.json()["conflictingRequest"]["message"]
        assert _action(c, plain["id"], {"add_host": {"host": "h1"}}).status_code == 200
        assert _action(c, also_az1["id"], {"add_host": {"host": "h1"}}).status_code == 200
        # Giving the zone-less aggregate (holding h1, in az1) another zone is refused too.
        moved = _action(c, plain["id"], {"set_metadata": {"metadata": {"availability_zone": "az2"}}})
        assert moved.status_code == 400
        renamed = c.put(
            f"{API}/os-aggregates/{plain['id']}", json={"aggregate": {"availability_zone": "az2"}}
        )
        assert renamed.status_code == 400
        same = _action(c, plain["id"], {"set_metadata": {"metadata": {"availability_zone": "az1"}}})
        assert same.status_code == 200


def test_changing_the_zone_of_hosts_with_instances_is_refused(cloud: Cloud) -> None:
    register_hosts(cloud, "h1")
    with cloud.client(microversion="2.64") as c:
        agg = _create(c, "a", "az1")
        _action(c, agg["id"], {"add_host": {"host": "h1"}})
        add_instance(cloud, "h1", project_id(c, "admin"))
        resp = _action(c, agg["id"], {"set_metadata": {"metadata": {"availability_zone": "az3"}}})
        assert resp.status_code == 400
        assert "contain instances" in resp.json()["badRequest"]["message"]
        assert _action(c, agg["id"], {"set_metadata": {"metadata": {"other": "ok"}}}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/os-aggregates", None),
        ("POST", "/os-aggregates", {"aggregate": {"name": "x"}}),
        ("GET", "/os-aggregates/1", None),
        ("POST", "/os-aggregates/1/action", {"add_host": {"host": "h1"}}),
        ("DELETE", "/os-aggregates/1", None),
    ],
)
def test_admin_only(cloud: Cloud, method: str, path: str, body: dict[str, Any] | None) -> None:
    with cloud.client() as admin:
        _create(admin, "first")
    with cloud.client(demo_token(cloud)) as c:
        assert c.request(method, API + path, json=body).status_code == 403
