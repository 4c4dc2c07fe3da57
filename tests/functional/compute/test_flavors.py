"""Flavors over HTTP: shapes per microversion, filters, paging, extra specs and access lists."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Cloud
from tests.functional.compute.helpers import API, demo_token, project_id, reader_token

DETAIL_KEYS_21 = {
    "id",
    "name",
    "ram",
    "disk",
    "swap",
    "OS-FLV-EXT-DATA:ephemeral",
    "OS-FLV-DISABLED:disabled",
    "vcpus",
    "os-flavor-access:is_public",
    "rxtx_factor",
    "links",
}


def _create(c: httpx.Client, name: str, **extra: Any) -> dict[str, Any]:
    body = {"flavor": {"name": name, "vcpus": 1, "ram": 512, "disk": 1, **extra}}
    resp = c.post(f"{API}/flavors", json=body)
    assert resp.status_code == 200, resp.text
    flavor: dict[str, Any] = resp.json()["flavor"]
    return flavor


@pytest.mark.parametrize(
    ("version", "extra_keys"),
    [("2.1", set()), ("2.54", set()), ("2.55", {"description"}), ("2.61", {"description", "extra_specs"})],
)
def test_detail_shape_follows_the_microversion(cloud: Cloud, version: str, extra_keys: set[str]) -> None:
    with cloud.client(microversion=version) as c:
        created = _create(c, "m1", id="42")
        assert set(created) == DETAIL_KEYS_21 | extra_keys
        shown = c.get(f"{API}/flavors/42").json()["flavor"]
        listed = c.get(f"{API}/flavors/detail").json()["flavors"]
        summary = c.get(f"{API}/flavors").json()["flavors"]
    assert set(shown) == DETAIL_KEYS_21 | extra_keys
    assert [set(f) for f in listed] == [DETAIL_KEYS_21 | extra_keys]
    assert set(summary[0]) == {"id", "name", "links"} | (extra_keys & {"description"})
    assert shown["swap"] == ""  # Nova's "no swap" before 2.75
    assert shown["links"][0]["href"] == f"{cloud.url}/compute/v2.1/flavors/42"
    assert shown["links"][1] == {"rel": "bookmark", "href": f"{cloud.url}/compute/flavors/42"}


def test_create_generates_uuid_and_rejects_duplicates(cloud: Cloud) -> None:
    with cloud.client(microversion="2.61") as c:
        flavor = _create(c, "small", swap=256, **{"OS-FLV-EXT-DATA:ephemeral": 5, "description": "d"})
        assert len(flavor["id"]) == 36 and flavor["swap"] == 256 and flavor["OS-FLV-EXT-DATA:ephemeral"] == 5
        assert flavor["description"] == "d" and flavor["extra_specs"] == {}
        same_name = c.post(
            f"{API}/flavors", json={"flavor": {"name": "small", "vcpus": 1, "ram": 1, "disk": 0}}
        )
        assert same_name.status_code == 409
        assert same_name.json()["conflictingRequest"]["message"] == "Flavor with name small already exists."
        same_id = c.post(
            f"{API}/flavors",
            json={"flavor": {"name": "other", "vcpus": 1, "ram": 1, "disk": 0, "id": flavor["id"]}},
        )
        assert same_id.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"flavor": {"name": "x", "vcpus": 0, "ram": 512, "disk": 1}},
        {"flavor": {"name": "x", "vcpus": 1, "ram": "lots", "disk": 1}},
        # Digits to str.isdigit(), not to int() (a 500), or not ASCII (Nova's pattern is [0-9]).
        {"flavor": {"name": "x", "vcpus": 1, "ram": "\u00b9", "disk": 1}},
        {"flavor": {"name": "x", "vcpus": 1, "ram": "--512", "disk": 1}},
        {"flavor": {"name": "x", "vcpus": 1, "ram": "\u0665\u0661\u0662", "disk": 1}},
        {"flavor": {"name": "x", "vcpus": 1, "ram": 512}},
        {"flavor": {"name": " x", "vcpus": 1, "ram": 512, "disk": 1}},
        {"flavor": {"name": "x", "vcpus": 1, "ram": 512, "disk": 1, "bogus": 1}},
        {"flavor": {"name": "x", "vcpus": 1, "ram": 512, "disk": 1, "description": "too early"}},
        {"flavor": {"name": "x", "vcpus": 1, "ram": 512, "disk": 1, "os-flavor-access:is_public": "maybe"}},
        {"nope": {}},
    ],
)
def test_bad_create_bodies_are_400(cloud: Cloud, body: dict[str, Any]) -> None:
    with cloud.client(microversion="2.54") as c:
        resp = c.post(f"{API}/flavors", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["code"] == 400


def test_list_filters_sorting_and_paging(cloud: Cloud) -> None:
    with cloud.client() as c:
        for i, (ram, disk) in enumerate([(256, 1), (1024, 10), (4096, 40)]):
            _create(c, f"f{i}", id=str(i + 1), ram=ram, disk=disk)
        ids = lambda resp: [f["id"] for f in resp.json()["flavors"]]  # noqa: E731
        assert ids(c.get(f"{API}/flavors", params={"minRam": 1024})) == ["2", "3"]
        assert ids(c.get(f"{API}/flavors", params={"minDisk": 40})) == ["3"]
        assert ids(c.get(f"{API}/flavors", params={"sort_key": "memory_mb", "sort_dir": "desc"})) == [
            "3",
            "2",
            "1",
        ]
        page = c.get(f"{API}/flavors", params={"limit": 2})
        assert ids(page) == ["1", "2"]
        assert "marker=2" in page.json()["flavors_links"][0]["href"]
        assert ids(c.get(f"{API}/flavors", params={"limit": 2, "marker": "2"})) == ["3"]
        assert c.get(f"{API}/flavors", params={"marker": "nope"}).status_code == 400
        assert c.get(f"{API}/flavors", params={"minRam": "x"}).status_code == 400
        assert c.get(f"{API}/flavors", params={"limit": "-1"}).status_code == 400
        assert c.get(f"{API}/flavors", params={"sort_key": "bogus"}).status_code == 400


def test_private_flavors_are_visible_to_admin_and_listed_projects(cloud: Cloud) -> None:
    with cloud.client() as admin:
        _create(admin, "public", id="pub")
        _create(admin, "private", id="priv", **{"os-flavor-access:is_public": False})
        names = lambda resp: sorted(f["name"] for f in resp.json()["flavors"])  # noqa: E731
        # The admin's default listing is public (plus shared with admin's project); is_public=None is all.
        assert names(admin.get(f"{API}/flavors")) == ["public"]
        assert names(admin.get(f"{API}/flavors", params={"is_public": "None"})) == ["private", "public"]
        assert names(admin.get(f"{API}/flavors", params={"is_public": "false"})) == ["private"]
        assert admin.get(f"{API}/flavors", params={"is_public": "sometimes"}).status_code == 400
        assert admin.get(f"{API}/flavors/priv").status_code == 200
        demo_project = project_id(admin, "demo")
    with cloud.client(demo_token(cloud)) as demo:
        # Non-admins cannot widen the filter, and do not see the private flavor at all.
        assert names(demo.get(f"{API}/flavors", params={"is_public": "None"})) == ["public"]
        assert demo.get(f"{API}/flavors/priv").status_code == 404
    with cloud.client() as admin:
        added = admin.post(f"{API}/flavors/priv/action", json={"addTenantAccess": {"tenant": demo_project}})
        assert added.status_code == 200
        assert added.json() == {"flavor_access": [{"flavor_id": "priv", "tenant_id": demo_project}]}
        again = admin.post(f"{API}/flavors/priv/action", json={"addTenantAccess": {"tenant": demo_project}})
        assert again.status_code == 409
        assert (
            admin.get(f"{API}/flavors/priv/os-flavor-access").json()["flavor_access"][0]["tenant_id"]
            == demo_project
        )
        assert admin.get(f"{API}/flavors/pub/os-flavor-access").status_code == 404
        public_add = admin.post(
            f"{API}/flavors/pub/action", json={"addTenantAccess": {"tenant": demo_project}}
        )
        assert public_add.status_code == 409
        unknown = admin.post(
            f"{API}/flavors/priv/action", json={"addTenantAccess": {"tenant": "no-such-project"}}
        )
        assert unknown.status_code == 400
    with cloud.client(demo_token(cloud)) as demo:
        assert names(demo.get(f"{API}/flavors")) == ["private", "public"]
        assert demo.get(f"{API}/flavors/priv").status_code == 200
    with cloud.client() as admin:
        removed = admin.post(
            f"{API}/flavors/priv/action", json={"removeTenantAccess": {"tenant": demo_project}}
        )
        assert removed.json() == {"flavor_access": []}
        gone = admin.post(f"{API}/flavors/priv/action", json={"removeTenantAccess": {"tenant": demo_project}})
        assert gone.status_code == 404
    with cloud.client(demo_token(cloud)) as demo:
        assert demo.get(f"{API}/flavors/priv").status_code == 404


def test_extra_specs_crud_and_embedding_at_261(cloud: Cloud) -> None:
    with cloud.client(microversion="2.61") as c:
        _create(c, "spec", id="s1")
        resp = c.post(
            f"{API}/flavors/s1/os-extra_specs", json={"extra_specs": {"hw:cpu_policy": "dedicated", "k": 1}}
        )
        assert resp.status_code == 200
        assert resp.json() == {"extra_specs": {"hw:cpu_policy": "dedicated", "k": "1"}}
        assert c.get(f"{API}/flavors/s1/os-extra_specs/k").json() == {"k": "1"}
        assert c.put(f"{API}/flavors/s1/os-extra_specs/k", json={"k": "2"}).json() == {"k": "2"}
        assert c.put(f"{API}/flavors/s1/os-extra_specs/k", json={"other": "2"}).status_code == 400
        assert c.get(f"{API}/flavors/s1").json()["flavor"]["extra_specs"] == {
            "hw:cpu_policy": "dedicated",
            "k": "2",
        }
        assert c.delete(f"{API}/flavors/s1/os-extra_specs/k").status_code == 200
        assert c.get(f"{API}/flavors/s1/os-extra_specs/k").status_code == 404
        assert c.delete(f"{API}/flavors/s1/os-extra_specs/k").status_code == 404
        assert c.get(f"{API}/flavors/s1/os-extra_specs").json() == {
            "extra_specs": {"hw:cpu_policy": "dedicated"}
        }
        bad_key = c.post(f"{API}/flavors/s1/os-extra_specs", json={"extra_specs": {"bad/key": "v"}})
        assert bad_key.status_code == 400
        assert c.get(f"{API}/flavors/missing/os-extra_specs").status_code == 404


def test_description_update_needs_255(cloud: Cloud) -> None:
    with cloud.client(microversion="2.55") as c:
        _create(c, "d", id="d1", description="old")
        resp = c.put(f"{API}/flavors/d1", json={"flavor": {"description": "new"}})
        assert resp.status_code == 200 and resp.json()["flavor"]["description"] == "new"
        assert "extra_specs" not in resp.json()["flavor"]
        assert c.put(f"{API}/flavors/d1", json={"flavor": {"name": "renamed"}}).status_code == 400
    with cloud.client(microversion="2.54") as c:
        assert c.put(f"{API}/flavors/d1", json={"flavor": {"description": "x"}}).status_code == 404


def test_delete_and_not_found(cloud: Cloud) -> None:
    with cloud.client() as c:
        _create(c, "gone", id="g1")
        assert c.delete(f"{API}/flavors/g1").status_code == 202
        resp = c.get(f"{API}/flavors/g1")
        assert resp.status_code == 404
        assert resp.json()["itemNotFound"]["message"] == "Flavor g1 could not be found."
        assert c.delete(f"{API}/flavors/g1").status_code == 404


def test_writes_need_admin(cloud: Cloud) -> None:
    with cloud.client() as admin:
        _create(admin, "base", id="b1")
    for token in (demo_token(cloud), reader_token(cloud)):
        with cloud.client(token) as c:
            assert c.get(f"{API}/flavors/b1").status_code == 200
            assert c.get(f"{API}/flavors/b1/os-extra_specs").status_code == 200
            body = {"flavor": {"name": "mine", "vcpus": 1, "ram": 1, "disk": 0}}
            assert c.post(f"{API}/flavors", json=body).status_code == 403
            assert c.delete(f"{API}/flavors/b1").status_code == 403
            assert (
                c.post(f"{API}/flavors/b1/os-extra_specs", json={"extra_specs": {"a": "b"}}).status_code
                == 403
            )
