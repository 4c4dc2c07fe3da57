"""os-server-groups: policy vs policies shapes, rules, members, projects, quota."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.compute.models import ServerGroupMember
from tests.conftest import Cloud
from tests.functional.compute.helpers import (
    API,
    BACKENDS,
    add_instance,
    database,
    demo_token,
    either_cloud,
    project_id,
    reader_token,
)


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


def _create(c: Any, body: dict[str, Any]) -> Any:
    return c.post(f"{API}/os-server-groups", json={"server_group": body})


@pytest.mark.parametrize(
    ("version", "keys"),
    [
        ("2.1", {"id", "name", "policies", "members", "metadata"}),
        ("2.13", {"id", "name", "policies", "members", "metadata", "project_id", "user_id"}),
        ("2.64", {"id", "name", "policy", "rules", "members", "project_id", "user_id"}),
    ],
)
def test_shapes(cloud: Cloud, version: str, keys: set[str]) -> None:
    body = (
        {"name": "g", "policy": "anti-affinity"}
        if version == "2.64"
        else {"name": "g", "policies": ["anti-affinity"]}
    )
    with cloud.client(microversion=version) as c:
        resp = _create(c, body)
        assert resp.status_code == 200, resp.text
        group = resp.json()["server_group"]
        assert set(group) == keys
        assert set(c.get(f"{API}/os-server-groups/{group['id']}").json()["server_group"]) == keys
        assert [set(g) for g in c.get(f"{API}/os-server-groups").json()["server_groups"]] == [keys]
    if version == "2.64":
        assert group["policy"] == "anti-affinity" and group["rules"] == {}
    else:
        assert group["policies"] == ["anti-affinity"] and group["metadata"] == {}


def test_a_264_group_reads_back_as_policies_before_264(cloud: Cloud) -> None:
    with cloud.client(microversion="2.64") as c:
        body = {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}
        group = _create(c, body).json()["server_group"]
        assert group["rules"] == {"max_server_per_host": 2}
    with cloud.client(microversion="2.15") as c:
        old = c.get(f"{API}/os-server-groups/{group['id']}").json()["server_group"]
    assert old["policies"] == ["anti-affinity"] and "rules" not in old


@pytest.mark.parametrize(
    ("version", "body"),
    [
        ("2.64", {"name": "g", "policy": "affinity", "rules": {"max_server_per_host": 2}}),
        ("2.64", {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}),
        ("2.64", {"name": "g", "policy": "anti-affinity", "rules": {"other": 1}}),
        ("2.64", {"name": "g", "policy": "best-effort"}),
        ("2.64", {"name": "g", "policies": ["affinity"]}),
        ("2.64", {"policy": "affinity"}),
        ("2.14", {"name": "g", "policies": ["soft-affinity"]}),
        ("2.15", {"name": "g", "policies": ["affinity", "anti-affinity"]}),
        ("2.15", {"name": "g", "policy": "affinity"}),
        ("2.15", {"name": "", "policies": ["affinity"]}),
    ],
)
def test_bad_bodies(cloud: Cloud, version: str, body: dict[str, Any]) -> None:
    with cloud.client(microversion=version) as c:
        resp = _create(c, body)
    assert resp.status_code == 400, resp.text


def test_soft_policies_from_215(cloud: Cloud) -> None:
    with cloud.client(microversion="2.15") as c:
        assert _create(c, {"name": "g", "policies": ["soft-anti-affinity"]}).status_code == 200


def test_members_projects_and_delete(any_cloud: Cloud) -> None:
    with any_cloud.client(demo_token(any_cloud), microversion="2.64") as demo:
        group = _create(demo, {"name": "mine", "policy": "affinity"}).json()["server_group"]
    with any_cloud.client(microversion="2.64") as admin:
        demo_project = project_id(admin, "demo")
        assert admin.get(f"{API}/os-server-groups").json()["server_groups"] == []
        everyone = admin.get(f"{API}/os-server-groups", params={"all_projects": "True"}).json()[
            "server_groups"
        ]
        assert [g["id"] for g in everyone] == [group["id"]] and everyone[0]["project_id"] == demo_project
    live = add_instance(any_cloud, None, demo_project)
    dead = add_instance(any_cloud, None, demo_project, deleted=True)
    db = database(any_cloud)
    with db.transaction() as s:
        s.add_all([ServerGroupMember(group_uuid=group["id"], instance_uuid=u) for u in (live, dead)])
    db.dispose()
    with any_cloud.client(demo_token(any_cloud), microversion="2.64") as demo:
        assert demo.get(f"{API}/os-server-groups/{group['id']}").json()["server_group"]["members"] == [live]
        assert demo.get(f"{API}/os-server-groups", params={"all_projects": "1"}).status_code == 403
    with any_cloud.client(reader_token(any_cloud), microversion="2.64") as reader:
        assert reader.get(f"{API}/os-server-groups/{group['id']}").status_code == 200
        assert reader.delete(f"{API}/os-server-groups/{group['id']}").status_code == 403
        assert _create(reader, {"name": "r", "policy": "affinity"}).status_code == 403
    with any_cloud.client(microversion="2.64") as admin:
        other = _create(admin, {"name": "admins", "policy": "affinity"}).json()["server_group"]
    with any_cloud.client(demo_token(any_cloud), microversion="2.64") as demo:
        assert demo.get(f"{API}/os-server-groups/{other['id']}").status_code == 404
        assert demo.delete(f"{API}/os-server-groups/{group['id']}").status_code == 204
        assert demo.get(f"{API}/os-server-groups/{group['id']}").status_code == 404
        assert demo.delete(f"{API}/os-server-groups/{group['id']}").status_code == 404


def test_paging_and_quota(cloud: Cloud) -> None:
    with cloud.client(microversion="2.64") as c:
        admin_project = project_id(c, "admin")
        assert (
            c.put(
                f"{API}/os-quota-sets/{admin_project}", json={"quota_set": {"server_groups": 3}}
            ).status_code
            == 200
        )
        ids = [
            _create(c, {"name": f"g{i}", "policy": "affinity"}).json()["server_group"]["id"] for i in range(3)
        ]
        over = _create(c, {"name": "g4", "policy": "affinity"})
        assert over.status_code == 403
        assert over.json()["forbidden"]["message"] == "Quota exceeded, too many server groups."
        page = c.get(f"{API}/os-server-groups", params={"limit": 2, "offset": 1}).json()["server_groups"]
        assert [g["id"] for g in page] == ids[1:3]
        assert c.get(f"{API}/os-server-groups", params={"offset": "-1"}).status_code == 400
