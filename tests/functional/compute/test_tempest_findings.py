"""Small Nova behaviours the public tempest suite checks: the adminPass asked for at create is
the one answered, accessIPv6 is normalized as Nova stores it, every version document's self
link can be followed, an aggregate id that is not an integer names no aggregate (404), the
metadata_items quota holds on create, update and rebuild (403), and a live migration to a host
that does not exist is bad input (400)."""

from __future__ import annotations

import httpx

from tests.conftest import Cloud
from tests.functional.compute.helpers import API, add_instance, project_id, register_hosts
from tests.functional.helpers import make_flavor, upload_image


def _create(c: httpx.Client, flavor: str, **fields: object) -> httpx.Response:
    server = {"name": "s", "flavorRef": flavor, "imageRef": upload_image(c), "networks": "none"}
    return c.post(f"{API}/servers", json={"server": {**server, **fields}})


def test_the_admin_password_given_is_the_one_returned(cloud: Cloud) -> None:
    with cloud.client() as c:
        flavor = make_flavor(c, "tf")
        resp = _create(c, flavor, adminPass="correct-horse-battery")
        assert resp.status_code == 202, resp.text
        assert resp.json()["server"]["adminPass"] == "correct-horse-battery"
        made_up = _create(c, flavor)
        assert made_up.status_code == 202, made_up.text
        assert made_up.json()["server"]["adminPass"] not in ("", "correct-horse-battery")
        assert _create(c, flavor, adminPass=5).status_code == 400


def test_access_ipv6_is_normalized(cloud: Cloud) -> None:
    with cloud.client() as c:
        resp = _create(
            c,
            make_flavor(c, "tf"),
            accessIPv6="2001:0DB8:0000:0000:0000:0000:0000:0001",
            accessIPv4="10.1.2.3",
        )
        assert resp.status_code == 202, resp.text
        server_id = resp.json()["server"]["id"]
        shown = c.get(f"{API}/servers/{server_id}").json()["server"]
        assert (shown["accessIPv6"], shown["accessIPv4"]) == ("2001:db8::1", "10.1.2.3")
        updated = c.put(f"{API}/servers/{server_id}", json={"server": {"accessIPv6": "::babe:67.23.10.132"}})
        assert updated.status_code == 200, updated.text
        assert updated.json()["server"]["accessIPv6"] == "::babe:4317:a84"


def test_every_version_self_link_is_followable(cloud: Cloud) -> None:
    versions = httpx.get(f"{cloud.url}/compute/").json()["versions"]
    assert {v["id"] for v in versions} == {"v2.0", "v2.1"}
    for entry in versions:
        (self_link,) = [link for link in entry["links"] if link["rel"] == "self"]
        resp = httpx.get(self_link["href"])
        assert resp.status_code == 200, (self_link, resp.text)
        assert resp.json()["version"]["id"] == entry["id"]


def test_an_aggregate_id_that_is_not_an_integer_is_not_found(cloud: Cloud) -> None:
    with cloud.client() as c:
        for method, path in (
            ("GET", "/os-aggregates/abc"),
            ("PUT", "/os-aggregates/abc"),
            ("DELETE", "/os-aggregates/abc"),
            ("POST", "/os-aggregates/1.5/action"),
        ):
            body = {"aggregate": {"name": "x"}} if method == "PUT" else None
            if path.endswith("action"):
                body = {"add_host": {"host": "h"}}
            resp = c.request(method, f"{API}{path}", json=body)
            assert resp.status_code == 404, (method, path, resp.text)
            assert "could not be found" in resp.json()["itemNotFound"]["message"]


def test_metadata_items_quota_is_enforced(cloud: Cloud) -> None:
    with cloud.client() as c:
        flavor = make_flavor(c, "tf")
        too_many = {f"k{i}": "v" for i in range(129)}
        over = _create(c, flavor, metadata=too_many)
        assert over.status_code == 403, over.text
        assert "metadata_items" in over.json()["forbidden"]["message"]
        enough = {f"k{i}": "v" for i in range(128)}
        made = _create(c, flavor, metadata=enough)
        assert made.status_code == 202, made.text
        sid = made.json()["server"]["id"]
        more = c.post(f"{API}/servers/{sid}/metadata", json={"metadata": {"extra": "v"}})
        assert more.status_code == 403, more.text
        one = c.put(f"{API}/servers/{sid}/metadata/extra", json={"meta": {"extra": "v"}})
        assert one.status_code == 403, one.text
        replaced = c.put(f"{API}/servers/{sid}/metadata", json={"metadata": {"a": "b"}})
        assert replaced.status_code == 200 and replaced.json()["metadata"] == {"a": "b"}
        admin = project_id(c, "admin")
        lowered = c.put(f"{API}/os-quota-sets/{admin}", json={"quota_set": {"metadata_items": 1}})
        assert lowered.status_code == 200, lowered.text
        assert _create(c, flavor, metadata={"a": "1", "b": "2"}).status_code == 403
        assert c.get(f"{API}/servers/{sid}/metadata").json()["metadata"] == {"a": "b"}


def test_live_migration_to_a_host_that_does_not_exist_is_bad_input(cloud: Cloud) -> None:
    register_hosts(cloud, "tf-src")
    with cloud.client() as c:
        sid = add_instance(cloud, "tf-src", project_id(c, "admin"))
        for action in (
            {"os-migrateLive": {"host": "tf-nowhere", "block_migration": "auto"}},
            {"migrate": {"host": "tf-nowhere"}},
        ):
            resp = c.post(
                f"{API}/servers/{sid}/action", json=action, headers={"OpenStack-API-Version": "compute 2.56"}
            )
            assert resp.status_code == 400, resp.text
            assert resp.json()["badRequest"]["message"] == "Compute host tf-nowhere could not be found."
        shown = c.get(f"{API}/servers/{sid}").json()["server"]
        assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "tf-src")
