"""The unmodified `openstack` CLI against kumo's Keystone: auth, catalog and the admin calls
tools use to provision tenants."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.cli.conftest import DEMO_CLOUD, CLIError, OpenStackCLI
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


def test_project_properties(cloud: Cloud, osc: OpenStackCLI) -> None:
    """`--property k=v` (Keystone's extra attributes, what Ansible's openstack.cloud.project sends
    as `properties`) is kept and shown back as the project's own fields; `project set --property`
    changes one and keeps the others; Keystone's own fields are never shadowed."""
    made = osc.run("project", "create", "--property", "tier=gold", "--property", "owner=ops", "p-props")
    assert (made["tier"], made["owner"]) == ("gold", "ops")
    osc.run("project", "set", "--property", "tier=silver", "p-props", json=False)
    shown = osc.run("project", "show", "p-props")
    assert (shown["tier"], shown["owner"], shown["name"]) == ("silver", "ops", "p-props")
    with cloud.client() as c:
        listed = c.get("/identity/v3/projects", params={"name": "p-props"}).json()["projects"]
        assert [(p["tier"], p["owner"]) for p in listed] == [("silver", "ops")]
        # only an extra attribute in the update: a change, not "at least one attribute"
        patched = c.patch(f"/identity/v3/projects/{made['id']}", json={"project": {"cost": 12}})
        assert patched.status_code == 200 and patched.json()["project"]["cost"] == 12
        # an extra cannot stand in for the id, the links or Keystone's options
        other = c.post("/identity/v3/projects", json={"project": {"name": "p2", "id": "x", "links": 1}})
        assert other.status_code == 201
        body = other.json()["project"]
        assert body["id"] != "x" and body["links"]["self"].endswith(body["id"])


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


def test_domains_and_groups_through_the_cli(cloud: Cloud, osc: OpenStackCLI) -> None:
    domain = osc.run("domain", "create", "--description", "cli domain", "cli-dom")
    assert domain["name"] == "cli-dom" and domain["enabled"] is True
    project = osc.run("project", "create", "--domain", "cli-dom", "cli-dproj")
    assert project["domain_id"] == domain["id"]
    osc.run("user", "create", "--domain", "cli-dom", "--password", "pw", "cli-duser")
    group = osc.run("group", "create", "--domain", "cli-dom", "cli-group")
    assert group["domain_id"] == domain["id"]
    osc.run(
        "group",
        "add",
        "user",
        "--group-domain",
        "cli-dom",
        "--user-domain",
        "cli-dom",
        "cli-group",
        "cli-duser",
        json=False,
    )
    osc.run(
        "role", "add", "--group", "cli-group", "--group-domain", "cli-dom",
        "--project", "cli-dproj", "--project-domain", "cli-dom", "member", json=False,
    )  # fmt: skip
    rows = osc.run(
        "role",
        "assignment",
        "list",
        "--effective",
        "--project",
        "cli-dproj",
        "--project-domain",
        "cli-dom",
        "--names",
    )
    assert {(r["Role"], r["User"]) for r in rows} == {
        ("member", "cli-duser@cli-dom"),
        ("reader", "cli-duser@cli-dom"),
    }
    osc.run(
        "role",
        "add",
        "--user",
        "cli-duser",
        "--user-domain",
        "cli-dom",
        "--domain",
        "cli-dom",
        "admin",
        json=False,
    )
    login = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "cli-duser", "domain": {"name": "cli-dom"}, "password": "pw"}},
            },
            "scope": {"domain": {"name": "cli-dom"}},
        }
    }
    resp = httpx.post(f"{cloud.url}/identity/v3/auth/tokens", json=login)
    assert resp.status_code == 201 and resp.json()["token"]["domain"]["name"] == "cli-dom"

    osc.run("domain", "set", "--disable", "cli-dom", json=False)
    assert httpx.post(f"{cloud.url}/identity/v3/auth/tokens", json=login).status_code == 401
    osc.run("domain", "delete", "cli-dom", json=False)
    assert "cli-dom" not in [d["Name"] for d in osc.run("domain", "list")]


def test_application_credentials_through_the_cli(cloud: Cloud, osc: OpenStackCLI) -> None:
    cred = osc.run(
        "application", "credential", "create", "--description", "automation", "cli-app", cloud=DEMO_CLOUD
    )
    assert cred["Name"] == "cli-app" and cred["Secret"]
    listed = osc.run("application", "credential", "list", cloud=DEMO_CLOUD)
    assert [r["Name"] for r in listed] == ["cli-app"]
    # Authenticate as the credential, with the unmodified CLI's v3applicationcredential plugin.
    argv = [
        osc.binary,
        "--os-auth-type", "v3applicationcredential",
        "--os-auth-url", f"{cloud.url}/identity",
        "--os-identity-api-version", "3",
        "--os-application-credential-id", cred["ID"],
        "--os-application-credential-secret", cred["Secret"],
        "token", "issue", "-f", "json",
    ]  # fmt: skip
    proc = subprocess.run(argv, env=osc.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    token = json.loads(proc.stdout)
    with cloud.client() as c:
        demo_project = c.get("/identity/v3/projects", params={"name": "demo"}).json()["projects"][0]["id"]
    assert token["project_id"] == demo_project
    osc.run("application", "credential", "delete", "cli-app", cloud=DEMO_CLOUD, json=False)
    assert osc.run("application", "credential", "list", cloud=DEMO_CLOUD) in (None, [])


def test_system_scope_through_the_cli(cloud: Cloud, osc: OpenStackCLI) -> None:
    osc.run("user", "create", "--password", "pw", "cli-auditor")
    osc.run("role", "add", "--system", "all", "--user", "cli-auditor", "reader", json=False)
    rows = osc.run("role", "assignment", "list", "--system", "all", "--names")
    assert ("reader", "cli-auditor@Default", "all") in {(r["Role"], r["User"], r["System"]) for r in rows}
    argv = [
        osc.binary,
        "--os-auth-url", f"{cloud.url}/identity",
        "--os-identity-api-version", "3",
        "--os-username", "cli-auditor",
        "--os-password", "pw",
        "--os-user-domain-name", "Default",
        "--os-system-scope", "all",
        "user", "list", "-f", "json",
    ]  # fmt: skip
    proc = subprocess.run(argv, env=osc.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "cli-auditor" in [u["Name"] for u in json.loads(proc.stdout)]
    argv[-4:] = ["project", "create", "nope", "-f", "json"]
    denied = subprocess.run(argv, env=osc.env, capture_output=True, text=True, timeout=120)
    assert denied.returncode != 0 and "403" in denied.stderr
