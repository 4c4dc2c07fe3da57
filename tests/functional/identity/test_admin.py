"""Keystone v3 admin API over HTTP: domains, projects, users, roles, assignments, catalog."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import DEMO_PASSWORD, Cloud
from tests.functional.identity import test_project_tags, test_project_tree

V3 = "/identity/v3"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create(c: httpx.Client, kind: str, **attrs: Any) -> dict[str, Any]:
    resp = c.post(f"{V3}/{kind}s", json={kind: attrs})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()[kind]
    return body


def _id_of(c: httpx.Client, kind: str, name: str) -> str:
    items = c.get(f"{V3}/{kind}s", params={"name": name}).json()[f"{kind}s"]
    assert len(items) == 1, items
    return str(items[0]["id"])


def _login(cloud: Cloud, user: str, password: str, project: str | None = None) -> httpx.Response:
    auth: dict[str, Any] = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
        }
    }
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return httpx.post(f"{cloud.url}{V3}/auth/tokens", json={"auth": auth})


def _assert_keystone_error(resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert error["code"] == status and error["message"] and error["title"]


# --- domains --------------------------------------------------------------------------------


def test_only_the_default_domain_exists(cloud: Cloud) -> None:
    with cloud.client() as c:
        listed = c.get(f"{V3}/domains", params={"name": "Default"}).json()
        assert [d["id"] for d in listed["domains"]] == ["default"]
        assert listed["links"]["next"] is None and listed["links"]["previous"] is None
        assert c.get(f"{V3}/domains", params={"name": "Other"}).json()["domains"] == []
        domain = c.get(f"{V3}/domains/default").json()["domain"]
        assert domain["name"] == "Default" and domain["enabled"] is True
        assert domain["links"]["self"] == f"{cloud.url}{V3}/domains/default"
        _assert_keystone_error(c.get(f"{V3}/domains/nope"), 404)


# --- projects -------------------------------------------------------------------------------


def test_project_crud(cloud: Cloud) -> None:
    name = _unique("proj")
    with cloud.client() as c:
        project = _create(c, "project", name=name, description="first")
        assert project["domain_id"] == "default" and project["enabled"] is True
        assert project["links"]["self"] == f"{cloud.url}{V3}/projects/{project['id']}"
        url = f"{V3}/projects/{project['id']}"

        assert c.get(url).json()["project"]["description"] == "first"
        listed = c.get(f"{V3}/projects", params={"name": name}).json()
        assert [p["id"] for p in listed["projects"]] == [project["id"]]
        assert listed["links"]["self"].startswith(f"{cloud.url}{V3}/projects")

        resp = c.patch(url, json={"project": {"description": "second", "enabled": False}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["project"]["description"] == "second"
        assert resp.json()["project"]["enabled"] is False
        disabled = c.get(f"{V3}/projects", params={"enabled": "false"}).json()["projects"]
        assert [p["name"] for p in disabled] == [name]

        assert c.delete(url).status_code == 204
        _assert_keystone_error(c.get(url), 404)
        _assert_keystone_error(c.delete(url), 404)
        _assert_keystone_error(c.patch(url, json={"project": {"description": "x"}}), 404)


def test_project_name_conflicts_are_409(cloud: Cloud) -> None:
    with cloud.client() as c:
        _assert_keystone_error(c.post(f"{V3}/projects", json={"project": {"name": "demo"}}), 409)
        other = _create(c, "project", name=_unique("proj"))
        resp = c.patch(f"{V3}/projects/{other['id']}", json={"project": {"name": "demo"}})
        _assert_keystone_error(resp, 409)
        # Renaming to its own name is not a conflict.
        resp = c.patch(f"{V3}/projects/{other['id']}", json={"project": {"name": other["name"]}})
        assert resp.status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"project": {}}, 400),
        ({"project": {"name": ""}}, 400),
        ({"project": {"name": "   "}}, 400),
        ({"project": {"name": "x" * 65}}, 400),
        ({"project": {"name": 42}}, 400),
        ({"project": {"name": "p", "enabled": "yes"}}, 400),
        ({"project": {"name": "p", "is_domain": True, "domain_id": "default"}}, 400),
        ({"project": {"name": "p", "domain_id": "elsewhere"}}, 404),
        ({"project": {"name": "p", "parent_id": "someproject"}}, 404),
    ],
)
def test_bad_project_bodies(cloud: Cloud, body: dict[str, Any], status: int) -> None:
    with cloud.client() as c:
        _assert_keystone_error(c.post(f"{V3}/projects", json=body), status)


@pytest.mark.parametrize(
    "update",
    [{}, {"name": None}, {"enabled": "false"}, {"domain_id": "elsewhere"}, {"name": ""}],
)
def test_bad_project_updates(cloud: Cloud, update: dict[str, Any]) -> None:
    with cloud.client() as c:
        demo = _id_of(c, "project", "demo")
        _assert_keystone_error(c.patch(f"{V3}/projects/{demo}", json={"project": update}), 400)
        assert c.get(f"{V3}/projects/{demo}").json()["project"]["name"] == "demo"


def test_malformed_json_is_400(cloud: Cloud) -> None:
    with cloud.client() as c:
        resp = c.post(f"{V3}/projects", content=b"{nope", headers={"Content-Type": "application/json"})
    _assert_keystone_error(resp, 400)


# --- users ----------------------------------------------------------------------------------


def test_user_crud_and_password(cloud: Cloud) -> None:
    name = _unique("user")
    with cloud.client() as c:
        demo = _id_of(c, "project", "demo")
        user = _create(
            c, "user", name=name, password="pw-one", default_project_id=demo, email="u@example.com"
        )
        assert "password" not in user and "password_hash" not in user
        assert user["default_project_id"] == demo and user["email"] == "u@example.com"
        assert user["domain_id"] == "default" and user["enabled"] is True
        assert user["links"]["self"] == f"{cloud.url}{V3}/users/{user['id']}"
        url = f"{V3}/users/{user['id']}"

        assert c.get(url).json()["user"]["name"] == name
        assert [u["id"] for u in c.get(f"{V3}/users", params={"name": name}).json()["users"]] == [user["id"]]
        assert c.get(f"{V3}/users", params={"domain_id": "elsewhere"}).json()["users"] == []

        # Unscoped login works with no role anywhere.
        assert _login(cloud, name, "pw-one").status_code == 201
        resp = c.patch(url, json={"user": {"password": "pw-two", "description": "renamed"}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["user"]["description"] == "renamed"
        assert _login(cloud, name, "pw-one").status_code == 401
        assert _login(cloud, name, "pw-two").status_code == 201

        assert c.patch(url, json={"user": {"enabled": False}}).json()["user"]["enabled"] is False
        assert _login(cloud, name, "pw-two").status_code == 401

        assert c.delete(url).status_code == 204
        _assert_keystone_error(c.get(url), 404)
        _assert_keystone_error(c.delete(url), 404)


def test_user_conflicts_and_bad_input(cloud: Cloud) -> None:
    with cloud.client() as c:
        _assert_keystone_error(c.post(f"{V3}/users", json={"user": {"name": "demo", "password": "x"}}), 409)
        other = _create(c, "user", name=_unique("user"))
        _assert_keystone_error(c.patch(f"{V3}/users/{other['id']}", json={"user": {"name": "demo"}}), 409)
        _assert_keystone_error(c.post(f"{V3}/users", json={"user": {"password": "x"}}), 400)
        _assert_keystone_error(c.post(f"{V3}/users", json={"user": {"name": "n", "enabled": 1}}), 400)
        missing_project = {"user": {"name": _unique("user"), "default_project_id": "nope"}}
        _assert_keystone_error(c.post(f"{V3}/users", json=missing_project), 404)


def test_change_own_password(cloud: Cloud) -> None:
    with cloud.client() as c:
        demo_id = _id_of(c, "user", "demo")
    url = f"{cloud.url}{V3}/users/{demo_id}/password"
    wrong = {"user": {"original_password": "not-it", "password": "new-secret"}}
    _assert_keystone_error(httpx.post(url, json=wrong), 401)
    right = {"user": {"original_password": DEMO_PASSWORD, "password": "new-secret"}}
    assert httpx.post(url, json=right).status_code == 204
    assert _login(cloud, "demo", DEMO_PASSWORD, "demo").status_code == 401
    assert _login(cloud, "demo", "new-secret", "demo").status_code == 201


# --- roles ----------------------------------------------------------------------------------


def test_role_crud(cloud: Cloud) -> None:
    name = _unique("role")
    with cloud.client() as c:
        role = _create(c, "role", name=name, description="custom")
        assert role["domain_id"] is None and role["options"] == {}
        url = f"{V3}/roles/{role['id']}"
        assert [r["id"] for r in c.get(f"{V3}/roles", params={"name": name}).json()["roles"]] == [role["id"]]
        resp = c.patch(url, json={"role": {"name": name + "-x"}})
        assert resp.status_code == 200 and resp.json()["role"]["name"] == name + "-x"
        _assert_keystone_error(c.post(f"{V3}/roles", json={"role": {"name": "member"}}), 409)
        _assert_keystone_error(c.patch(url, json={"role": {"name": "reader"}}), 409)
        assert c.delete(url).status_code == 204
        _assert_keystone_error(c.get(url), 404)


def test_bootstrap_roles_are_immutable(cloud: Cloud) -> None:
    with cloud.client() as c:
        admin_role = _id_of(c, "role", "admin")
        assert c.get(f"{V3}/roles/{admin_role}").json()["role"]["options"] == {"immutable": True}
        _assert_keystone_error(c.delete(f"{V3}/roles/{admin_role}"), 403)
        _assert_keystone_error(c.patch(f"{V3}/roles/{admin_role}", json={"role": {"name": "boss"}}), 403)
        assert c.get(f"{V3}/roles/{admin_role}").json()["role"]["name"] == "admin"


# --- role assignments -----------------------------------------------------------------------


def test_grant_check_list_and_revoke(cloud: Cloud) -> None:
    with cloud.client() as c:
        project = _create(c, "project", name=_unique("proj"))
        user = _create(c, "user", name=_unique("user"), password="pw")
        member = _id_of(c, "role", "member")
        grant = f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{member}"

        assert c.head(grant).status_code == 404
        assert c.put(grant).status_code == 204
        assert c.put(grant).status_code == 204  # idempotent
        assert c.head(grant).status_code == 204
        assert c.get(grant).status_code == 204
        assert _login(cloud, user["name"], "pw", project["name"]).status_code == 201

        roles = c.get(f"{V3}/projects/{project['id']}/users/{user['id']}/roles").json()["roles"]
        assert [r["name"] for r in roles] == ["member"]
        projects = c.get(f"{V3}/users/{user['id']}/projects").json()["projects"]
        assert [p["id"] for p in projects] == [project["id"]]

        listed = c.get(f"{V3}/role_assignments", params={"user.id": user["id"]}).json()
        assert listed["role_assignments"] == [
            {
                "role": {"id": member},
                "scope": {"project": {"id": project["id"]}},
                "user": {"id": user["id"]},
                "links": {"assignment": f"{cloud.url}{grant}"},
            }
        ]
        named = c.get(
            f"{V3}/role_assignments",
            params={"scope.project.id": project["id"], "role.id": member, "include_names": "1"},
        ).json()["role_assignments"]
        assert len(named) == 1
        assert named[0]["user"] == {
            "id": user["id"],
            "name": user["name"],
            "domain": {"id": "default", "name": "Default"},
        }
        assert named[0]["scope"]["project"]["name"] == project["name"]
        assert named[0]["role"]["name"] == "member"
        # Filters on groups or domains match nothing here.
        assert c.get(f"{V3}/role_assignments", params={"group.id": "g"}).json()["role_assignments"] == []

        assert c.delete(grant).status_code == 204
        _assert_keystone_error(c.delete(grant), 404)
        assert c.head(grant).status_code == 404
        assert _login(cloud, user["name"], "pw", project["name"]).status_code == 401


@pytest.mark.parametrize("missing", ["project", "user", "role"])
def test_grant_to_missing_target_is_404(cloud: Cloud, missing: str) -> None:
    with cloud.client() as c:
        ids = {
            "project": _id_of(c, "project", "demo"),
            "user": _id_of(c, "user", "demo"),
            "role": _id_of(c, "role", "reader"),
        }
        ids[missing] = "does-not-exist"
        resp = c.put(f"{V3}/projects/{ids['project']}/users/{ids['user']}/roles/{ids['role']}")
    _assert_keystone_error(resp, 404)
    assert "does-not-exist" in resp.json()["error"]["message"]


def test_deleting_user_or_project_removes_assignments(cloud: Cloud) -> None:
    with cloud.client() as c:
        project = _create(c, "project", name=_unique("proj"))
        user = _create(c, "user", name=_unique("user"))
        reader = _id_of(c, "role", "reader")
        demo_user = _id_of(c, "user", "demo")
        assert c.put(f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{reader}").status_code == 204
        assert c.put(f"{V3}/projects/{project['id']}/users/{demo_user}/roles/{reader}").status_code == 204
        assert c.delete(f"{V3}/users/{user['id']}").status_code == 204
        rows = c.get(f"{V3}/role_assignments", params={"scope.project.id": project["id"]}).json()
        assert [r["user"]["id"] for r in rows["role_assignments"]] == [demo_user]
        assert c.delete(f"{V3}/projects/{project['id']}").status_code == 204
        rows = c.get(f"{V3}/role_assignments", params={"user.id": demo_user}).json()["role_assignments"]
        assert project["id"] not in {r["scope"]["project"]["id"] for r in rows}


# --- policy ---------------------------------------------------------------------------------


def test_non_admin_reads_only_their_own(cloud: Cloud) -> None:
    with cloud.client() as admin:
        admin_user = _id_of(admin, "user", "admin")
        admin_project = _id_of(admin, "project", "admin")
        demo_user = _id_of(admin, "user", "demo")
        demo_project = _id_of(admin, "project", "demo")
    with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as c:
        assert c.get(f"{V3}/users/{demo_user}").json()["user"]["name"] == "demo"
        assert c.get(f"{V3}/projects/{demo_project}").json()["project"]["name"] == "demo"
        mine = c.get(f"{V3}/users/{demo_user}/projects").json()["projects"]
        assert [p["name"] for p in mine] == ["demo"]
        own = c.get(f"{V3}/role_assignments", params={"user.id": demo_user}).json()["role_assignments"]
        assert {r["scope"]["project"]["id"] for r in own} == {demo_project}
        assert c.get(f"{V3}/domains/default").status_code == 200
        assert c.get(f"{V3}/regions").status_code == 200
        assert c.get(f"{V3}/roles").status_code == 200

        for path in (
            f"{V3}/users",
            f"{V3}/projects",
            f"{V3}/users/{admin_user}",
            f"{V3}/users/does-not-exist",
            f"{V3}/projects/{admin_project}",
            f"{V3}/projects/does-not-exist",
            f"{V3}/users/{admin_user}/projects",
            f"{V3}/role_assignments",
            f"{V3}/services",
            f"{V3}/endpoints",
        ):
            _assert_keystone_error(c.get(path), 403)

        member = c.get(f"{V3}/roles", params={"name": "member"}).json()["roles"][0]["id"]
        grant = f"{V3}/projects/{admin_project}/users/{demo_user}/roles/{member}"
        for resp in (
            c.post(f"{V3}/projects", json={"project": {"name": "mine"}}),
            c.patch(f"{V3}/projects/{demo_project}", json={"project": {"description": "x"}}),
            c.delete(f"{V3}/projects/{demo_project}"),
            c.post(f"{V3}/users", json={"user": {"name": "sneaky"}}),
            c.patch(f"{V3}/users/{demo_user}", json={"user": {"enabled": True}}),
            c.delete(f"{V3}/users/{admin_user}"),
            c.post(f"{V3}/roles", json={"role": {"name": "boss"}}),
            c.put(grant),
        ):
            _assert_keystone_error(resp, 403)
    with cloud.client() as admin:
        assert admin.head(grant).status_code == 404


def test_admin_api_requires_a_token(cloud: Cloud) -> None:
    _assert_keystone_error(httpx.get(f"{cloud.url}{V3}/projects"), 401)
    _assert_keystone_error(httpx.post(f"{cloud.url}{V3}/users", json={"user": {"name": "x"}}), 401)


# --- catalog --------------------------------------------------------------------------------


def test_services_endpoints_regions_mirror_the_catalog(cloud: Cloud) -> None:
    with cloud.client() as c:
        services = c.get(f"{V3}/services").json()["services"]
        assert {"identity", "compute", "image"} <= {s["type"] for s in services}
        compute = c.get(f"{V3}/services", params={"type": "compute"}).json()["services"]
        assert len(compute) == 1 and compute[0]["enabled"] is True
        assert c.get(f"{V3}/services/{compute[0]['id']}").json()["service"]["type"] == "compute"
        _assert_keystone_error(c.get(f"{V3}/services/nope"), 404)

        endpoints = c.get(
            f"{V3}/endpoints", params={"service_id": compute[0]["id"], "interface": "public"}
        ).json()["endpoints"]
        assert len(endpoints) == 1
        endpoint = endpoints[0]
        assert endpoint["url"] == f"{cloud.url}/compute/v2.1"
        assert endpoint["region_id"] == endpoint["region"] == "RegionOne"
        assert c.get(f"{V3}/endpoints/{endpoint['id']}").json()["endpoint"]["url"] == endpoint["url"]
        _assert_keystone_error(c.get(f"{V3}/endpoints/nope"), 404)

        assert [r["id"] for r in c.get(f"{V3}/regions").json()["regions"]] == ["RegionOne"]
        assert c.get(f"{V3}/regions/RegionOne").json()["region"]["parent_region_id"] is None
        _assert_keystone_error(c.get(f"{V3}/regions/RegionTwo"), 404)

        token = cloud.token()
        catalog = c.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": token}).json()["token"]["catalog"]
        assert {s["id"] for s in catalog} == {s["id"] for s in services}


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_crud_and_conflicts_on_postgres(pg_cloud: Cloud) -> None:
    with pg_cloud.client() as c:
        project = _create(c, "project", name="pg-proj")
        _assert_keystone_error(c.post(f"{V3}/projects", json={"project": {"name": "pg-proj"}}), 409)
        user = _create(c, "user", name="pg-user", password="pw", default_project_id=project["id"])
        member = _id_of(c, "role", "member")
        assert c.put(f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{member}").status_code == 204
        assert _login(pg_cloud, "pg-user", "pw", "pg-proj").status_code == 201
        assert c.delete(f"{V3}/projects/{project['id']}").status_code == 204
        assert c.delete(f"{V3}/users/{user['id']}").status_code == 204
        assert (
            c.get(f"{V3}/role_assignments", params={"user.id": user["id"]}).json()["role_assignments"] == []
        )


@pytest.mark.postgres
def test_project_extra_attributes_on_postgres(pg_cloud: Cloud) -> None:
    """Keystone's extra project attributes (any JSON value) kept in the JSON column on PostgreSQL,
    merged by an update, shown by show and list."""
    with pg_cloud.client() as c:
        project = _create(c, "project", name="pg-extra", tier="gold", quota={"cores": 4})
        assert (project["tier"], project["quota"]) == ("gold", {"cores": 4})
        patched = c.patch(f"{V3}/projects/{project['id']}", json={"project": {"tier": None, "rank": 2}})
        assert patched.status_code == 200
        shown = c.get(f"{V3}/projects/{project['id']}").json()["project"]
        assert (shown["tier"], shown["quota"], shown["rank"]) == (None, {"cores": 4}, 2)
        [listed] = c.get(f"{V3}/projects", params={"name": "pg-extra"}).json()["projects"]
        assert listed == shown


def test_users_extra_attributes_are_kept(cloud: Cloud) -> None:
    """Keystone keeps the attributes it does not know (`extra`) and shows them as given."""
    with cloud.client() as c:
        project = _create(c, "project", name=_unique("xp"))
        user = _create(
            c, "user", name=_unique("xu"), project_id=project["id"], email="u@example.org", color="blue"
        )
        assert (user["project_id"], user["email"], user["color"]) == (project["id"], "u@example.org", "blue")
        url = f"{V3}/users/{user['id']}"
        shown = c.get(url).json()["user"]
        assert shown["project_id"] == project["id"] and shown["color"] == "blue"
        listed = [u for u in c.get(f"{V3}/users").json()["users"] if u["id"] == user["id"]]
        assert listed == [shown]
        resp = c.patch(url, json={"user": {"color": "red", "team": {"name": "ops"}, "description": "d"}})
        assert resp.status_code == 200, resp.text
        updated = resp.json()["user"]
        assert (updated["color"], updated["team"], updated["project_id"]) == (
            "red",
            {"name": "ops"},
            project["id"],
        )
        assert updated["description"] == "d"
        assert c.get(url).json()["user"] == updated
        # Keystone's own attributes are never overridden by extra ones
        resp = c.patch(url, json={"user": {"id": "other", "links": {}}})
        assert resp.status_code == 200 and resp.json()["user"]["id"] == user["id"]


def test_domain_specific_roles(cloud: Cloud) -> None:
    """Keystone's domain-specific roles: named within their domain, listed with `domain_id`
    only, granted only within their domain, never in a token or an effective listing
    themselves but lending what they imply; a global role cannot imply one."""
    with cloud.client() as c:
        domain = _create(c, "domain", name=_unique("drd"))
        other = _create(c, "domain", name=_unique("drd"))
        d = domain["id"]
        role = _create(c, "role", name="member", domain_id=d)  # a global role's name is free here
        assert role["domain_id"] == d and role["options"] == {}
        _assert_keystone_error(c.post(f"{V3}/roles", json={"role": {"name": "member", "domain_id": d}}), 409)
        _assert_keystone_error(
            c.post(f"{V3}/roles", json={"role": {"name": "x", "domain_id": "nowhere"}}), 404
        )
        assert [r["id"] for r in c.get(f"{V3}/roles", params={"domain_id": d}).json()["roles"]] == [
            role["id"]
        ]
        assert role["id"] not in [r["id"] for r in c.get(f"{V3}/roles").json()["roles"]]
        # inference: domain → domain (also across domains) and domain → global; never global → domain
        elsewhere = _create(c, "role", name=_unique("dr"), domain_id=other["id"])
        assert c.put(f"{V3}/roles/{role['id']}/implies/{elsewhere['id']}").status_code == 201
        assert c.put(f"{V3}/roles/{role['id']}/implies/{_id_of(c, 'role', 'reader')}").status_code == 201
        _assert_keystone_error(c.put(f"{V3}/roles/{_id_of(c, 'role', 'reader')}/implies/{role['id']}"), 403)
        # grants: within the domain only
        project = _create(c, "project", name=_unique("drp"), domain_id=d)
        user = _create(c, "user", name=_unique("dru"), domain_id=d, password="pw")
        grant = f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}"
        assert c.put(grant).status_code == 204
        _assert_keystone_error(
            c.put(f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{elsewhere['id']}"), 403
        )
        _assert_keystone_error(c.put(f"{V3}/system/users/{user['id']}/roles/{role['id']}"), 403)
        params = {"user.id": user["id"], "scope.project.id": project["id"], "effective": "true"}
        rows = c.get(f"{V3}/role_assignments", params=params).json()["role_assignments"]
        assert [r["role"]["id"] for r in rows] == [_id_of(c, "role", "reader")]
        direct = c.get(f"{V3}/role_assignments", params={"user.id": user["id"]}).json()["role_assignments"]
        assert [r["role"]["id"] for r in direct] == [role["id"]]
        auth = {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"id": user["id"], "password": "pw"}},
            },
            "scope": {"project": {"id": project["id"]}},
        }
        token = httpx.post(f"{cloud.url}{V3}/auth/tokens", json={"auth": auth})
        assert token.status_code == 201, token.text
        assert [r["name"] for r in token.json()["token"]["roles"]] == ["reader"]
        # deleting the domain deletes its roles
        assert c.delete(f"{V3}/roles/{role['id']}").status_code == 204
        assert c.get(f"{V3}/roles", params={"domain_id": d}).json()["roles"] == []
        assert c.patch(f"{V3}/domains/{other['id']}", json={"domain": {"enabled": False}}).status_code == 200
        assert c.delete(f"{V3}/domains/{other['id']}").status_code == 204
        _assert_keystone_error(c.get(f"{V3}/roles/{elsewhere['id']}"), 404)


def test_bootstrap_makes_manager_and_service(cloud: Cloud) -> None:
    """keystone-manage bootstrap (2024.1 on): admin → manager → member → reader, and `service`."""
    with cloud.client() as c:
        for name in ("manager", "service"):
            role = c.get(f"{V3}/roles/{_id_of(c, 'role', name)}").json()["role"]
            assert role["options"] == {"immutable": True}
        implied = c.get(f"{V3}/roles/{_id_of(c, 'role', 'manager')}/implies").json()["role_inference"]
        assert [r["name"] for r in implied["implies"]] == ["member"]
        assert (
            c.get(f"{V3}/roles/{_id_of(c, 'role', 'service')}/implies").json()["role_inference"]["implies"]
            == []
        )
        admin_implies = c.get(f"{V3}/roles/{_id_of(c, 'role', 'admin')}/implies").json()["role_inference"]
        assert [r["name"] for r in admin_implies["implies"]] == ["manager"]


def test_projects_acting_as_domains(cloud: Cloud) -> None:
    """Keystone's `is_domain` projects: a domain made, read, listed, updated and deleted through
    the projects API (and seen by the domains API); regular listings leave them out."""
    name = _unique("isdom")
    with cloud.client() as c:
        made = _create(c, "project", name=name, is_domain=True, description="d")
        assert (made["is_domain"], made["domain_id"], made["parent_id"]) == (True, None, None)
        url = f"{V3}/projects/{made['id']}"
        assert c.get(f"{V3}/domains/{made['id']}").json()["domain"]["name"] == name
        assert c.get(url).json()["project"] == made
        listed = c.get(f"{V3}/projects", params={"is_domain": "true"}).json()["projects"]
        assert made in listed and "default" in [p["id"] for p in listed]
        assert made["id"] not in [p["id"] for p in c.get(f"{V3}/projects").json()["projects"]]
        # the other filters apply to the domains too (none has a domain, a parent or tags)
        by_name = c.get(f"{V3}/projects", params={"is_domain": "true", "name": name}).json()["projects"]
        assert by_name == [made]
        for params in (
            {"enabled": "false"},
            {"domain_id": "default"},
            {"parent_id": "default"},
            {"tags": "t"},
        ):
            found = c.get(f"{V3}/projects", params={"is_domain": "true", "name": name, **params})
            assert found.status_code == 200 and found.json()["projects"] == [], params
        untagged = c.get(f"{V3}/projects", params={"is_domain": "true", "name": name, "not-tags-any": "t"})
        assert untagged.json()["projects"] == [made]
        inside = _create(c, "project", name="inside", domain_id=made["id"])
        assert inside["parent_id"] == made["id"]
        # A domain has no tags and keeps no extras: refused, never dropped.
        for body in ({"tags": ["t"]}, {"color": "red"}):
            refused = c.post(
                f"{V3}/projects", json={"project": {"name": _unique("isdom"), "is_domain": True, **body}}
            )
            _assert_keystone_error(refused, 400)
            patched = c.patch(url, json={"project": body})
            _assert_keystone_error(patched, 400)
            wanted = (
                "Domain tags are not supported." if "tags" in body else "no additional attributes: color."
            )
            assert (
                wanted in refused.json()["error"]["message"] and wanted in patched.json()["error"]["message"]
            )
        # Neither domain, parent nor kind changes; the values shown may be sent back.
        _assert_keystone_error(c.patch(url, json={"project": {"domain_id": "default"}}), 400)
        _assert_keystone_error(c.patch(url, json={"project": {"parent_id": "default"}}), 403)
        _assert_keystone_error(c.patch(url, json={"project": {"is_domain": False}}), 400)
        same = {"domain_id": None, "parent_id": None, "is_domain": True, "description": "d2"}
        assert c.patch(url, json={"project": same}).json()["project"]["description"] == "d2"
        _assert_keystone_error(
            c.patch(f"{V3}/projects/{inside['id']}", json={"project": {"is_domain": True}}), 400
        )
        # Tags of a domain: none to read, none to set.
        assert c.get(f"{url}/tags").json()["tags"] == []
        _assert_keystone_error(c.get(f"{url}/tags/t"), 404)
        for resp in (
            c.put(f"{url}/tags", json={"tags": ["t"]}),
            c.put(f"{url}/tags/t"),
            c.delete(f"{url}/tags"),
        ):
            _assert_keystone_error(resp, 400)
            assert resp.json()["error"]["message"] == "Domain tags are not supported."
        assert c.get(url).json()["project"]["tags"] == []
        _assert_keystone_error(c.delete(url), 403)  # enabled: disable it first, as a domain
        resp = c.patch(url, json={"project": {"enabled": False}})
        assert resp.status_code == 200 and resp.json()["project"]["enabled"] is False
        assert c.delete(url).status_code == 204
        _assert_keystone_error(c.get(f"{V3}/domains/{made['id']}"), 404)
        _assert_keystone_error(c.get(f"{V3}/projects/{inside['id']}"), 404)


def test_tags_trees_extras_and_domain_roles_on_postgres(pg_cloud: Cloud) -> None:
    """The JSON columns (tags, extra) and the (name, domain_id) uniqueness of roles on PostgreSQL."""
    test_project_tags.test_tags_sub_resource(pg_cloud)
    test_project_tags.test_list_filters(pg_cloud)
    test_project_tree.test_a_role_inherited_to_a_projects_subtree(pg_cloud)
    test_users_extra_attributes_are_kept(pg_cloud)
    test_domain_specific_roles(pg_cloud)
    test_projects_acting_as_domains(pg_cloud)
