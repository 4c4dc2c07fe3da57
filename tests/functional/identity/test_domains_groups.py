"""Domains, domain-scoped tokens, groups and group role assignments over HTTP, on SQLite and
PostgreSQL: what a token carries is what the grants (direct, through groups, implied) give."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import DEMO_PASSWORD, Cloud
from tests.functional.compute.helpers import BACKENDS, either_cloud

V3 = "/identity/v3"


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create(c: httpx.Client, kind: str, **attrs: Any) -> dict[str, Any]:
    resp = c.post(f"{V3}/{kind}s", json={kind: attrs})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()[kind]
    return body


def _role_id(c: httpx.Client, name: str) -> str:
    return str(c.get(f"{V3}/roles", params={"name": name}).json()["roles"][0]["id"])


def _login(cloud: Cloud, user: dict[str, Any], scope: dict[str, Any] | None = None) -> httpx.Response:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": user}}}
    if scope is not None:
        auth["scope"] = scope
    return httpx.post(f"{cloud.url}{V3}/auth/tokens", json={"auth": auth})


def _error(resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == status


def test_domain_crud_and_delete_only_when_disabled(any_cloud: Cloud) -> None:
    name = _unique("dom")
    with any_cloud.client() as c:
        domain = _create(c, "domain", name=name, description="first")
        assert domain["enabled"] is True and domain["links"]["self"].endswith(f"/domains/{domain['id']}")
        _error(c.post(f"{V3}/domains", json={"domain": {"name": name}}), 409)
        assert [d["id"] for d in c.get(f"{V3}/domains", params={"name": name}).json()["domains"]] == [
            domain["id"]
        ]
        url = f"{V3}/domains/{domain['id']}"
        assert (
            c.patch(url, json={"domain": {"description": "second"}}).json()["domain"]["description"]
            == "second"
        )
        _error(c.delete(url), 403)  # still enabled
        assert c.patch(url, json={"domain": {"enabled": False}}).json()["domain"]["enabled"] is False
        assert c.delete(url).status_code == 204
        _error(c.get(url), 404)
        _error(c.patch(f"{V3}/domains/default", json={"domain": {"enabled": False}}), 403)
        _error(c.delete(f"{V3}/domains/default"), 403)
        _error(c.post(f"{V3}/domains", json={"domain": {"name": ""}}), 400)


def test_users_projects_and_domain_scoped_tokens(any_cloud: Cloud) -> None:
    with any_cloud.client() as c:
        domain = _create(c, "domain", name=_unique("dom"))
        project = _create(c, "project", name="shared-name", domain_id=domain["id"])
        # The same names may live in another domain.
        other = _create(c, "project", name="shared-name", domain_id="default")
        assert project["domain_id"] == domain["id"] and project["parent_id"] == domain["id"]
        user = _create(c, "user", name="alice", domain_id=domain["id"], password="pw-alice")
        _error(c.post(f"{V3}/users", json={"user": {"name": "alice", "domain_id": domain["id"]}}), 409)
        in_domain = c.get(f"{V3}/projects", params={"domain_id": domain["id"]}).json()["projects"]
        assert [p["id"] for p in in_domain] == [project["id"]]
        assert [
            u["id"] for u in c.get(f"{V3}/users", params={"domain_id": domain["id"]}).json()["users"]
        ] == [user["id"]]

        member, admin = _role_id(c, "member"), _role_id(c, "admin")
        assert c.put(f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{member}").status_code == 204
        creds = {"name": "alice", "domain": {"name": domain["name"]}, "password": "pw-alice"}
        scoped = _login(
            any_cloud, creds, {"project": {"name": "shared-name", "domain": {"id": domain["id"]}}}
        )
        assert scoped.status_code == 201, scoped.text
        token = scoped.json()["token"]
        assert (
            token["project"]["id"] == project["id"] and token["project"]["domain"]["name"] == domain["name"]
        )
        assert token["user"]["domain"] == {"id": domain["id"], "name": domain["name"]}
        assert sorted(r["name"] for r in token["roles"]) == ["member", "reader"]

        # Domain scope needs a role on the domain.
        _error(_login(any_cloud, creds, {"domain": {"id": domain["id"]}}), 401)
        grant = f"{V3}/domains/{domain['id']}/users/{user['id']}/roles/{admin}"
        assert c.put(grant).status_code == 204
        assert c.head(grant).status_code == 204
        listed = c.get(f"{V3}/domains/{domain['id']}/users/{user['id']}/roles").json()["roles"]
        assert [r["name"] for r in listed] == ["admin"]
        by_domain = c.get(f"{V3}/role_assignments", params={"scope.domain.id": domain["id"]}).json()
        assert [(a["user"]["id"], a["role"]["id"]) for a in by_domain["role_assignments"]] == [
            (user["id"], admin)
        ]
        dscoped = _login(any_cloud, creds, {"domain": {"name": domain["name"]}})
        assert dscoped.status_code == 201, dscoped.text
        body = dscoped.json()["token"]
        assert body["domain"] == {"id": domain["id"], "name": domain["name"]} and "project" not in body
        assert sorted(r["name"] for r in body["roles"]) == ["admin", "manager", "member", "reader"]
        assert body["catalog"]
        dtoken = dscoped.headers["X-Subject-Token"]
        with any_cloud.client(dtoken) as dc:
            # A project created with a domain-scoped token lands in its domain.
            made = dc.post(f"{V3}/projects", json={"project": {"name": _unique("p")}})
            assert made.status_code == 201 and made.json()["project"]["domain_id"] == domain["id"]

        # Disabling the domain ends its tokens and its users' logins.
        ptoken = scoped.headers["X-Subject-Token"]
        assert c.patch(f"{V3}/domains/{domain['id']}", json={"domain": {"enabled": False}}).status_code == 200
        assert (
            httpx.get(f"{any_cloud.url}{V3}/users/{user['id']}", headers={"X-Auth-Token": ptoken}).status_code
            == 401
        )
        _error(_login(any_cloud, creds), 401)
        assert c.delete(f"{V3}/domains/{domain['id']}").status_code == 204
        _error(c.get(f"{V3}/projects/{project['id']}"), 404)
        _error(c.get(f"{V3}/users/{user['id']}"), 404)
        assert c.get(f"{V3}/projects/{other['id']}").status_code == 200
        c.delete(f"{V3}/projects/{other['id']}")


def test_groups_membership_and_group_roles_reach_tokens(any_cloud: Cloud) -> None:
    with any_cloud.client() as c:
        project = _create(c, "project", name=_unique("gp"))
        user = _create(c, "user", name=_unique("bob"), password="pw-bob")
        group = _create(c, "group", name=_unique("ops"), description="operators")
        assert group["domain_id"] == "default"
        _error(c.post(f"{V3}/groups", json={"group": {"name": group["name"]}}), 409)
        member_url = f"{V3}/groups/{group['id']}/users/{user['id']}"
        assert c.head(member_url).status_code == 404
        assert c.put(member_url).status_code == 204
        assert c.head(member_url).status_code == 204
        assert [u["id"] for u in c.get(f"{V3}/groups/{group['id']}/users").json()["users"]] == [user["id"]]
        assert [g["id"] for g in c.get(f"{V3}/users/{user['id']}/groups").json()["groups"]] == [group["id"]]
        renamed = c.patch(f"{V3}/groups/{group['id']}", json={"group": {"description": "ops team"}})
        assert renamed.json()["group"]["description"] == "ops team"

        creds = {"name": user["name"], "domain": {"id": "default"}, "password": "pw-bob"}
        scope = {"project": {"id": project["id"]}}
        _error(_login(any_cloud, creds, scope), 401)  # no role yet
        member = _role_id(c, "member")
        grant = f"{V3}/projects/{project['id']}/groups/{group['id']}/roles/{member}"
        assert c.put(grant).status_code == 204
        assert c.head(grant).status_code == 204
        login = _login(any_cloud, creds, scope)
        assert login.status_code == 201, login.text
        assert sorted(r["name"] for r in login.json()["token"]["roles"]) == ["member", "reader"]

        direct = c.get(f"{V3}/role_assignments", params={"group.id": group["id"]}).json()["role_assignments"]
        assert [(a["group"]["id"], a["scope"]["project"]["id"]) for a in direct] == [
            (group["id"], project["id"])
        ]
        effective = c.get(
            f"{V3}/role_assignments", params={"user.id": user["id"], "effective": "", "include_names": ""}
        ).json()["role_assignments"]
        assert {a["role"]["name"] for a in effective} == {"member", "reader"}
        assert all(a["user"]["name"] == user["name"] for a in effective)
        assert effective[0]["links"]["membership"].endswith(member_url)
        projects = c.get(f"{V3}/users/{user['id']}/projects").json()["projects"]
        assert [p["id"] for p in projects] == [project["id"]]

        # Leaving the group ends the tokens that carried its roles.
        token = login.headers["X-Subject-Token"]
        assert c.delete(member_url).status_code == 204
        assert (
            httpx.get(f"{any_cloud.url}{V3}/users/{user['id']}", headers={"X-Auth-Token": token}).status_code
            == 401
        )
        _error(_login(any_cloud, creds, scope), 401)
        assert c.delete(grant).status_code == 204
        assert c.delete(f"{V3}/groups/{group['id']}").status_code == 204
        _error(c.get(f"{V3}/groups/{group['id']}"), 404)


def test_non_admins_cannot_manage_domains_or_groups(cloud: Cloud) -> None:
    demo = cloud.token("demo", DEMO_PASSWORD, "demo")
    with cloud.client(demo) as c:
        _error(c.post(f"{V3}/domains", json={"domain": {"name": "nope"}}), 403)
        _error(c.post(f"{V3}/groups", json={"group": {"name": "nope"}}), 403)
        _error(c.get(f"{V3}/groups"), 403)
        assert [d["id"] for d in c.get(f"{V3}/domains").json()["domains"]] == ["default"]
