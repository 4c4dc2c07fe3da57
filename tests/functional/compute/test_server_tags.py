"""The server tags API (2.26) and tags on create (2.52), over the API on SQLite and PostgreSQL:
Nova's status codes, bodies, limits and the list filters; and the lock reason (2.73), stored in
its own column, on both databases."""

from __future__ import annotations

import pytest

from tests.conftest import Cloud
from tests.functional.compute.helpers import API, BACKENDS, add_instance, either_cloud, project_id


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


def test_tags_api_and_lock_reason(any_cloud: Cloud) -> None:
    with any_cloud.client(microversion="2.26") as c:
        admin = project_id(c, "admin")
    sid = add_instance(any_cloud, None, admin, name="tagged")
    other = add_instance(any_cloud, None, admin, name="other")
    tags = f"{API}/servers/{sid}/tags"
    with any_cloud.client(microversion="2.25") as old:
        assert old.get(tags).status_code == 404  # no such resource before 2.26
    with any_cloud.client(microversion="2.26") as c:
        assert c.get(tags).json() == {"tags": []}
        put = c.put(tags, json={"tags": ["a", "b", "a"]})
        assert (put.status_code, put.json()) == (200, {"tags": ["a", "b"]})
        added = c.put(f"{tags}/c")
        assert added.status_code == 201 and added.headers["Location"].endswith(f"/servers/{sid}/tags/c")
        assert c.put(f"{tags}/c").status_code == 204  # already there
        assert c.get(f"{tags}/c").status_code == 204
        missing = c.get(f"{tags}/zz")
        assert missing.status_code == 404 and "has no tag 'zz'" in missing.json()["itemNotFound"]["message"]
        assert c.get(tags).json() == {"tags": ["a", "b", "c"]}
        assert c.get(f"{API}/servers/{sid}").json()["server"]["tags"] == ["a", "b", "c"]
        # Nova's limits: 50 tags, 60 characters, no ',' or '/'; nothing is half-written.
        for bad in ({"tags": [str(i) for i in range(51)]}, {"tags": ["x" * 61]}, {"tags": ["a,b"]}, {}):
            assert c.put(tags, json=bad).status_code == 400, bad
        assert c.put(f"{tags}/{'x' * 61}").status_code == 400
        assert c.put(f"{tags}/a,b").status_code == 400
        assert c.put(tags, json={"tags": [str(i) for i in range(50)]}).status_code == 200
        full = c.put(f"{tags}/one-more")
        assert full.status_code == 400 and "per-server limit 50" in full.json()["badRequest"]["message"]
        assert c.put(tags, json={"tags": ["a", "b", "c"]}).status_code == 200
        assert c.put(f"{API}/servers/{other}/tags", json={"tags": ["b"]}).status_code == 200
        # The list filters, each a comma-separated list.
        for query, names in (
            ("tags=a,b", {"tagged"}),
            ("tags=b", {"tagged", "other"}),
            ("tags-any=c,b", {"tagged", "other"}),
            ("not-tags=a,b", {"other"}),
            ("not-tags-any=c", {"other"}),
            ("tags=b&not-tags-any=a", {"other"}),
        ):
            listed = c.get(f"{API}/servers?{query}").json()["servers"]
            assert {s["name"] for s in listed} == names, query
        assert c.delete(f"{tags}/b").status_code == 204
        assert c.delete(f"{tags}/b").status_code == 404
        assert c.get(tags).json() == {"tags": ["a", "c"]}
        assert c.delete(tags).status_code == 204
        assert c.get(tags).json() == {"tags": []}
        assert c.get(f"{API}/servers/{'0' * 8}-0000-0000-0000-{'0' * 12}/tags").status_code == 404
    reason = "maintenance window " + "é" * 200  # 219 characters: the column holds 255
    with any_cloud.client(microversion="2.73") as c:
        assert (
            c.post(f"{API}/servers/{sid}/action", json={"lock": {"locked_reason": reason}}).status_code == 202
        )
        shown = c.get(f"{API}/servers/{sid}").json()["server"]
        assert (shown["locked"], shown["locked_reason"]) == (True, reason)
        assert [s["name"] for s in c.get(f"{API}/servers/detail?locked=true").json()["servers"]] == ["tagged"]
        assert c.post(f"{API}/servers/{sid}/action", json={"unlock": None}).status_code == 202
        assert c.get(f"{API}/servers/{sid}").json()["server"]["locked_reason"] is None


def test_tags_change_only_in_novas_states(cloud: Cloud) -> None:
    with cloud.client(microversion="2.26") as c:
        sid = add_instance(cloud, None, project_id(c, "admin"))
        assert (
            c.post(f"{API}/servers/{sid}/action", json={"os-resetState": {"state": "error"}}).status_code
            == 202
        )
        refused = c.put(f"{API}/servers/{sid}/tags/t")
        assert refused.status_code == 409
        assert "vm_state error" in refused.json()["conflictingRequest"]["message"]
        assert c.get(f"{API}/servers/{sid}/tags").json() == {"tags": []}  # reads still work
