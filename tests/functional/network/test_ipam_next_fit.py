"""Next-fit IPAM over HTTP, on SQLite and PostgreSQL: a port's address comes after the last one
the subnet handed out, so a freed address is reused only once the pool wrapped (a DHCP server
holding its old reservation rarely sees it again); an address asked for still goes where asked,
and the subnet as users see it does not change."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Cloud

V2 = "/networking/v2.0"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def admin(request: pytest.FixtureRequest) -> httpx.Client:
    cloud: Cloud = request.getfixturevalue("cloud" if request.param == "sqlite" else "pg_cloud")
    return cloud.client()


def created(resp: httpx.Response, key: str) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()[key]
    return body


def test_a_freed_address_comes_back_only_after_the_pool_wrapped(admin: httpx.Client) -> None:
    net = created(admin.post(V2 + "/networks", json={"network": {"name": "nf"}}), "network")["id"]
    # /28: hosts .1-.14; gateway .1, the DHCP port .2: .3-.14 for ports.
    subnet = created(
        admin.post(V2 + "/subnets", json={"subnet": {"network_id": net, "cidr": "10.41.0.0/28"}}), "subnet"
    )

    def create(body: dict[str, Any] | None = None) -> dict[str, Any]:
        return created(admin.post(V2 + "/ports", json={"port": {"network_id": net, **(body or {})}}), "port")

    def address(port: dict[str, Any]) -> str:
        return str(port["fixed_ips"][0]["ip_address"])

    first = [create() for _ in range(3)]
    assert [address(p) for p in first] == ["10.41.0.3", "10.41.0.4", "10.41.0.5"]
    assert admin.delete(f"{V2}/ports/{first[0]['id']}").status_code == 204
    assert address(create()) == "10.41.0.6"  # not the freed .3
    # Asked for, an address goes where asked (the freed one too) and moves no cursor.
    assert address(create({"fixed_ips": [{"ip_address": "10.41.0.3"}]})) == "10.41.0.3"
    assert address(create({"fixed_ips": [{"subnet_id": subnet["id"]}]})) == "10.41.0.7"
    assert admin.delete(f"{V2}/ports/{first[1]['id']}").status_code == 204  # frees .4
    rest = [address(create()) for _ in range(7)]
    assert rest == [f"10.41.0.{i}" for i in range(8, 15)]
    assert address(create()) == "10.41.0.4"  # the pool wrapped: the one free address
    full = admin.post(V2 + "/ports", json={"port": {"network_id": net}})
    assert full.status_code == 409 and full.json()["NeutronError"]["type"] == "IpAddressGenerationFailure"
    # Allocating moved the cursor, not the subnet users see.
    after = admin.get(f"{V2}/subnets/{subnet['id']}").json()["subnet"]
    assert after == subnet
