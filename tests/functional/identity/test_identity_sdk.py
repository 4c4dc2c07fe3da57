"""openstacksdk against kumo's Keystone: domains, groups, group role assignments, implied roles,
system-scoped and application-credential connections, as tools use them."""

from __future__ import annotations

import openstack

from tests.conftest import ADMIN_PASSWORD, Cloud
from tests.functional.sdk.test_sdk import connect


def test_domains_groups_and_implied_roles_with_the_sdk(cloud: Cloud) -> None:
    conn = connect(cloud)
    domain = conn.identity.create_domain(name="sdk-dom", description="sdk")
    project = conn.identity.create_project(name="sdk-proj", domain_id=domain.id)
    user = conn.identity.create_user(name="sdk-user", domain_id=domain.id, password="sdk-pw")
    group = conn.identity.create_group(name="sdk-group", domain_id=domain.id)
    conn.identity.add_user_to_group(user, group)
    assert conn.identity.check_user_in_group(user, group)
    member = conn.identity.find_role("member")
    conn.identity.assign_project_role_to_group(project, group, member)
    assert conn.identity.validate_group_has_project_role(project, group, member)

    # The SDK has no implied-role calls: its identity adapter reads them.
    inferences = conn.identity.get("/role_inferences").json()["role_inferences"]
    rules = {(r["prior_role"]["name"], i["name"]) for r in inferences for i in r["implies"]}
    assert {("admin", "manager"), ("manager", "member"), ("member", "reader")} <= rules
    reader = conn.identity.find_role("reader")
    conn.identity.assign_system_role_to_user(user, reader, "all")
    assert conn.identity.validate_user_has_system_role(user, reader, "all")

    as_user = openstack.connect(
        auth_url=f"{cloud.url}/identity",
        username="sdk-user",
        password="sdk-pw",
        user_domain_name="sdk-dom",
        project_name="sdk-proj",
        project_domain_name="sdk-dom",
        region_name=cloud.settings.region,
        identity_api_version="3",
    )
    access = as_user.session.auth.get_access(as_user.session)
    assert sorted(access.role_names) == ["member", "reader"]
    assert access.project_domain_name == "sdk-dom"

    cred = as_user.identity.create_application_credential(user=access.user_id, name="sdk-app")
    app = openstack.connect(
        auth_type="v3applicationcredential",
        auth_url=f"{cloud.url}/identity",
        application_credential_id=cred.id,
        application_credential_secret=cred.secret,
        region_name=cloud.settings.region,
        identity_api_version="3",
    )
    app_access = app.session.auth.get_access(app.session)
    assert app_access.project_id == project.id and app_access._data["token"]["methods"] == [
        "application_credential"
    ]
    assert [c.name for c in as_user.identity.application_credentials(user=access.user_id)] == ["sdk-app"]
    as_user.identity.delete_application_credential(access.user_id, cred.id)

    conn.identity.remove_user_from_group(user, group)
    conn.identity.update_domain(domain, is_enabled=False)
    conn.identity.delete_domain(domain)
    assert conn.identity.find_domain("sdk-dom") is None


def test_system_scoped_connection(cloud: Cloud) -> None:
    conn = openstack.connect(
        auth_url=f"{cloud.url}/identity",
        username="admin",
        password=ADMIN_PASSWORD,
        user_domain_name="Default",
        system_scope="all",
        region_name=cloud.settings.region,
        identity_api_version="3",
    )
    access = conn.session.auth.get_access(conn.session)
    assert access.system_scoped and "admin" in access.role_names
    assert "admin" in [u.name for u in conn.identity.users()]
