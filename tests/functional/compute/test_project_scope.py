"""Project-owned compute (servers, server groups, stock requests) needs a project-scoped token:
a domain- or system-scoped member is refused with a 403 rather than sharing a project "" with
every other such token (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from kumo.compute.models import Instance, ServerGroup
from kumo.stock.models import StockRequest
from tests.conftest import ADMIN_PASSWORD, Cloud
from tests.functional.compute.helpers import API, BACKENDS, database, either_cloud

V3 = "/identity/v3"
PASSWORD = "pw-scope-1"


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


def _login(cloud: Cloud, name: str, scope: Any) -> str:
    user = {"name": name, "domain": {"id": "default"}, "password": PASSWORD}
    auth = {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}
    resp = httpx.post(f"{cloud.url}{V3}/auth/tokens", json={"auth": auth})
    assert resp.status_code == 201, resp.text
    roles = {r["name"] for r in resp.json()["token"]["roles"]}
    assert "member" in roles and "admin" not in roles
    return resp.headers["X-Subject-Token"]


def _member_tokens(cloud: Cloud) -> dict[str, str]:
    """A domain-scoped member and a system-scoped member (two users of their own)."""
    with cloud.client() as c:
        member = c.get(f"{V3}/roles", params={"name": "member"}).json()["roles"][0]["id"]
        grants = {"domain": f"{V3}/domains/default/users/{{}}/roles/{member}"}
        grants["system"] = f"{V3}/system/users/{{}}/roles/{member}"
        names = {}
        for scope, grant in grants.items():
            name = f"{scope}-{uuid.uuid4().hex[:8]}"
            user = c.post(f"{V3}/users", json={"user": {"name": name, "password": PASSWORD}})
            assert user.status_code == 201, user.text
            assert c.put(grant.format(user.json()["user"]["id"])).status_code == 204
            names[scope] = name
    return {
        "domain": _login(cloud, names["domain"], {"domain": {"id": "default"}}),
        "system": _login(cloud, names["system"], {"system": {"all": True}}),
    }


def _forbidden(resp: httpx.Response, policy: str) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.json()["forbidden"]["message"] == f"Policy doesn't allow {policy} to be performed."


def test_domain_and_system_members_neither_create_nor_list_project_owned_compute(any_cloud: Cloud) -> None:
    with any_cloud.client(microversion="2.64") as c:
        flavor = c.post(f"{API}/flavors", json={"flavor": {"name": "t1", "vcpus": 1, "ram": 512, "disk": 1}})
        assert flavor.status_code == 200, flavor.text
        flavor_id = flavor.json()["flavor"]["id"]
        image = c.post(
            "/image/v2/images",
            json={"name": "img", "disk_format": "raw", "container_format": "bare", "visibility": "public"},
        ).json()["id"]
    server = {"server": {"name": "vm", "flavorRef": flavor_id, "imageRef": image, "networks": "none"}}
    for token in _member_tokens(any_cloud).values():
        with any_cloud.client(token, microversion="2.64") as c:
            _forbidden(c.post(f"{API}/servers", json=server), "os_compute_api:servers:create")
            _forbidden(c.get(f"{API}/servers"), "os_compute_api:servers:index")
            _forbidden(c.get(f"{API}/servers/detail"), "os_compute_api:servers:index")
            group = {"server_group": {"name": "g", "policy": "affinity"}}
            _forbidden(
                c.post(f"{API}/os-server-groups", json=group), "os_compute_api:os-server-groups:create"
            )
            _forbidden(c.get(f"{API}/os-server-groups"), "os_compute_api:os-server-groups:index")
            stock = {"stock_request": {"flavor": flavor_id, "count": 1, "reason": "r"}}
            _forbidden(
                c.post(f"{API}/os-kumo-stock-requests", json=stock),
                "os_compute_api:os-kumo-stock-requests:create",
            )
            _forbidden(c.get(f"{API}/os-kumo-stock-requests"), "os_compute_api:os-kumo-stock-requests:index")
            # Key pairs are the user's own, in Nova as here: no project needed.
            assert c.post(f"{API}/os-keypairs", json={"keypair": {"name": "k"}}).status_code == 201
            assert [k["keypair"]["name"] for k in c.get(f"{API}/os-keypairs").json()["keypairs"]] == ["k"]
    db = database(any_cloud)
    try:
        with db.read() as s:
            for model in (Instance, ServerGroup, StockRequest):
                assert s.scalar(select(func.count()).select_from(model).where(model.project_id == "")) == 0
    finally:
        db.dispose()


def test_system_admin_lists_every_project_but_creates_in_none(any_cloud: Cloud) -> None:
    with any_cloud.client(microversion="2.64") as c:
        made = c.post(f"{API}/os-server-groups", json={"server_group": {"name": "g", "policy": "affinity"}})
        assert made.status_code == 200, made.text
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}},
        },
        "scope": {"system": {"all": True}},
    }
    resp = httpx.post(f"{any_cloud.url}{V3}/auth/tokens", json={"auth": auth})
    assert resp.status_code == 201, resp.text
    with any_cloud.client(resp.headers["X-Subject-Token"], microversion="2.64") as c:
        listed = c.get(f"{API}/os-server-groups", params={"all_projects": "1"})
        assert [g["id"] for g in listed.json()["server_groups"]] == [made.json()["server_group"]["id"]]
        assert c.get(f"{API}/servers", params={"all_tenants": "1"}).status_code == 200
        _forbidden(c.get(f"{API}/os-server-groups"), "os_compute_api:os-server-groups:index")
        group = {"server_group": {"name": "g2", "policy": "affinity"}}
        _forbidden(c.post(f"{API}/os-server-groups", json=group), "os_compute_api:os-server-groups:create")
