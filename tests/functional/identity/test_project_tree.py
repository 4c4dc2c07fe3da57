"""Hierarchical projects over HTTP (tempest's test_project_create_with_parent,
ListProjectsTestJSON, test_inherits' project tree): `parent_id` naming a project of the same
domain, the list by parent, the hierarchy shown with `parents_as_list`, `subtree_as_list`,
`parents_as_ids` and `subtree_as_ids`, Keystone's 403s (deleting a project that has children,
disabling one above an enabled one, a tree deeper than 5), and a role granted inherited to a
project's subtree holding on every project below it (tokens, effective role assignments)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import Cloud
from tests.functional.identity.helpers import keystone_error, made

V3 = "/identity/v3"


def _project(c: httpx.Client, name: str, **attrs: Any) -> dict[str, Any]:
    return made(c.post(f"{V3}/projects", json={"project": {"name": name, **attrs}}), "project")


def test_a_tree_of_projects(cloud: Cloud) -> None:
    n = uuid.uuid4().hex[:6]
    with cloud.client() as c:
        domain = made(c.post(f"{V3}/domains", json={"domain": {"name": f"tree-{n}"}}), "domain")
        top = _project(c, "top", domain_id=domain["id"])
        assert top["parent_id"] == domain["id"]
        mid = _project(c, "mid", parent_id=top["id"])  # the parent's domain
        assert mid["parent_id"] == top["id"] and mid["domain_id"] == domain["id"]
        leaf = _project(c, "leaf", domain_id=domain["id"], parent_id=mid["id"])
        sibling = _project(c, "sibling", parent_id=top["id"], domain_id=domain["id"])
        # a parent elsewhere: 404; in another domain: 400
        keystone_error(
            c.post(f"{V3}/projects", json={"project": {"name": "x", "parent_id": uuid.uuid4().hex}}), 404
        )
        keystone_error(
            c.post(
                f"{V3}/projects",
                json={"project": {"name": "x", "parent_id": top["id"], "domain_id": "default"}},
            ),
            400,
        )

        def names(params: dict[str, str]) -> list[str]:
            return sorted(p["name"] for p in c.get(f"{V3}/projects", params=params).json()["projects"])

        assert names({"parent_id": top["id"]}) == ["mid", "sibling"]
        assert names({"parent_id": domain["id"]}) == ["top"]

        def shown(project: dict[str, Any], *flags: str) -> dict[str, Any]:
            resp = c.get(f"{V3}/projects/{project['id']}?" + "&".join(flags))
            assert resp.status_code == 200, resp.text
            body: dict[str, Any] = resp.json()["project"]
            return body

        parents = shown(leaf, "parents_as_list")["parents"]
        assert [p["project"]["id"] for p in parents] == [mid["id"], top["id"]]
        subtree = shown(top, "subtree_as_list")["subtree"]
        assert sorted(p["project"]["name"] for p in subtree) == ["leaf", "mid", "sibling"]
        assert shown(leaf, "parents_as_ids")["parents"] == {mid["id"]: {top["id"]: None}}
        assert shown(top, "subtree_as_ids")["subtree"] == {mid["id"]: {leaf["id"]: None}, sibling["id"]: None}
        assert shown(top, "parents_as_ids")["parents"] is None
        assert "parents" not in shown(top) and "subtree" not in shown(top)
        keystone_error(c.get(f"{V3}/projects/{top['id']}?subtree_as_list&subtree_as_ids"), 400)

        # Keystone's rules: no moving, no deleting or disabling above live children, at most 5 deep
        keystone_error(
            c.patch(f"{V3}/projects/{leaf['id']}", json={"project": {"parent_id": top["id"]}}), 403
        )
        keystone_error(c.patch(f"{V3}/projects/{leaf['id']}", json={"project": {"parent_id": None}}), 403)
        same = c.patch(
            f"{V3}/projects/{leaf['id']}", json={"project": {"parent_id": mid["id"], "description": "d"}}
        )
        assert same.status_code == 200 and same.json()["project"]["parent_id"] == mid["id"]
        top_again = c.patch(f"{V3}/projects/{top['id']}", json={"project": {"parent_id": domain["id"]}})
        assert top_again.status_code == 200
        keystone_error(c.delete(f"{V3}/projects/{mid['id']}"), 403)
        keystone_error(c.patch(f"{V3}/projects/{mid['id']}", json={"project": {"enabled": False}}), 403)
        chain = [leaf]
        for level in range(2):
            chain.append(_project(c, f"deep{level}", parent_id=chain[-1]["id"]))
        too_deep = {"project": {"name": "too-deep", "parent_id": chain[-1]["id"]}}
        keystone_error(c.post(f"{V3}/projects", json=too_deep), 403)
        # bottom up, each deletion is a leaf's
        for project in (*reversed(chain), mid, sibling, top):
            assert c.delete(f"{V3}/projects/{project['id']}").status_code == 204


def _roles_on(cloud: Cloud, domain_id: str, project: str) -> list[str]:
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": "u", "domain": {"id": domain_id}, "password": "pw"}},
        },
        "scope": {"project": {"name": project, "domain": {"id": domain_id}}},
    }
    resp = httpx.post(f"{cloud.url}{V3}/auth/tokens", json={"auth": auth})
    return sorted(r["name"] for r in resp.json()["token"]["roles"]) if resp.status_code == 201 else []


def test_a_role_inherited_to_a_projects_subtree(cloud: Cloud) -> None:
    n = uuid.uuid4().hex[:6]
    with cloud.client() as c:
        domain = made(c.post(f"{V3}/domains", json={"domain": {"name": f"inh-tree-{n}"}}), "domain")
        d = domain["id"]
        top = _project(c, "top", domain_id=d)
        mid = _project(c, "mid", parent_id=top["id"])
        leaf = _project(c, "leaf", parent_id=mid["id"])
        user = made(
            c.post(f"{V3}/users", json={"user": {"name": "u", "password": "pw", "domain_id": d}}), "user"
        )
        group = made(c.post(f"{V3}/groups", json={"group": {"name": "g", "domain_id": d}}), "group")
        assert c.put(f"{V3}/groups/{group['id']}/users/{user['id']}").status_code == 204
        role = made(c.post(f"{V3}/roles", json={"role": {"name": f"tree-{n}"}}), "role")
        by_group = made(c.post(f"{V3}/roles", json={"role": {"name": f"tree-g-{n}"}}), "role")
        user_grant = f"{V3}/OS-INHERIT/projects/{top['id']}/users/{user['id']}/roles/{role['id']}"
        group_grant = f"{V3}/OS-INHERIT/projects/{mid['id']}/groups/{group['id']}/roles/{by_group['id']}"
        user_grant, group_grant = (
            f"{user_grant}/inherited_to_projects",
            f"{group_grant}/inherited_to_projects",
        )
        assert c.put(user_grant).status_code == 204 and c.put(group_grant).status_code == 204

        def effective(project: dict[str, Any]) -> list[tuple[str, str]]:
            params = {"user.id": user["id"], "effective": "true", "scope.project.id": project["id"]}
            rows = c.get(f"{V3}/role_assignments", params=params).json()["role_assignments"]
            return sorted(
                (r["role"]["id"], r["links"]["assignment"].split("/OS-INHERIT/")[1].split("/")[1])
                for r in rows
            )

        # not on the project granted on, on every project below it
        assert effective(top) == []
        assert effective(mid) == [(role["id"], top["id"])]
        assert effective(leaf) == sorted([(role["id"], top["id"]), (by_group["id"], mid["id"])])
        assert _roles_on(cloud, d, "top") == []
        assert _roles_on(cloud, d, "mid") == [role["name"]]
        assert _roles_on(cloud, d, "leaf") == sorted([role["name"], by_group["name"]])
        # the user's projects (and the ones a token may be scoped to) are those below
        mine = c.get(f"{V3}/users/{user['id']}/projects").json()["projects"]
        assert sorted(p["name"] for p in mine) == ["leaf", "mid"]
        everything = c.get(f"{V3}/role_assignments", params={"user.id": user["id"], "effective": "true"})
        assert len(everything.json()["role_assignments"]) == 3  # mid and leaf from top, leaf from mid

        assert c.delete(user_grant).status_code == 204
        assert _roles_on(cloud, d, "mid") == []
        assert _roles_on(cloud, d, "leaf") == [by_group["name"]]
