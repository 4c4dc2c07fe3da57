"""System scope over HTTP, on SQLite and PostgreSQL: `scope: {system: {all: true}}`, system role
assignments of users and groups, the bootstrap admin as system admin, and Keystone's default
policies for a system reader (reads everything identity holds, writes nothing)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, Cloud
from tests.functional.compute.helpers import BACKENDS, either_cloud

V3 = "/identity/v3"
SYSTEM = {"system": {"all": True}}


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


def _login(cloud: Cloud, name: str, password: str, scope: Any) -> httpx.Response:
    user = {"name": name, "domain": {"id": "default"}, "password": password}
    auth = {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}
    return httpx.post(f"{cloud.url}{V3}/auth/tokens", json={"auth": auth})


def _role_id(c: httpx.Client, name: str) -> str:
    return str(c.get(f"{V3}/roles", params={"name": name}).json()["roles"][0]["id"])


def test_bootstrap_admin_is_system_admin(any_cloud: Cloud) -> None:
    resp = _login(any_cloud, "admin", ADMIN_PASSWORD, SYSTEM)
    assert resp.status_code == 201, resp.text
    token = resp.json()["token"]
    assert token["system"] == {"all": True} and "project" not in token and "domain" not in token
    assert sorted(r["name"] for r in token["roles"]) == ["admin", "manager", "member", "reader"]
    assert token["catalog"]
    with any_cloud.client(resp.headers["X-Subject-Token"]) as c:
        project = c.post(f"{V3}/projects", json={"project": {"name": f"sys-{uuid.uuid4().hex[:8]}"}})
        assert project.status_code == 201  # system admin is admin
        validated = c.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": resp.headers["X-Subject-Token"]})
        assert validated.json()["token"]["system"] == {"all": True}
    assert _login(any_cloud, "demo", DEMO_PASSWORD, SYSTEM).status_code == 401
    assert _login(any_cloud, "admin", ADMIN_PASSWORD, {"system": {"all": False}}).status_code == 400


def test_system_reader_reads_but_does_not_write(any_cloud: Cloud) -> None:
    name = f"auditor-{uuid.uuid4().hex[:8]}"
    with any_cloud.client() as c:
        user = c.post(f"{V3}/users", json={"user": {"name": name, "password": "pw"}}).json()["user"]
        reader = _role_id(c, "reader")
        grant = f"{V3}/system/users/{user['id']}/roles/{reader}"
        assert c.head(grant).status_code == 404
        assert c.put(grant).status_code == 204
        assert c.head(grant).status_code == 204
        assert [r["name"] for r in c.get(f"{V3}/system/users/{user['id']}/roles").json()["roles"]] == [
            "reader"
        ]
        rows = c.get(f"{V3}/role_assignments", params={"scope.system": "all", "user.id": user["id"]}).json()
        assert [(a["scope"], a["role"]["id"]) for a in rows["role_assignments"]] == [
            ({"system": {"all": True}}, reader)
        ]

    login = _login(any_cloud, name, "pw", SYSTEM)
    assert login.status_code == 201, login.text
    assert [r["name"] for r in login.json()["token"]["roles"]] == ["reader"]
    token = login.headers["X-Subject-Token"]
    with any_cloud.client(token) as c:
        assert c.get(f"{V3}/users").status_code == 200
        assert c.get(f"{V3}/projects").status_code == 200
        assert c.get(f"{V3}/role_assignments").status_code == 200
        denied = c.post(f"{V3}/projects", json={"project": {"name": "nope"}})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == 403
        assert c.put(f"{V3}/system/users/{user['id']}/roles/{reader}").status_code == 403

    with any_cloud.client() as c:
        assert c.delete(f"{V3}/system/users/{user['id']}/roles/{reader}").status_code == 204
    assert httpx.get(f"{any_cloud.url}{V3}/users", headers={"X-Auth-Token": token}).status_code == 401
    assert _login(any_cloud, name, "pw", SYSTEM).status_code == 401


def test_group_system_grant(any_cloud: Cloud) -> None:
    name = f"g-{uuid.uuid4().hex[:8]}"
    with any_cloud.client() as c:
        user = c.post(f"{V3}/users", json={"user": {"name": name, "password": "pw"}}).json()["user"]
        group = c.post(f"{V3}/groups", json={"group": {"name": name}}).json()["group"]
        assert c.put(f"{V3}/groups/{group['id']}/users/{user['id']}").status_code == 204
        member = _role_id(c, "member")
        assert c.put(f"{V3}/system/groups/{group['id']}/roles/{member}").status_code == 204
        assert [r["id"] for r in c.get(f"{V3}/system/groups/{group['id']}/roles").json()["roles"]] == [member]
    login = _login(any_cloud, name, "pw", SYSTEM)
    assert login.status_code == 201, login.text
    assert sorted(r["name"] for r in login.json()["token"]["roles"]) == ["member", "reader"]


def test_system_admin_in_the_other_services(cloud: Cloud) -> None:
    """A system-scoped admin reads every project's resources; what needs a project (creating a
    server) is a clear 4xx, never a 500."""
    token = _login(cloud, "admin", ADMIN_PASSWORD, SYSTEM).headers["X-Subject-Token"]
    with cloud.client(token) as c:
        assert c.get("/compute/v2.1/servers/detail", params={"all_tenants": "1"}).status_code == 200
        assert c.get("/compute/v2.1/flavors").status_code == 200
        assert c.get("/image/v2/images").status_code == 200
        assert c.get("/networking/v2.0/networks").status_code == 200
        server = c.post(
            "/compute/v2.1/servers",
            json={"server": {"name": "s", "flavorRef": "1", "imageRef": str(uuid.uuid4())}},
        )
        assert 400 <= server.status_code < 500, server.text
        keypair = c.get("/compute/v2.1/os-keypairs")
        assert keypair.status_code < 500, keypair.text
