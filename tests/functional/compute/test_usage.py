"""os-simple-tenant-usage and os-volume_attachments over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from kumo.compute.models import Instance
from tests.conftest import DEMO_PASSWORD, Cloud
from tests.functional.compute.helpers import API, add_instance, database, project_id

START = dt.datetime(2026, 1, 1)
PERIOD = {"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"}
MV240 = {"OpenStack-API-Version": "compute 2.40"}


def at(hours: float) -> dt.datetime:
    return START + dt.timedelta(hours=hours)


def add_server(
    cloud: Cloud,
    project: str,
    name: str,
    launched: dt.datetime | None,
    terminated: dt.datetime | None = None,
    *,
    vcpus: int = 2,
    ram: int = 1024,
    disk: int = 10,
    ephemeral: int = 0,
) -> str:
    """An instance row with the times os-simple-tenant-usage reads."""
    server_uuid = str(uuid.uuid4())
    db = database(cloud)
    try:
        with db.transaction() as s:
            flavor = {
                "id": "f",
                "name": "m1.test",
                "vcpus": vcpus,
                "ram": ram,
                "disk": disk,
                "ephemeral": ephemeral,
            }
            s.add(
                Instance(
                    uuid=server_uuid,
                    project_id=project,
                    user_id="u",
                    name=name,
                    flavor=flavor,
                    vcpus=vcpus,
                    memory_mb=ram,
                    vm_state="deleted" if terminated else "active",
                    task_state=None,
                    launched_at=launched,
                    terminated_at=terminated,
                    deleted=terminated is not None,
                    created_at=launched or START,
                )
            )
    finally:
        db.dispose()
    return server_uuid


def _usage_of_projects(cloud: Cloud) -> None:
    with cloud.client() as admin, cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as demo:
        admin_project, demo_project = project_id(admin, "admin"), project_id(admin, "demo")
        running = add_server(cloud, demo_project, "running", at(-10), vcpus=2, ram=1024, disk=10, ephemeral=5)
        gone = add_server(cloud, demo_project, "gone", at(2), at(8), vcpus=1, ram=512, disk=1)
        add_server(cloud, demo_project, "long-gone", at(-10), at(-5))  # before the period
        add_server(cloud, admin_project, "admins", at(12), vcpus=4, ram=2048, disk=20)

        listed = admin.get(f"{API}/os-simple-tenant-usage", params=PERIOD)
        assert listed.status_code == 200, listed.text
        usages = {u["tenant_id"]: u for u in listed.json()["tenant_usages"]}
        assert set(usages) == {admin_project, demo_project}
        mine = usages[demo_project]
        assert "server_usages" not in mine
        assert mine["start"] == "2026-01-01T00:00:00.000000" and mine["stop"] == "2026-01-02T00:00:00.000000"
        assert mine["total_hours"] == pytest.approx(24 + 6)
        assert mine["total_vcpus_usage"] == pytest.approx(2 * 24 + 1 * 6)
        assert mine["total_memory_mb_usage"] == pytest.approx(1024 * 24 + 512 * 6)
        assert mine["total_local_gb_usage"] == pytest.approx(15 * 24 + 1 * 6)
        assert usages[admin_project]["total_vcpus_usage"] == pytest.approx(4 * 12)

        detailed = admin.get(f"{API}/os-simple-tenant-usage", params={**PERIOD, "detailed": "1"}).json()
        servers = {
            s["name"]: s
            for u in detailed["tenant_usages"]
            if u["tenant_id"] == demo_project
            for s in u["server_usages"]
        }
        assert set(servers) == {"running", "gone"}
        assert servers["gone"] == {
            "instance_id": gone,
            "name": "gone",
            "tenant_id": demo_project,
            "flavor": "m1.test",
            "hours": pytest.approx(6.0),
            "memory_mb": 512,
            "local_gb": 1,
            "vcpus": 1,
            "started_at": "2026-01-01T02:00:00.000000",
            "ended_at": "2026-01-01T08:00:00.000000",
            "state": "terminated",
            "uptime": 6 * 3600,
        }
        assert servers["running"]["instance_id"] == running and servers["running"]["state"] == "active"
        assert servers["running"]["ended_at"] is None and servers["running"]["local_gb"] == 15
        # openstacksdk asks with detailed=True (Nova reads only "1"; kumo reads both).
        sdk_style = admin.get(f"{API}/os-simple-tenant-usage", params={**PERIOD, "detailed": "True"}).json()
        assert all("server_usages" in u for u in sdk_style["tenant_usages"])
        plain = admin.get(f"{API}/os-simple-tenant-usage", params={**PERIOD, "detailed": "0"}).json()
        assert all("server_usages" not in u for u in plain["tenant_usages"])

        # A member reads its own project's usage (always with servers), not the list nor another's.
        shown = demo.get(f"{API}/os-simple-tenant-usage/{demo_project}", params=PERIOD)
        assert shown.status_code == 200, shown.text
        own = shown.json()["tenant_usage"]
        assert own["tenant_id"] == demo_project and len(own["server_usages"]) == 2
        assert own["total_hours"] == pytest.approx(30)
        assert demo.get(f"{API}/os-simple-tenant-usage", params=PERIOD).status_code == 403
        assert demo.get(f"{API}/os-simple-tenant-usage/{admin_project}", params=PERIOD).status_code == 403
        # A project without servers in the period: an empty object.
        earlier = {"start": "2020-01-01T00:00:00", "end": "2020-01-02T00:00:00"}
        assert admin.get(f"{API}/os-simple-tenant-usage/{demo_project}", params=earlier).json() == {
            "tenant_usage": {}
        }

        # 2.40: pages of servers, continued by a marker in the next link.
        everyone = {s["instance_id"] for u in detailed["tenant_usages"] for s in u["server_usages"]}
        assert len(everyone) == 3
        paging = {**PERIOD, "limit": "2", "detailed": "1"}
        first = admin.get(f"{API}/os-simple-tenant-usage", params=paging, headers=MV240).json()
        (link,) = first["tenant_usages_links"]
        query = parse_qs(urlsplit(link["href"]).query)
        assert query["limit"] == ["2"] and query["start"] == [PERIOD["start"]]
        paging["marker"] = query["marker"][0]
        second = admin.get(f"{API}/os-simple-tenant-usage", params=paging, headers=MV240).json()
        assert "tenant_usages_links" not in second
        pages = [
            [s["instance_id"] for u in p["tenant_usages"] for s in u["server_usages"]]
            for p in (first, second)
        ]
        assert [len(p) for p in pages] == [2, 1] and set(pages[0] + pages[1]) == everyone
        # Before 2.40 limit and marker are not read: everything, no links.
        unpaged = admin.get(f"{API}/os-simple-tenant-usage", params={**PERIOD, "limit": "1", "detailed": "1"})
        assert sum(len(u["server_usages"]) for u in unpaged.json()["tenant_usages"]) == 3
        assert "tenant_usages_links" not in unpaged.json()


def test_usage_of_projects(cloud: Cloud) -> None:
    _usage_of_projects(cloud)


@pytest.mark.postgres
def test_usage_of_projects_on_postgres(pg_cloud: Cloud) -> None:
    _usage_of_projects(pg_cloud)


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"start": "yesterday"}, {}),
        ({"start": "2026-01-02T00:00:00", "end": "2026-01-01T00:00:00"}, {}),
        ({**PERIOD, "limit": "many"}, MV240),
        ({**PERIOD, "limit": "-1"}, MV240),
        ({**PERIOD, "marker": str(uuid.uuid4())}, MV240),
    ],
)
def test_bad_usage_queries_are_400(cloud: Cloud, params: dict[str, str], headers: dict[str, str]) -> None:
    with cloud.client() as admin:
        resp = admin.get(f"{API}/os-simple-tenant-usage", params=params, headers=headers)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["code"] == 400


def test_a_server_without_volumes_has_no_attachments(cloud: Cloud) -> None:
    with cloud.client() as admin, cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as demo:
        server = add_instance(cloud, None, project_id(admin, "demo"))
        resp = demo.get(f"{API}/servers/{server}/os-volume_attachments")
        assert resp.status_code == 200 and resp.json() == {"volumeAttachments": []}
        assert admin.get(f"{API}/servers/{server}/os-volume_attachments").json() == {"volumeAttachments": []}
        missing = demo.get(f"{API}/servers/{server}/os-volume_attachments/{uuid.uuid4()}")
        assert missing.status_code == 404 and missing.json()["itemNotFound"]["code"] == 404
        assert demo.get(f"{API}/servers/{uuid.uuid4()}/os-volume_attachments").status_code == 404
        theirs = add_instance(cloud, None, project_id(admin, "admin"))
        assert demo.get(f"{API}/servers/{theirs}/os-volume_attachments").status_code == 404
