"""Table-driven field validation cases (issue 15): one cloud per backend for the whole module.

A case is one request and the status it must get; `{flavor}`, `{image}`, `{project}` in its path
or body are replaced by a flavor, an image and the admin project made once per cloud."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import PG_URL, Cloud, postgres_available, start_cloud


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    body: Any
    status: int
    microversion: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        body = json.dumps(self.body)[:60] if self.body is not None else ""
        return f"{self.method} {self.path[:70]} {body} -> {self.status}"


@dataclass
class FieldCloud:
    cloud: Cloud
    ids: dict[str, str]


def setup_boot(value: Any, ids: dict[str, str]) -> Any:
    """`value` with every `{name}` placeholder in its strings replaced from `ids`."""
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, dict):
        return {setup_boot(k, ids): setup_boot(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [setup_boot(v, ids) for v in value]
    return value


def _make_ids(cloud: Cloud) -> dict[str, str]:
    with cloud.client() as c:
        flavor = c.post(
            "/compute/v2.1/flavors", json={"flavor": {"name": "fv", "vcpus": 1, "ram": 64, "disk": 1}}
        )
        assert flavor.status_code == 200, flavor.text
        image = c.post(
            "/image/v2/images",
            json={"name": "img", "disk_format": "raw", "container_format": "bare", "visibility": "public"},
        ).json()
        upload = c.put(
            f"/image/v2/images/{image['id']}/file",
            content=b"x" * 512,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert upload.status_code == 204, upload.text
        project = c.get("/identity/v3/projects", params={"name": "admin"}).json()["projects"][0]["id"]
    return {
        "flavor": flavor.json()["flavor"]["id"],
        "image": image["id"],
        "project": project,
        "token": cloud.token(),
    }


def _pg_database() -> Iterator[str]:
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"kumo_test_{uuid.uuid4().hex[:10]}"
    admin_dsn = PG_URL.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def serve_field_cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FieldCloud]:
    """For a module-scoped fixture parametrized over BACKENDS: a cloud (SQLite or PostgreSQL)
    with a flavor and an image, shared by the module's cases."""
    tmp: Path = tmp_path_factory.mktemp(f"fields-{request.param}")
    databases = _pg_database() if request.param == "postgresql" else iter([""])
    url = next(databases)
    template = request.getfixturevalue("sqlite_template") if not url else None
    cloud = start_cloud(tmp, url, template=template)
    try:
        yield FieldCloud(cloud, _make_ids(cloud))
    finally:
        cloud.server.stop()
        next(databases, None)


def error_status(path: str, body: dict[str, Any]) -> int:
    """The status an error body states, in the format of the service `path` belongs to."""
    if path.startswith("/placement"):
        return int(body["errors"][0]["status"])
    if path.startswith("/image"):
        return int(body["code"])
    if path.startswith("/baremetal"):
        fault = json.loads(body["error_message"])
        return 400 if fault["faultcode"] == "Client" else 500
    (content,) = body.values()
    return int(content["code"])


def run_case(fc: FieldCloud, case: Case) -> httpx.Response:
    """Send the case; assert its status and, for an error, the service's own error body."""
    path = setup_boot(case.path, fc.ids)
    kwargs: dict[str, Any] = {}
    if case.body is not None:
        kwargs["json"] = setup_boot(case.body, fc.ids)
    headers = dict(case.headers)
    if case.microversion:
        headers["OpenStack-API-Version"] = f"compute {case.microversion}"
    with fc.cloud.client(token=fc.ids["token"]) as c:
        resp = c.request(case.method, path, headers=headers, **kwargs)
    assert resp.status_code == case.status, resp.text
    if resp.status_code >= 400:
        assert error_status(path, resp.json()) == min(case.status, 500), resp.text
    return resp
