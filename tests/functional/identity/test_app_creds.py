"""Application credentials over HTTP, on SQLite and PostgreSQL: created by a user for the project
of their token, the secret shown once, authenticated with `application_credential` (by id, or
by name and user), roles a subset of the user's, restricted by default, revoked on delete."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Cloud
from tests.functional.compute.helpers import BACKENDS, either_cloud

V3 = "/identity/v3"


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


def _tenant(cloud: Cloud) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A new project and user holding `member` on it, and the user's project-scoped token."""
    name = f"ac-{uuid.uuid4().hex[:8]}"
    with cloud.client() as c:
        project = c.post(f"{V3}/projects", json={"project": {"name": name}}).json()["project"]
        user = c.post(f"{V3}/users", json={"user": {"name": name, "password": "pw"}}).json()["user"]
        member = c.get(f"{V3}/roles", params={"name": "member"}).json()["roles"][0]["id"]
        assert c.put(f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{member}").status_code == 204
    return project, user, cloud.token(name, "pw", name)


def _app_login(cloud: Cloud, cred: dict[str, Any], **extra: Any) -> httpx.Response:
    auth = {"identity": {"methods": ["application_credential"], "application_credential": cred}, **extra}
    return httpx.post(f"{cloud.url}{V3}/auth/tokens", json={"auth": auth})


def test_create_list_authenticate_and_delete(any_cloud: Cloud) -> None:
    project, user, token = _tenant(any_cloud)
    url = f"{V3}/users/{user['id']}/application_credentials"
    with any_cloud.client(token) as c:
        created = c.post(url, json={"application_credential": {"name": "ci", "description": "for CI"}})
        assert created.status_code == 201, created.text
        cred = created.json()["application_credential"]
        assert cred["secret"] and cred["project_id"] == project["id"] and cred["unrestricted"] is False
        assert sorted(r["name"] for r in cred["roles"]) == ["member", "reader"]
        assert c.post(url, json={"application_credential": {"name": "ci"}}).status_code == 409
        listed = c.get(url).json()["application_credentials"]
        assert [x["id"] for x in listed] == [cred["id"]] and "secret" not in listed[0]
        assert "secret" not in c.get(f"{url}/{cred['id']}").json()["application_credential"]

    by_id = _app_login(any_cloud, {"id": cred["id"], "secret": cred["secret"]})
    assert by_id.status_code == 201, by_id.text
    body = by_id.json()["token"]
    assert body["methods"] == ["application_credential"]
    assert body["project"]["id"] == project["id"] and body["user"]["id"] == user["id"]
    assert body["application_credential"] == {"id": cred["id"], "name": "ci", "restricted": True}
    assert sorted(r["name"] for r in body["roles"]) == ["member", "reader"]
    by_name = _app_login(
        any_cloud,
        {"name": "ci", "secret": cred["secret"], "user": {"name": user["name"], "domain": {"id": "default"}}},
    )
    assert by_name.status_code == 201, by_name.text
    assert _app_login(any_cloud, {"id": cred["id"], "secret": "wrong"}).status_code == 401
    assert _app_login(any_cloud, {"id": "nope", "secret": "wrong"}).status_code == 401
    assert _app_login(any_cloud, {"id": cred["id"]}).status_code == 400
    scoped = _app_login(
        any_cloud, {"id": cred["id"], "secret": cred["secret"]}, scope={"project": {"id": project["id"]}}
    )
    assert scoped.status_code == 401

    app_token = by_id.headers["X-Subject-Token"]
    with any_cloud.client(app_token) as c:
        # A restricted credential's token creates no credential, and is not rescoped.
        assert c.post(url, json={"application_credential": {"name": "again"}}).status_code == 403
        rescope = {"identity": {"methods": ["token"], "token": {"id": app_token}}, "scope": "unscoped"}
        assert httpx.post(f"{any_cloud.url}{V3}/auth/tokens", json={"auth": rescope}).status_code == 403
    with any_cloud.client(token) as c:
        assert c.delete(f"{url}/{cred['id']}").status_code == 204
        assert c.get(f"{url}/{cred['id']}").status_code == 404
    assert (
        httpx.get(f"{any_cloud.url}{V3}/users/{user['id']}", headers={"X-Auth-Token": app_token}).status_code
        == 401
    )
    assert _app_login(any_cloud, {"id": cred["id"], "secret": cred["secret"]}).status_code == 401


def test_roles_subset_secret_and_expiry(any_cloud: Cloud) -> None:
    project, user, token = _tenant(any_cloud)
    url = f"{V3}/users/{user['id']}/application_credentials"
    with any_cloud.client(token) as c:
        body = {
            "name": "ro",
            "secret": "my-secret",
            "roles": [{"name": "reader"}],
            "expires_at": "2999-01-01T00:00:00Z",
        }
        cred = c.post(url, json={"application_credential": body}).json()["application_credential"]
        assert cred["secret"] == "my-secret" and [r["name"] for r in cred["roles"]] == ["reader"]
        assert cred["expires_at"].startswith("2999-01-01T00:00:00")
        refused = c.post(url, json={"application_credential": {"name": "x", "roles": [{"name": "admin"}]}})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == 403
        past = c.post(
            url, json={"application_credential": {"name": "old", "expires_at": "2001-01-01T00:00:00"}}
        )
        assert past.status_code == 400
        assert (
            c.post(url, json={"application_credential": {"name": "bad", "expires_at": "soon"}}).status_code
            == 400
        )
        other = c.get(f"{V3}/users/{uuid.uuid4().hex}/application_credentials")
        assert other.status_code == 403
    login = _app_login(any_cloud, {"id": cred["id"], "secret": "my-secret"})
    assert login.status_code == 201
    assert [r["name"] for r in login.json()["token"]["roles"]] == ["reader"]

    # The user losing the role on the project ends what the credential can do.
    with any_cloud.client() as c:
        member = c.get(f"{V3}/roles", params={"name": "member"}).json()["roles"][0]["id"]
        assert c.delete(f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{member}").status_code == 204
    assert _app_login(any_cloud, {"id": cred["id"], "secret": "my-secret"}).status_code == 401


def test_roles_granted_after_the_token_count(cloud: Cloud) -> None:
    """tempest's test_create_application_credential_with_roles: a role granted on the project
    after the user's token was issued may be named (by id) in a credential's roles; a role the
    user does not hold is still refused."""
    project, user, token = _tenant(cloud)
    with cloud.client() as c:
        role = c.post(f"{V3}/roles", json={"role": {"name": f"ac-{uuid.uuid4().hex[:8]}"}}).json()["role"]
        other = c.post(f"{V3}/roles", json={"role": {"name": f"ac-{uuid.uuid4().hex[:8]}"}}).json()["role"]
        assert (
            c.put(f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}").status_code == 204
        )
    url = f"{V3}/users/{user['id']}/application_credentials"
    with cloud.client(token) as c:
        made = c.post(url, json={"application_credential": {"name": "r", "roles": [{"id": role["id"]}]}})
        assert made.status_code == 201, made.text
        cred = made.json()["application_credential"]
        assert [r["id"] for r in cred["roles"]] == [role["id"]]
        by_name = c.post(
            url, json={"application_credential": {"name": "n", "roles": [{"name": role["name"]}]}}
        )
        assert by_name.status_code == 201, by_name.text
        refused = c.post(url, json={"application_credential": {"name": "x", "roles": [{"id": other["id"]}]}})
        assert refused.status_code == 403 and other["id"] in refused.json()["error"]["message"]
    login = _app_login(cloud, {"id": cred["id"], "secret": cred["secret"]})
    assert login.status_code == 201, login.text
    body = login.json()["token"]
    assert body["project"]["id"] == project["id"] and body["roles"][0]["id"] == role["id"]


def test_a_domain_role_named_like_a_global_role(any_cloud: Cloud) -> None:
    """Role names in an application credential (and the token's roles it copies when none are
    given) name global roles: a domain-specific role also called `member`, even one the user
    holds, is never picked for it."""
    name = f"acd-{uuid.uuid4().hex[:8]}"
    with any_cloud.client() as c:
        domain = c.post(f"{V3}/domains", json={"domain": {"name": name}}).json()["domain"]
        local = c.post(f"{V3}/roles", json={"role": {"name": "member", "domain_id": domain["id"]}})
        assert local.status_code == 201, local.text
        local_id = local.json()["role"]["id"]
        project = c.post(f"{V3}/projects", json={"project": {"name": name, "domain_id": domain["id"]}})
        project_id = project.json()["project"]["id"]
        user = c.post(
            f"{V3}/users", json={"user": {"name": name, "password": "pw", "domain_id": domain["id"]}}
        )
        user_id = user.json()["user"]["id"]
        member = c.get(f"{V3}/roles", params={"name": "member"}).json()["roles"][0]["id"]
        for role_id in (member, local_id):
            assert c.put(f"{V3}/projects/{project_id}/users/{user_id}/roles/{role_id}").status_code == 204
    auth = {
        "identity": {"methods": ["password"], "password": {"user": {"id": user_id, "password": "pw"}}},
        "scope": {"project": {"id": project_id}},
    }
    issued = httpx.post(f"{any_cloud.url}{V3}/auth/tokens", json={"auth": auth})
    assert issued.status_code == 201, issued.text
    url = f"{V3}/users/{user_id}/application_credentials"
    with any_cloud.client(issued.headers["X-Subject-Token"]) as c:
        for body in ({"name": "all"}, {"name": "named", "roles": [{"name": "member"}]}):
            made = c.post(url, json={"application_credential": body})
            assert made.status_code == 201, made.text
            cred = made.json()["application_credential"]
            # (without roles: the token's, `member` and the `reader` it implies)
            assert {"id": member, "name": "member", "domain_id": None} in cred["roles"], cred["roles"]
            assert all(r["domain_id"] is None and r["id"] != local_id for r in cred["roles"])
            login = _app_login(any_cloud, {"id": cred["id"], "secret": cred["secret"]})
            assert login.status_code == 201, login.text
            assert member in [r["id"] for r in login.json()["token"]["roles"]]
