"""Table-driven field validation cases (issue 15): one cloud per backend for the whole module.

A case is one request and the status it must get; `{flavor}`, `{image}`, `{project}` in its path
or body are replaced by a flavor, an image and the admin project made once per cloud."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Cloud, fresh_pg_database, start_cloud
from tests.functional.helpers import make_flavor, upload_image


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
        flavor = make_flavor(c, "fv", ram=64)
        image = upload_image(c, content=b"x" * 512)
        project = c.get("/identity/v3/projects", params={"name": "admin"}).json()["projects"][0]["id"]
    return {
        "flavor": flavor,
        "image": image,
        "project": project,
        "token": cloud.token(),
    }


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def serve_field_cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FieldCloud]:
    """For a module-scoped fixture parametrized over BACKENDS: a cloud (SQLite or PostgreSQL)
    with a flavor and an image, shared by the module's cases."""
    tmp: Path = tmp_path_factory.mktemp(f"fields-{request.param}")
    databases = fresh_pg_database() if request.param == "postgresql" else iter([""])
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
    if path.startswith("/image"):  # webob's JSON: {"code": "404 Not Found", ...}
        return int(body["code"].split()[0])
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
    if path.startswith("/image"):
        headers.setdefault("Accept", "application/json")  # Glance answers HTML to `*/*`
    if case.microversion:
        headers["OpenStack-API-Version"] = f"compute {case.microversion}"
    with fc.cloud.client(token=fc.ids["token"]) as c:
        resp = c.request(case.method, path, headers=headers, **kwargs)
    assert resp.status_code == case.status, resp.text
    if resp.status_code >= 400:
        assert error_status(path, resp.json()) == min(case.status, 500), resp.text
    return resp
