"""Unified limits over HTTP, on SQLite and PostgreSQL: registered and project limits (Keystone's
flat model), and compute's quotas reading them (os-quota-sets shows what server create checks)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import DEMO_PASSWORD, Cloud
from tests.functional.compute.helpers import BACKENDS, either_cloud

V3 = "/identity/v3"


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


def _compute_service(c: httpx.Client) -> str:
    return str(c.get(f"{V3}/services", params={"type": "compute"}).json()["services"][0]["id"])


def _quota(c: httpx.Client, project_id: str) -> dict[str, int]:
    resp = c.get(f"/compute/v2.1/os-quota-sets/{project_id}")
    assert resp.status_code == 200, resp.text
    body: dict[str, int] = resp.json()["quota_set"]
    return body


def test_registered_and_project_limits_reach_compute_quotas(any_cloud: Cloud) -> None:
    with any_cloud.client() as c:
        compute = _compute_service(c)
        project = c.post(f"{V3}/projects", json={"project": {"name": f"lim-{uuid.uuid4().hex[:8]}"}}).json()[
            "project"
        ]
        before = _quota(c, project["id"])

        registered = c.post(
            f"{V3}/registered_limits",
            json={
                "registered_limits": [
                    {"service_id": compute, "resource_name": "servers", "default_limit": 3},
                    {
                        "service_id": compute,
                        "resource_name": "class:VCPU",
                        "default_limit": 7,
                        "region_id": "RegionOne",
                    },
                ]
            },
        )
        assert registered.status_code == 201, registered.text
        servers_limit, vcpu_limit = registered.json()["registered_limits"]
        assert servers_limit["default_limit"] == 3 and servers_limit["region_id"] is None
        dup = c.post(
            f"{V3}/registered_limits",
            json={
                "registered_limits": [{"service_id": compute, "resource_name": "servers", "default_limit": 1}]
            },
        )
        assert dup.status_code == 409
        bad = c.post(
            f"{V3}/registered_limits",
            json={"registered_limits": [{"service_id": "nope", "resource_name": "x", "default_limit": 1}]},
        )
        assert bad.status_code == 400 and bad.json()["error"]["code"] == 400
        quota = _quota(c, project["id"])
        assert quota["instances"] == 3 and quota["cores"] == 7 and quota["ram"] == before["ram"]

        made = c.post(
            f"{V3}/limits",
            json={
                "limits": [
                    {
                        "project_id": project["id"],
                        "service_id": compute,
                        "resource_name": "servers",
                        "resource_limit": 5,
                    }
                ]
            },
        )
        assert made.status_code == 201, made.text
        limit = made.json()["limits"][0]
        assert _quota(c, project["id"])["instances"] == 5
        unregistered = c.post(
            f"{V3}/limits",
            json={
                "limits": [
                    {
                        "project_id": project["id"],
                        "service_id": compute,
                        "resource_name": "class:MEMORY_MB",
                        "resource_limit": 5,
                    }
                ]
            },
        )
        assert unregistered.status_code == 403
        assert c.delete(f"{V3}/registered_limits/{servers_limit['id']}").status_code == 403  # in use
        updated = c.patch(f"{V3}/limits/{limit['id']}", json={"limit": {"resource_limit": 9}})
        assert updated.json()["limit"]["resource_limit"] == 9 and _quota(c, project["id"])["instances"] == 9
        listed = c.get(f"{V3}/limits", params={"project_id": project["id"]}).json()["limits"]
        assert [x["id"] for x in listed] == [limit["id"]]
        assert c.get(f"{V3}/limits/model").json()["model"]["name"] == "flat"

        demo = any_cloud.token("demo", DEMO_PASSWORD, "demo")
        with any_cloud.client(demo) as d:
            assert d.get(f"{V3}/limits").json()["limits"] == []  # not its project's
            assert d.get(f"{V3}/registered_limits").status_code == 200
            assert d.post(f"{V3}/limits", json={"limits": []}).status_code == 403

        assert c.delete(f"{V3}/limits/{limit['id']}").status_code == 204
        assert _quota(c, project["id"])["instances"] == 3
        assert c.delete(f"{V3}/registered_limits/{servers_limit['id']}").status_code == 204
        assert c.delete(f"{V3}/registered_limits/{vcpu_limit['id']}").status_code == 204
        assert _quota(c, project["id"])["instances"] == before["instances"]
