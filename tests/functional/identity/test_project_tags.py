"""Project tags over HTTP (tempest's test_project_tags, test_project_get_equals_list): the tags
sub-resource, `tags` in project bodies, the list filters, and Keystone's limits (80 tags, 255
characters, no '/' or ',')."""

from __future__ import annotations

import uuid

from tests.conftest import DEMO_PASSWORD, Cloud
from tests.functional.identity.helpers import keystone_error, made

V3 = "/identity/v3"


def test_tags_sub_resource(cloud: Cloud) -> None:
    with cloud.client() as c:
        project = made(
            c.post(f"{V3}/projects", json={"project": {"name": f"tags-{uuid.uuid4().hex[:6]}"}}), "project"
        )
        tags = f"{V3}/projects/{project['id']}/tags"
        assert project["tags"] == []
        assert c.get(tags).json()["tags"] == []
        # one tag: added (201, twice is once), checked, shown in the project
        added = c.put(f"{tags}/blue")
        assert added.status_code == 201 and added.content == b""
        assert added.headers["Location"] == f"{cloud.url}{tags}/blue"
        assert c.put(f"{tags}/blue").status_code == 201
        assert c.get(tags).json()["tags"] == ["blue"]
        assert c.get(f"{tags}/blue").status_code == 204 and c.head(f"{tags}/blue").status_code == 204
        keystone_error(c.get(f"{tags}/red"), 404)
        assert c.get(f"{V3}/projects/{project['id']}").json()["project"]["tags"] == ["blue"]
        # all of them replaced, listed, one deleted, all deleted
        replaced = c.put(tags, json={"tags": ["a", "b", "c"]})
        assert replaced.status_code == 200 and sorted(replaced.json()["tags"]) == ["a", "b", "c"]
        assert sorted(c.get(tags).json()["tags"]) == ["a", "b", "c"]
        assert c.delete(f"{tags}/a").status_code == 204
        keystone_error(c.delete(f"{tags}/a"), 404)
        assert sorted(c.get(tags).json()["tags"]) == ["b", "c"]
        assert c.delete(tags).status_code == 204
        assert c.get(tags).json()["tags"] == []
        # through the project's own update
        updated = c.patch(f"{V3}/projects/{project['id']}", json={"project": {"tags": ["x", "y"]}})
        assert updated.status_code == 200 and updated.json()["project"]["tags"] == ["x", "y"]
        keystone_error(c.get(f"{V3}/projects/{uuid.uuid4().hex}/tags"), 404)
    with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as c:
        keystone_error(c.put(f"{tags}/mine"), 403)


def test_keystones_limits_on_tags(cloud: Cloud) -> None:
    with cloud.client() as c:
        project = made(
            c.post(f"{V3}/projects", json={"project": {"name": f"lim-{uuid.uuid4().hex[:6]}"}}), "project"
        )
        tags = f"{V3}/projects/{project['id']}/tags"
        for bad in (["a,b"], ["x" * 256], [""], [1], ["dup", "dup"], [f"t{i}" for i in range(81)]):
            keystone_error(c.put(tags, json={"tags": bad}), 400)
            keystone_error(c.post(f"{V3}/projects", json={"project": {"name": "bad-tags", "tags": bad}}), 400)
        keystone_error(c.put(tags, json={}), 400)
        url = f"{V3}/projects/{project['id']}"
        keystone_error(c.patch(url, json={"project": {"tags": None}}), 400)  # Keystone's schema: an array
        assert c.put(tags, json={"tags": [" "]}).json()["tags"] == [" "]  # Keystone: minLength 1 only
        assert c.patch(url, json={"project": {"tags": ["  "]}}).json()["project"]["tags"] == ["  "]
        assert c.put(tags, json={"tags": [f"t{i}" for i in range(80)]}).status_code == 200
        keystone_error(c.put(f"{tags}/one-too-many"), 400)
        assert c.put(tags, json={"tags": ["y" * 255]}).status_code == 200
        keystone_error(c.put(f"{tags}/{'z' * 256}"), 400)


def test_list_filters(cloud: Cloud) -> None:
    n = uuid.uuid4().hex[:6]
    with cloud.client() as c:
        projects = {
            name: made(
                c.post(f"{V3}/projects", json={"project": {"name": f"{name}-{n}", "tags": t}}), "project"
            )
            for name, t in (("ab", ["a", "b"]), ("a", ["a"]), ("c", ["c"]), ("none", []))
        }
        assert projects["ab"]["tags"] == ["a", "b"]
        ours = {p["id"]: name for name, p in projects.items()}

        def listed(**params: str) -> list[str]:
            found = c.get(f"{V3}/projects", params=params).json()["projects"]
            return sorted(ours[p["id"]] for p in found if p["id"] in ours)

        assert listed(tags="a,b") == ["ab"]
        assert listed(tags="a") == ["a", "ab"]
        assert listed(**{"tags-any": "b,c"}) == ["ab", "c"]
        assert listed(**{"not-tags": "a,b"}) == ["a", "c", "none"]
        assert listed(**{"not-tags-any": "a,c"}) == ["none"]
        assert listed(tags="a", **{"not-tags": "b"}) == ["a"]
        shown = c.get(f"{V3}/projects/{projects['ab']['id']}").json()["project"]
        in_list = [p for p in c.get(f"{V3}/projects").json()["projects"] if p["id"] == shown["id"]]
        assert in_list == [shown]
