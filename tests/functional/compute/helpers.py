"""Test fixtures written straight to the database: compute hosts as an agent would register
them, and placed instances with their allocations."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kumo.compute import hosts
from kumo.compute.models import ComputeHost, Instance
from kumo.db import Database
from kumo.placement.models import Allocation
from tests.conftest import Cloud

API = "/compute/v2.1"


def database(cloud: Cloud) -> Database:
    return Database(cloud.settings.resolved_database_url)


def register_hosts(cloud: Cloud, *names: str, heartbeat: bool = True, **kw: Any) -> None:
    db = database(cloud)
    try:
        with db.transaction() as s:
            for name in names:
                hosts.register_host(
                    s,
                    name,
                    vcpus=kw.get("vcpus", 8),
                    memory_mb=kw.get("memory_mb", 16384),
                    disk_gb=kw.get("disk_gb", 100),
                    reserved_memory_mb=kw.get("reserved_memory_mb", 512),
                )
                if heartbeat:
                    hosts.heartbeat(s, name)
    finally:
        db.dispose()


def add_instance(
    cloud: Cloud,
    host: str | None,
    project_id: str,
    *,
    vcpus: int = 1,
    ram: int = 512,
    disk: int = 1,
    name: str = "vm",
    deleted: bool = False,
) -> str:
    """A live instance row (and its allocations on `host`), as the scheduler would leave it."""
    instance_uuid = str(uuid.uuid4())
    db = database(cloud)
    try:
        with db.transaction() as s:
            s.add(
                Instance(
                    uuid=instance_uuid,
                    project_id=project_id,
                    user_id="u",
                    name=name,
                    host=host,
                    flavor={"id": "f", "name": "f", "vcpus": vcpus, "ram": ram, "disk": disk},
                    vcpus=vcpus,
                    memory_mb=ram,
                    vm_state="active",
                    task_state=None,
                    deleted=deleted,
                )
            )
            if host is not None and not deleted:
                provider_id = s.scalar(select(ComputeHost.provider_id).where(ComputeHost.name == host))
                for rc, amount in (("VCPU", vcpus), ("MEMORY_MB", ram), ("DISK_GB", disk)):
                    s.add(
                        Allocation(
                            provider_id=provider_id, consumer_id=instance_uuid, resource_class=rc, used=amount
                        )
                    )
    finally:
        db.dispose()
    return instance_uuid


def project_id(c: httpx.Client, name: str) -> str:
    projects = c.get("/identity/v3/projects", params={"name": name}).json()["projects"]
    return str(projects[0]["id"])


def user_id(c: httpx.Client, name: str) -> str:
    return str(c.get("/identity/v3/users", params={"name": name}).json()["users"][0]["id"])


def reader_token(cloud: Cloud, project: str = "demo") -> str:
    """A token for a new user holding only the reader role on `project`."""
    name = f"reader-{uuid.uuid4().hex[:6]}"
    with cloud.client() as c:
        resp = c.post("/identity/v3/users", json={"user": {"name": name, "password": "reader-secret"}})
        assert resp.status_code == 201, resp.text
        uid = resp.json()["user"]["id"]
        role = c.get("/identity/v3/roles", params={"name": "reader"}).json()["roles"][0]["id"]
        grant = c.put(f"/identity/v3/projects/{project_id(c, project)}/users/{uid}/roles/{role}")
        assert grant.status_code == 204, grant.text
    return cloud.token(name, "reader-secret", project)


def demo_token(cloud: Cloud) -> str:
    from tests.conftest import DEMO_PASSWORD

    return cloud.token("demo", DEMO_PASSWORD, "demo")


def either_cloud(request: pytest.FixtureRequest) -> Cloud:
    """For a fixture parametrized over backends: the SQLite `cloud` or the PostgreSQL `pg_cloud`."""
    cloud: Cloud = request.getfixturevalue("pg_cloud" if request.param == "postgresql" else "cloud")
    return cloud


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
