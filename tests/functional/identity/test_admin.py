"""Keystone v3 admin API over HTTP: domains, projects, users, roles, assignments, catalog."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import DEMO_PASSWORD, Cloud

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
        ({"project": {"name": "p", "parent_id": "someproject"}}, 400),
        ({"project": {"name": "p", "is_domain": True}}, 400),
        ({"project": {"name": "p", "domain_id": "elsewhere"}}, 404),
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
