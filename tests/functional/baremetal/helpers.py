"""Shared steps of the baremetal functional tests: an Ironic client, nodes, a baremetal flavor
and an image."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Cloud, wait_for
from tests.functional.helpers import make_flavor, upload_image

IRONIC = {"X-OpenStack-Ironic-API-Version": "1.65"}
BM_SPECS = {
    "resources:CUSTOM_BM_SMALL": "1",
    "resources:VCPU": "0",
    "resources:MEMORY_MB": "0",
    "resources:DISK_GB": "0",
}


def ironic(cloud: Cloud, token: str | None = None) -> httpx.Client:
    c = cloud.client(token)
    c.headers.update(IRONIC)
    return c


def enroll(c: httpx.Client, name: str, **props: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "driver": "redfish",
        "driver_info": {
            "redfish_address": "http://127.0.0.1:8000",
            "redfish_system_id": f"/redfish/v1/Systems/{name}",
        },
        "resource_class": "bm.small",
        "properties": {"cpus": 4, "memory_mb": 8192, "local_gb": 100, **props},
    }
    resp = c.post("/baremetal/v1/nodes", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def node(c: httpx.Client, ident: str) -> dict[str, Any]:
    resp = c.get(f"/baremetal/v1/nodes/{ident}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def wait_node(c: httpx.Client, ident: str, **want: Any) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        n = node(c, ident)
        return n if all(n[k] == v for k, v in want.items()) else None

    return dict(wait_for(matches))


def provision(c: httpx.Client, ident: str, target: str, expect: int = 202) -> httpx.Response:
    resp = c.put(f"/baremetal/v1/nodes/{ident}/states/provision", json={"target": target})
    assert resp.status_code == expect, resp.text
    return resp


def make_available(c: httpx.Client, ident: str) -> dict[str, Any]:
    provision(c, ident, "manage")
    wait_node(c, ident, provision_state="manageable")
    provision(c, ident, "provide")
    return wait_node(c, ident, provision_state="available")


def bm_flavor(c: httpx.Client, name: str = "bm.small") -> str:
    flavor_id = make_flavor(c, name, vcpus=4, ram=8192, disk=100)
    specs = c.post(f"/compute/v2.1/flavors/{flavor_id}/os-extra_specs", json={"extra_specs": BM_SPECS})
    assert specs.status_code == 200, specs.text
    return flavor_id


def image(c: httpx.Client) -> str:
    return upload_image(c, name="bm-img", content=b"x" * 4096)


def server(c: httpx.Client, sid: str) -> dict[str, Any]:
    resp = c.get(f"/compute/v2.1/servers/{sid}", headers={"OpenStack-API-Version": "compute 2.64"})
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["server"])


def create_server(c: httpx.Client, flavor: str, image_id: str, name: str = "bm") -> str:
    body = {"server": {"name": name, "flavorRef": flavor, "imageRef": image_id, "networks": "none"}}
    resp = c.post("/compute/v2.1/servers", json=body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["server"]["id"])


def wait_server(c: httpx.Client, sid: str, status: str) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        s = server(c, sid)
        return s if s["status"] == status else None

    return dict(wait_for(matches))


def inventory(c: httpx.Client, node_uuid: str) -> dict[str, Any]:
    resp = c.get(
        f"/placement/resource_providers/{node_uuid}/inventories",
        headers={"OpenStack-API-Version": "placement 1.26"},
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["inventories"])
