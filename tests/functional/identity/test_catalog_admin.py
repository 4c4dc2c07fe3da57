"""The catalog's administration over HTTP (tempest's test_regions, test_services, test_endpoints,
test_endpoints_negative): regions, services and endpoints created, listed with filters,
updated and deleted by an admin; kumo's own entries read-only; bad input a 400, a missing
entry a 404, a non-admin's write a 403, each in Keystone's error body; stored endpoints in a
token's catalog beside kumo's own while they and their service are enabled."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import DEMO_PASSWORD, Cloud

V3 = "/identity/v3"


def _error(resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == status and error["message"] and error["title"]


def _made(resp: httpx.Response, kind: str) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()[kind]
    return body


def _token_catalog(c: httpx.Client, cloud: Cloud) -> list[dict[str, Any]]:
    token = cloud.token()
    body = c.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": token}).json()
    catalog: list[dict[str, Any]] = body["token"]["catalog"]
    return catalog


def test_regions_crud(cloud: Cloud) -> None:
    with cloud.client() as c:
        parent = _made(c.post(f"{V3}/regions", json={"region": {"description": "top"}}), "region")
        assert parent["description"] == "top" and parent["parent_region_id"] is None
        assert parent["links"]["self"] == f"{cloud.url}{V3}/regions/{parent['id']}"
        named = _made(
            c.put(f"{V3}/regions/east", json={"region": {"parent_region_id": parent["id"]}}), "region"
        )
        assert named["id"] == "east" and named["parent_region_id"] == parent["id"]
        by_body = _made(c.post(f"{V3}/regions", json={"region": {"id": "west"}}), "region")
        assert by_body["id"] == "west"
        _error(c.put(f"{V3}/regions/east", json={"region": {}}), 409)
        _error(c.put(f"{V3}/regions/RegionOne", json={"region": {}}), 409)
        _error(c.post(f"{V3}/regions", json={"region": {"parent_region_id": "nowhere"}}), 400)
        _error(c.put(f"{V3}/regions/{'x' * 256}", json={"region": {}}), 400)
        _error(c.put(f"{V3}/regions/north", json={"region": {"id": "south"}}), 400)

        ids = [r["id"] for r in c.get(f"{V3}/regions").json()["regions"]]
        assert {"RegionOne", parent["id"], "east", "west"} == set(ids)
        children = c.get(f"{V3}/regions", params={"parent_region_id": parent["id"]}).json()["regions"]
        assert [r["id"] for r in children] == ["east"]

        updated = c.patch(
            f"{V3}/regions/east", json={"region": {"description": "d", "parent_region_id": None}}
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["region"] == {**named, "description": "d", "parent_region_id": None}
        assert c.get(f"{V3}/regions/east").json()["region"]["description"] == "d"
        # A region cannot become its own ancestor.
        assert (
            c.patch(f"{V3}/regions/east", json={"region": {"parent_region_id": parent["id"]}}).status_code
            == 200
        )
        _error(c.patch(f"{V3}/regions/{parent['id']}", json={"region": {"parent_region_id": "east"}}), 400)
        _error(c.delete(f"{V3}/regions/{parent['id']}"), 403)  # it has a child
        _error(c.patch(f"{V3}/regions/RegionOne", json={"region": {"description": "x"}}), 403)
        _error(c.delete(f"{V3}/regions/RegionOne"), 403)
        for region_id in ("east", parent["id"], "west"):
            assert c.delete(f"{V3}/regions/{region_id}").status_code == 204
        _error(c.get(f"{V3}/regions/east"), 404)
        _error(c.delete(f"{V3}/regions/east"), 404)
        assert [r["id"] for r in c.get(f"{V3}/regions").json()["regions"]] == ["RegionOne"]


def test_services_and_endpoints_crud_and_the_token_catalog(cloud: Cloud) -> None:
    with cloud.client() as c:
        own_catalog = _token_catalog(c, cloud)
        stype = f"type-{uuid.uuid4().hex[:6]}"
        svc = _made(
            c.post(f"{V3}/services", json={"service": {"type": stype, "name": "svc", "description": "d"}}),
            "service",
        )
        assert (svc["type"], svc["name"], svc["description"], svc["enabled"]) == (stype, "svc", "d", True)
        assert [s["id"] for s in c.get(f"{V3}/services", params={"type": stype}).json()["services"]] == [
            svc["id"]
        ]
        assert c.get(f"{V3}/services/{svc['id']}").json()["service"] == svc
        patched = c.patch(f"{V3}/services/{svc['id']}", json={"service": {"name": "renamed"}})
        assert patched.status_code == 200 and patched.json()["service"]["name"] == "renamed"
        # A service without endpoints is not in tokens.
        assert _token_catalog(c, cloud) == own_catalog

        _made(c.put(f"{V3}/regions/r2", json={"region": {}}), "region")
        public = _made(
            c.post(
                f"{V3}/endpoints",
                json={
                    "endpoint": {
                        "service_id": svc["id"],
                        "interface": "public",
                        "url": "http://a",
                        "region": "r2",
                    }
                },
            ),
            "endpoint",
        )
        assert (public["region"], public["region_id"], public["url"], public["enabled"]) == (
            "r2",
            "r2",
            "http://a",
            True,
        )
        internal = _made(
            c.post(
                f"{V3}/endpoints",
                json={"endpoint": {"service_id": svc["id"], "interface": "internal", "url": "http://b"}},
            ),
            "endpoint",
        )
        assert internal["region_id"] is None
        _error(c.delete(f"{V3}/regions/r2"), 403)  # an endpoint is in it
        assert c.get(f"{V3}/endpoints/{public['id']}").json()["endpoint"] == public

        def listed(**params: str) -> list[str]:
            return sorted(e["id"] for e in c.get(f"{V3}/endpoints", params=params).json()["endpoints"])

        assert listed(service_id=svc["id"]) == sorted([public["id"], internal["id"]])
        assert listed(service_id=svc["id"], interface="internal") == [internal["id"]]
        assert listed(region_id="r2") == [public["id"]]
        assert len(listed()) == sum(len(s["endpoints"]) for s in own_catalog) + 2

        entry = [s for s in _token_catalog(c, cloud) if s["id"] == svc["id"]]
        assert entry[0]["type"] == stype and {e["url"] for e in entry[0]["endpoints"]} == {
            "http://a",
            "http://b",
        }
        other = [s for s in _token_catalog(c, cloud) if s["id"] != svc["id"]]
        assert other == own_catalog  # kumo's own catalog is unchanged

        updated = c.patch(
            f"{V3}/endpoints/{public['id']}",
            json={
                "endpoint": {
                    "interface": "admin",
                    "url": "http://c",
                    "region_id": "RegionOne",
                    "enabled": False,
                }
            },
        )
        assert updated.status_code == 200, updated.text
        got = updated.json()["endpoint"]
        assert (got["interface"], got["url"], got["region"], got["enabled"]) == (
            "admin",
            "http://c",
            "RegionOne",
            False,
        )
        entry = [s for s in _token_catalog(c, cloud) if s["id"] == svc["id"]]
        assert [e["url"] for e in entry[0]["endpoints"]] == ["http://b"]  # the disabled one is left out
        assert c.patch(f"{V3}/services/{svc['id']}", json={"service": {"enabled": False}}).status_code == 200
        assert _token_catalog(c, cloud) == own_catalog

        # Unified limits may name a stored service and region.
        limit = {"service_id": svc["id"], "region_id": "r2", "resource_name": "widgets", "default_limit": 3}
        made_limit = c.post(f"{V3}/registered_limits", json={"registered_limits": [limit]})
        assert made_limit.status_code == 201, made_limit.text
        _error(
            c.post(f"{V3}/registered_limits", json={"registered_limits": [{**limit, "region_id": "r9"}]}), 400
        )
        assert c.delete(f"{V3}/endpoints/{internal['id']}").status_code == 204
        _error(c.get(f"{V3}/endpoints/{internal['id']}"), 404)
        assert c.delete(f"{V3}/services/{svc['id']}").status_code == 204
        _error(c.get(f"{V3}/endpoints/{public['id']}"), 404)  # went with its service
        _error(c.get(f"{V3}/services/{svc['id']}"), 404)
        assert c.delete(f"{V3}/regions/r2").status_code == 204


def test_a_stored_endpoint_of_kumos_own_service_joins_it_in_tokens(cloud: Cloud) -> None:
    with cloud.client() as c:
        compute = c.get(f"{V3}/services", params={"type": "compute"}).json()["services"][0]
        made = _made(
            c.post(
                f"{V3}/endpoints",
                json={"endpoint": {"service_id": compute["id"], "interface": "public", "url": "http://x"}},
            ),
            "endpoint",
        )
        entry = [s for s in _token_catalog(c, cloud) if s["type"] == "compute"]
        assert len(entry) == 1 and made["id"] in {e["id"] for e in entry[0]["endpoints"]}
        own = c.get(f"{V3}/endpoints", params={"service_id": compute["id"], "interface": "admin"}).json()
        own_id = own["endpoints"][0]["id"]
        _error(c.delete(f"{V3}/endpoints/{own_id}"), 403)
        _error(c.patch(f"{V3}/endpoints/{own_id}", json={"endpoint": {"url": "http://y"}}), 403)
        _error(c.delete(f"{V3}/services/{compute['id']}"), 403)
        _error(c.patch(f"{V3}/services/{compute['id']}", json={"service": {"enabled": False}}), 403)


BAD_ENDPOINTS: list[dict[str, Any]] = [
    {"interface": "public", "url": "http://a", "enabled": "False"},  # a string, not a boolean
    {"interface": "public", "url": "http://a", "enabled": "True"},
    {"interface": "sideways", "url": "http://a"},
    {"interface": "public"},  # no url
    {"interface": "public", "url": "http://a", "region_id": "nowhere"},
    {"interface": "public", "url": "http://a", "service_id": "nope"},
]


def test_bad_endpoints_are_400(cloud: Cloud) -> None:
    """Each case is refused on create and, but for a missing url, on update."""
    with cloud.client() as c:
        svc = _made(c.post(f"{V3}/services", json={"service": {"type": "t"}}), "service")
        good = {"service_id": svc["id"], "interface": "public", "url": "http://a"}
        made = _made(c.post(f"{V3}/endpoints", json={"endpoint": good}), "endpoint")
        for body in BAD_ENDPOINTS:
            _error(c.post(f"{V3}/endpoints", json={"endpoint": {"service_id": svc["id"], **body}}), 400)
            update = {k: v for k, v in body.items() if v != good.get(k)}
            if update:
                _error(c.patch(f"{V3}/endpoints/{made['id']}", json={"endpoint": update}), 400)
        _error(c.post(f"{V3}/services", json={"service": {"type": "t", "enabled": "True"}}), 400)
        _error(c.post(f"{V3}/services", json={"service": {"name": "no type"}}), 400)
        _error(c.patch(f"{V3}/services/{svc['id']}", json={"service": {"enabled": "False"}}), 400)
        _error(c.patch(f"{V3}/endpoints/{uuid.uuid4().hex}", json={"endpoint": {"url": "u"}}), 404)
        _error(c.patch(f"{V3}/services/{uuid.uuid4().hex}", json={"service": {"name": "n"}}), 404)


def test_non_admins_read_regions_only(cloud: Cloud) -> None:
    with cloud.client() as admin:
        svc = _made(admin.post(f"{V3}/services", json={"service": {"type": "t"}}), "service")
    with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as c:
        assert c.get(f"{V3}/regions/RegionOne").status_code == 200
        for resp in (
            c.get(f"{V3}/services/{svc['id']}"),
            c.post(f"{V3}/services", json={"service": {"type": "t"}}),
            c.patch(f"{V3}/services/{svc['id']}", json={"service": {"name": "n"}}),
            c.delete(f"{V3}/services/{svc['id']}"),
            c.post(
                f"{V3}/endpoints",
                json={"endpoint": {"service_id": svc["id"], "interface": "public", "url": "u"}},
            ),
            c.post(f"{V3}/regions", json={"region": {}}),
            c.put(f"{V3}/regions/mine", json={"region": {}}),
            c.delete(f"{V3}/regions/RegionOne"),
        ):
            _error(resp, 403)


def test_the_legacy_region_of_an_endpoint_is_created_when_missing(cloud: Cloud) -> None:
    """Keystone, for clients using v3 as v2: an endpoint's `region` without `region_id` names a
    region, created when none exists (on create and update); `region_id` must name one."""
    n = uuid.uuid4().hex[:6]
    with cloud.client() as c:
        svc = _made(c.post(f"{V3}/services", json={"service": {"type": "legacy"}}), "service")
        base = {"service_id": svc["id"], "interface": "public", "url": "http://a"}
        made = _made(c.post(f"{V3}/endpoints", json={"endpoint": {**base, "region": f"r1-{n}"}}), "endpoint")
        assert made["region"] == made["region_id"] == f"r1-{n}"
        assert c.get(f"{V3}/regions/r1-{n}").json()["region"]["parent_region_id"] is None
        # an existing one is used as it is
        again = _made(c.post(f"{V3}/endpoints", json={"endpoint": {**base, "region": f"r1-{n}"}}), "endpoint")
        assert again["region_id"] == f"r1-{n}"
        updated = c.patch(f"{V3}/endpoints/{made['id']}", json={"endpoint": {"region": f"r2-{n}"}})
        assert updated.status_code == 200 and updated.json()["endpoint"]["region_id"] == f"r2-{n}"
        assert c.get(f"{V3}/regions/r2-{n}").status_code == 200
        # region_id wins over region, and is never created
        _error(
            c.post(f"{V3}/endpoints", json={"endpoint": {**base, "region_id": f"r3-{n}", "region": "x"}}), 400
        )
        _error(c.get(f"{V3}/regions/r3-{n}"), 404)
        # a bad enabled value is refused before any region is made
        body = {**base, "region": f"r4-{n}", "enabled": "True"}
        _error(c.post(f"{V3}/endpoints", json={"endpoint": body}), 400)
        _error(c.get(f"{V3}/regions/r4-{n}"), 404)
        _error(c.patch(f"{V3}/endpoints/{made['id']}", json={"endpoint": {"enabled": "False"}}), 400)
