"""OS-INHERIT over HTTP (tempest's test_inherits): roles granted inherited to projects on a
domain or a project, to a user or a group: granted, listed, checked and revoked; a domain's
inherited grant holds on each of its projects (effective role assignments, tokens) and not on
the domain; a project's holds on its subtree and not on the project itself
(tests/functional/identity/test_project_tree.py)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import DEMO_PASSWORD, Cloud

V3 = "/identity/v3"


def _made(resp: httpx.Response, kind: str) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()[kind]
    return body


def _project_roles(cloud: Cloud, user: str, domain_id: str, project: str) -> list[str]:
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": user, "domain": {"id": domain_id}, "password": "pw"}},
        },
        "scope": {"project": {"name": project, "domain": {"id": domain_id}}},
    }
    resp = httpx.post(f"{cloud.url}{V3}/auth/tokens", json={"auth": auth})
    if resp.status_code != 201:
        return []
    return sorted(r["name"] for r in resp.json()["token"]["roles"])


def test_inherited_grants_on_domains_and_projects(cloud: Cloud) -> None:
    n = uuid.uuid4().hex[:6]
    with cloud.client() as c:
        domain = _made(c.post(f"{V3}/domains", json={"domain": {"name": f"inh-{n}"}}), "domain")
        d = domain["id"]
        project = _made(c.post(f"{V3}/projects", json={"project": {"name": "p", "domain_id": d}}), "project")
        user = _made(
            c.post(f"{V3}/users", json={"user": {"name": "u", "password": "pw", "domain_id": d}}), "user"
        )
        group = _made(c.post(f"{V3}/groups", json={"group": {"name": "g", "domain_id": d}}), "group")
        role = _made(c.post(f"{V3}/roles", json={"role": {"name": f"inh-{n}"}}), "role")
        other = _made(c.post(f"{V3}/roles", json={"role": {"name": f"inh2-{n}"}}), "role")
        assert c.put(f"{V3}/groups/{group['id']}/users/{user['id']}").status_code == 204

        def effective(**scope: str) -> list[tuple[str, str]]:
            params = {"user.id": user["id"], "effective": "true", **scope}
            rows = c.get(f"{V3}/role_assignments", params=params).json()["role_assignments"]
            return sorted((r["role"]["id"], next(iter(r["scope"]))) for r in rows)

        # Each kind of inherited grant: granted, checked, listed (domains), revoked.
        cases = [
            ("domains", d, "users", user["id"], role["id"]),
            ("domains", d, "groups", group["id"], other["id"]),
            ("projects", project["id"], "users", user["id"], other["id"]),
            ("projects", project["id"], "groups", group["id"], role["id"]),
        ]
        for kind, target, actors, actor, role_id in cases:
            url = f"{V3}/OS-INHERIT/{kind}/{target}/{actors}/{actor}/roles/{role_id}/inherited_to_projects"
            assert c.head(url).status_code == 404
            assert c.put(url).status_code == 204 and c.put(url).status_code == 204  # idempotent
            assert c.head(url).status_code == 204 and c.get(url).status_code == 204
            if kind == "domains":
                listed = c.get(f"{V3}/OS-INHERIT/domains/{d}/{actors}/{actor}/roles/inherited_to_projects")
                assert [r["id"] for r in listed.json()["roles"]] == [role_id]
                # Not a grant on the domain itself.
                assert c.get(f"{V3}/domains/{d}/{actors}/{actor}/roles").json()["roles"] == []
        # On the domain's project: the user's inherited role and the group's (effective).
        assert effective(**{"scope.project.id": project["id"]}) == sorted(
            [(role["id"], "project"), (other["id"], "project")]
        )
        assert effective(**{"scope.domain.id": d}) == []
        assert _project_roles(cloud, "u", d, "p") == sorted([role["name"], other["name"]])
        listed = c.get(f"{V3}/role_assignments", params={"scope.domain.id": d}).json()["role_assignments"]
        assert len(listed) == 2 and all(r["scope"]["OS-INHERIT:inherited_to"] == "projects" for r in listed)
        assert all("/OS-INHERIT/domains/" in r["links"]["assignment"] for r in listed)

        for kind, target, actors, actor, role_id in cases:
            url = f"{V3}/OS-INHERIT/{kind}/{target}/{actors}/{actor}/roles/{role_id}/inherited_to_projects"
            assert c.delete(url).status_code == 204
            assert c.head(url).status_code == 404 and c.delete(url).status_code == 404
        assert effective(**{"scope.project.id": project["id"]}) == []
        assert _project_roles(cloud, "u", d, "p") == []
        missing = (
            f"{V3}/OS-INHERIT/domains/{d}/users/{user['id']}/roles/{uuid.uuid4().hex}/inherited_to_projects"
        )
        assert c.put(missing).status_code == 404

    with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as c:
        url = f"{V3}/OS-INHERIT/domains/{d}/users/{user['id']}/roles/{role['id']}/inherited_to_projects"
        resp = c.put(url)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == 403
