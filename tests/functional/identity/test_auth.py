from __future__ import annotations

import httpx

from tests.conftest import Cloud


def test_version_discovery(cloud: Cloud) -> None:
    resp = httpx.get(f"{cloud.url}/identity")
    assert resp.status_code == 300
    value = resp.json()["versions"]["values"][0]
    assert value["id"].startswith("v3")
    assert value["links"][0]["href"] == f"{cloud.url}/identity/v3/"


def test_password_token_scoped_with_catalog(cloud: Cloud) -> None:
    token = cloud.token()
    with cloud.client(token) as c:
        resp = c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 200
    body = resp.json()["token"]
    assert body["project"]["name"] == "admin"
    assert [r["name"] for r in body["roles"]] == ["admin", "manager", "member", "reader"]  # the implied chain
    assert body["expires_at"].endswith("Z")
    types = {s["type"] for s in body["catalog"]}
    assert {"identity", "compute", "image"} <= types


def test_bad_password_is_401_in_keystone_format(cloud: Cloud) -> None:
    resp = httpx.post(
        f"{cloud.url}/identity/v3/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "nope"}},
                }
            }
        },
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == 401


def test_malformed_json_is_400(cloud: Cloud) -> None:
    resp = httpx.post(
        f"{cloud.url}/identity/v3/auth/tokens",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == 400


def test_revoked_token_stops_working(cloud: Cloud) -> None:
    token = cloud.token()
    other = cloud.token()
    with cloud.client(other) as c:
        assert c.delete("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).status_code == 204
        assert c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).status_code == 404
    with cloud.client(token) as c:
        assert c.get("/identity/v3/auth/catalog").status_code == 401


def test_missing_token_is_401(cloud: Cloud) -> None:
    resp = httpx.get(f"{cloud.url}/identity/v3/auth/catalog")
    assert resp.status_code == 401


def test_revoking_a_role_or_deleting_a_user_invalidates_their_tokens(cloud: Cloud) -> None:
    with cloud.client() as admin:
        project = admin.post("/identity/v3/projects", json={"project": {"name": "p-revoke"}}).json()[
            "project"
        ]
        user = admin.post(
            "/identity/v3/users", json={"user": {"name": "u-revoke", "password": "pw-123456"}}
        ).json()["user"]
        role = admin.get("/identity/v3/roles", params={"name": "member"}).json()["roles"][0]
        grant = f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{role['id']}"
        assert admin.put(grant).status_code == 204
        token = cloud.token("u-revoke", "pw-123456", "p-revoke")
        with cloud.client(token) as c:
            assert c.get("/compute/v2.1/servers").status_code == 200
        assert admin.delete(grant).status_code == 204
        with cloud.client(token) as c:
            assert c.get("/compute/v2.1/servers").status_code == 401
        # granted again: a new token works, the old one stays revoked
        assert admin.put(grant).status_code == 204
        fresh = cloud.token("u-revoke", "pw-123456", "p-revoke")
        with cloud.client(fresh) as c:
            assert c.get("/compute/v2.1/servers").status_code == 200
        assert admin.delete(f"/identity/v3/users/{user['id']}").status_code == 204
        with cloud.client(fresh) as c:
            assert c.get("/compute/v2.1/servers").status_code == 401


def test_the_scopes_a_token_may_have(cloud: Cloud) -> None:
    """GET /v3/auth/projects, /v3/auth/domains and /v3/auth/system: where the token's user
    holds a role, directly or through a group."""
    v3 = "/identity/v3"
    with cloud.client() as c:
        made = {}
        for kind, body in (
            ("domain", {"name": "scopes-direct"}),
            ("domain", {"name": "scopes-group"}),
            ("domain", {"name": "scopes-off", "enabled": False}),
            ("user", {"name": "scopes-user", "password": "pw"}),
            ("group", {"name": "scopes-group"}),
            ("role", {"name": "scopes-role"}),
        ):
            resp = c.post(f"{v3}/{kind}s", json={kind: body})
            assert resp.status_code == 201, resp.text
            made[body["name"] if kind == "domain" else kind] = resp.json()[kind]
        user, group, role = made["user"]["id"], made["group"]["id"], made["role"]["id"]
        assert c.put(f"{v3}/groups/{group}/users/{user}").status_code == 204
        for target, actor in (
            ("scopes-direct", f"users/{user}"),
            ("scopes-group", f"groups/{group}"),
            ("scopes-off", f"users/{user}"),
        ):
            assert c.put(f"{v3}/domains/{made[target]['id']}/{actor}/roles/{role}").status_code == 204
        assert c.put(f"{v3}/projects/{_project_id(c, 'demo')}/users/{user}/roles/{role}").status_code == 204
    body = {
        "auth": {"identity": {"methods": ["password"], "password": {"user": {"id": user, "password": "pw"}}}}
    }
    token = httpx.post(f"{cloud.url}{v3}/auth/tokens", json=body).headers["X-Subject-Token"]
    with cloud.client(token) as c:
        domains = c.get(f"{v3}/auth/domains").json()
        assert sorted(d["name"] for d in domains["domains"]) == [
            "scopes-direct",
            "scopes-group",
        ]  # enabled ones
        assert domains["links"]["self"] == f"{cloud.url}{v3}/auth/domains"
        assert [p["name"] for p in c.get(f"{v3}/auth/projects").json()["projects"]] == ["demo"]
        assert c.get(f"{v3}/auth/system").json()["system"] == []
    with cloud.client() as c:
        assert c.get(f"{v3}/auth/system").json()["system"] == [{"all": True}]


def _project_id(c: httpx.Client, name: str) -> str:
    return str(c.get("/identity/v3/projects", params={"name": name}).json()["projects"][0]["id"])
