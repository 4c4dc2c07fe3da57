"""The unmodified `openstack` CLI against kumo's Keystone: auth, catalog and the admin calls
tools use to provision tenants."""

from __future__ import annotations

import httpx
import pytest

from tests.cli.conftest import CLIError, OpenStackCLI
from tests.conftest import DEMO_PASSWORD, Cloud

pytestmark = pytest.mark.cli


def test_token_issue_and_catalog_list(cloud: Cloud, osc: OpenStackCLI) -> None:
    token = osc.run("token", "issue")
    with cloud.client() as c:
        admin = c.get("/identity/v3/users", params={"name": "admin"}).json()["users"][0]
    assert token["user_id"] == admin["id"]
    assert token["id"]

    catalog = osc.run("catalog", "list")
    by_type = {entry["Type"]: entry for entry in catalog}
    assert {"identity", "compute", "image"} <= set(by_type)
    identity = by_type["identity"]["Endpoints"]
    public = [e for e in identity if e["interface"] == "public"]
    assert public and public[0]["url"] == f"{cloud.url}/identity"
    assert public[0]["region"] == "RegionOne"


def test_provision_tenant_then_tear_down(cloud: Cloud, osc: OpenStackCLI) -> None:
    project = osc.run("project", "create", "--description", "cli tenant", "cli-proj")
    assert project["name"] == "cli-proj" and project["domain_id"] == "default"

    user = osc.run("user", "create", "--project", "cli-proj", "--password", "cli-pass", "cli-user")
    assert user["default_project_id"] == project["id"]

    osc.run("role", "add", "--project", "cli-proj", "--user", "cli-user", "member", json=False)
    rows = osc.run("role", "assignment", "list", "--user", "cli-user", "--project", "cli-proj", "--names")
    assert [(r["Role"], r["User"], r["Project"]) for r in rows] == [
        ("member", "cli-user@Default", "cli-proj@Default")
    ]

    # The new user can now log in to the new project.
    assert cloud.token("cli-user", "cli-pass", "cli-proj")

    osc.run("project", "delete", "cli-proj", json=False)
    osc.run("user", "delete", "cli-user", json=False)
    with cloud.client() as c:
        assert c.get(f"/identity/v3/projects/{project['id']}").status_code == 404
        assert c.get(f"/identity/v3/users/{user['id']}").status_code == 404
    login = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "cli-user", "domain": {"id": "default"}, "password": "cli-pass"}
                },
            }
        }
    }
    assert httpx.post(f"{cloud.url}/identity/v3/auth/tokens", json=login).status_code == 401

    # Deleting it again fails with the CLI's error, not a crash.
    with pytest.raises(CLIError) as exc:
        osc.run("user", "delete", "cli-user", json=False)
    assert "cli-user" in exc.value.stderr


def _can_read_self(cloud: Cloud, token: str) -> bool:
    """Whether `token` (demo's) still works: demo reads their own user record with it."""
    headers = {"X-Auth-Token": token}
    me = httpx.get(f"{cloud.url}/identity/v3/auth/tokens", headers={**headers, "X-Subject-Token": token})
    if me.status_code != 200:
        return False
    user_id = me.json()["token"]["user"]["id"]
    return httpx.get(f"{cloud.url}/identity/v3/users/{user_id}", headers=headers).status_code == 200


def test_user_password_set_revokes_the_old_tokens(cloud: Cloud, osc: OpenStackCLI) -> None:
    old = cloud.token("demo", DEMO_PASSWORD, "demo")
    assert _can_read_self(cloud, old)
    osc.run(
        "user",
        "password",
        "set",
        "--original-password",
        DEMO_PASSWORD,
        "--password",
        "demo-new",
        json=False,
        cloud="kumo-demo",
    )
    assert not _can_read_self(cloud, old)
    assert _can_read_self(cloud, cloud.token("demo", "demo-new", "demo"))


def test_admin_user_set_password_revokes_the_users_tokens(cloud: Cloud, osc: OpenStackCLI) -> None:
    old = cloud.token("demo", DEMO_PASSWORD, "demo")
    osc.run("user", "set", "--password", "set-by-admin", "demo", json=False)
    assert not _can_read_self(cloud, old)
    assert _can_read_self(cloud, cloud.token("demo", "set-by-admin", "demo"))


def test_implied_roles_through_the_cli(osc: OpenStackCLI) -> None:
    chain = osc.run("implied", "role", "list")
    pairs = {(r["Prior Role Name"], r["Implied Role Name"]) for r in chain}
    assert {("admin", "member"), ("member", "reader")} <= pairs
    osc.run("role", "create", "cli-auditor")
    osc.run("implied", "role", "create", "reader", "--implied-role", "cli-auditor")
    pairs = {(r["Prior Role Name"], r["Implied Role Name"]) for r in osc.run("implied", "role", "list")}
    assert ("reader", "cli-auditor") in pairs
    token = osc.run("token", "issue")
    assert token["id"]
    osc.run("implied", "role", "delete", "reader", "--implied-role", "cli-auditor", json=False)
    pairs = {(r["Prior Role Name"], r["Implied Role Name"]) for r in osc.run("implied", "role", "list")}
    assert ("reader", "cli-auditor") not in pairs
