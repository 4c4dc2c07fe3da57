"""Ironic's /v1/ports through the API: create, list (filters, detail, fields, pagination),
show, patch, delete, /v1/nodes/{node}/ports; unique addresses, valid MACs, existing nodes,
fields by microversion, admin only, and a node's ports going with the node."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import Cloud
from tests.functional.baremetal.helpers import enroll, ironic
from tests.functional.compute.helpers import demo_token

PORTS = "/baremetal/v1/ports"


def fault(resp: httpx.Response, status: int) -> str:
    """Ironic's error body: the fault is JSON inside a string."""
    assert resp.status_code == status, resp.text
    return str(json.loads(resp.json()["error_message"])["faultstring"])


def make_port(c: httpx.Client, node_uuid: str, address: str, **more: Any) -> dict[str, Any]:
    resp = c.post(PORTS, json={"address": address, "node_uuid": node_uuid, **more})
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"].endswith(f"/v1/ports/{resp.json()['uuid']}")
    return dict(resp.json())


def test_create_show_list_patch_delete(cloud: Cloud) -> None:
    with ironic(cloud) as c:
        n1, n2 = enroll(c, "p1")["uuid"], enroll(c, "p2")["uuid"]
        llc = {"switch_id": "0A:1B:2C:3D:4E:5F", "port_id": "Eth1/1", "switch_info": "tor-1"}
        first = make_port(c, n1, "52:54:00:AA:00:01", extra={"slot": 1}, local_link_connection=llc)
        assert first["address"] == "52:54:00:aa:00:01"  # stored lower-case
        assert first["node_uuid"] == n1 and first["pxe_enabled"] is True
        assert first["local_link_connection"]["switch_id"] == "0a:1b:2c:3d:4e:5f"
        assert first["extra"] == {"slot": 1} and first["physical_network"] is None
        second = make_port(c, n1, "52:54:00:aa:00:02", pxe_enabled=False, physical_network="physnet1")
        third = make_port(c, n2, "52-54-00-aa-00-03")
        assert third["address"] == "52:54:00:aa:00:03"

        shown = c.get(f"{PORTS}/{first['uuid']}").json()
        assert shown == first
        assert set(c.get(f"{PORTS}/{first['uuid']}", params={"fields": "address"}).json()) == {"address"}

        listed = c.get(PORTS).json()["ports"]
        assert [p["uuid"] for p in listed] == [first["uuid"], second["uuid"], third["uuid"]]
        assert set(listed[0]) == {"uuid", "address", "links"}
        detail = c.get(f"{PORTS}/detail").json()["ports"]
        assert detail[1]["pxe_enabled"] is False and detail[1]["physical_network"] == "physnet1"
        assert c.get(PORTS, params={"detail": "true"}).json()["ports"] == detail
        by_node = c.get(PORTS, params={"node": "p1"}).json()["ports"]
        assert [p["uuid"] for p in by_node] == [first["uuid"], second["uuid"]]
        assert c.get(PORTS, params={"node_uuid": n2}).json()["ports"][0]["uuid"] == third["uuid"]
        by_address = c.get(PORTS, params={"address": "52:54:00:AA:00:02"}).json()["ports"]
        assert [p["uuid"] for p in by_address] == [second["uuid"]]
        on_node = c.get(f"/baremetal/v1/nodes/{n1}/ports").json()["ports"]
        assert [p["uuid"] for p in on_node] == [first["uuid"], second["uuid"]]
        on_node_detail = c.get("/baremetal/v1/nodes/p2/ports/detail").json()["ports"]
        assert on_node_detail[0]["node_uuid"] == n2
        fields = c.get(PORTS, params={"fields": "uuid,node_uuid"}).json()["ports"]
        assert fields[2] == {"uuid": third["uuid"], "node_uuid": n2}

        page = c.get(PORTS, params={"limit": 2}).json()
        assert [p["uuid"] for p in page["ports"]] == [first["uuid"], second["uuid"]]
        assert f"marker={second['uuid']}" in page["next"]
        rest = c.get(page["next"]).json()
        assert [p["uuid"] for p in rest["ports"]] == [third["uuid"]] and "next" not in rest

        patched = c.patch(
            f"{PORTS}/{second['uuid']}",
            json=[
                {"op": "replace", "path": "/pxe_enabled", "value": True},
                {"op": "add", "path": "/extra/rack", "value": "r1"},
                {"op": "replace", "path": "/node_uuid", "value": n2},
                {"op": "remove", "path": "/physical_network"},
            ],
        )
        assert patched.status_code == 200, patched.text
        body = patched.json()
        assert (body["pxe_enabled"], body["extra"], body["node_uuid"]) == (True, {"rack": "r1"}, n2)
        assert body["physical_network"] is None
        assert c.get(f"{PORTS}/{second['uuid']}").json() == body

        assert c.delete(f"{PORTS}/{second['uuid']}").status_code == 204
        fault(c.get(f"{PORTS}/{second['uuid']}"), 404)
        # A node's ports go with it.
        assert c.delete(f"/baremetal/v1/nodes/{n2}").status_code == 204
        fault(c.get(f"{PORTS}/{third['uuid']}"), 404)
        assert [p["uuid"] for p in c.get(PORTS).json()["ports"]] == [first["uuid"]]


def test_bad_ports_are_refused_in_ironics_words(cloud: Cloud) -> None:
    _bad_ports_are_refused(cloud)


@pytest.mark.postgres
def test_create_and_bad_ports_on_postgresql(pg_cloud: Cloud) -> None:
    """The same refusals (never a 500) on PostgreSQL, and the lifecycle of a port there."""
    test_create_show_list_patch_delete(pg_cloud)
    _bad_ports_are_refused(pg_cloud)


def _bad_ports_are_refused(cloud: Cloud) -> None:
    with ironic(cloud) as c:
        n1 = enroll(c, "bad1")["uuid"]
        made = make_port(c, n1, "52:54:00:bb:00:01")
        assert "already exists" in fault(
            c.post(PORTS, json={"address": "52:54:00:BB:00:01", "node_uuid": n1}), 409
        )
        assert "MAC address" in fault(c.post(PORTS, json={"address": "not-a-mac", "node_uuid": n1}), 400)
        assert "MAC address" in fault(
            c.post(PORTS, json={"address": "01:00:5e:00:00:01", "node_uuid": n1}), 400
        )
        missing = "5b8c1c51-8bb1-4c0b-9d3a-1d6bd0d27a11"
        assert "could not be found" in fault(
            c.post(PORTS, json={"address": "52:54:00:bb:00:09", "node_uuid": missing}), 400
        )
        assert "node_uuid" in fault(c.post(PORTS, json={"address": "52:54:00:bb:00:09"}), 400)
        assert "Unknown attribute" in fault(
            c.post(PORTS, json={"address": "52:54:00:bb:00:09", "node_uuid": n1, "x": 1}), 400
        )
        fault(
            c.post(
                PORTS,
                json={
                    "address": "52:54:00:bb:00:09",
                    "node_uuid": n1,
                    "local_link_connection": {"port_id": "e1"},
                },
            ),
            400,
        )
        fault(c.post(PORTS, json=["not", "an", "object"]), 400)
        # Fields newer than the request's version: 406; older versions do not show them.
        old = {"X-OpenStack-Ironic-API-Version": "1.18"}
        fault(
            c.post(
                PORTS,
                json={"address": "52:54:00:bb:00:09", "node_uuid": n1, "pxe_enabled": True},
                headers=old,
            ),
            406,
        )
        assert "pxe_enabled" not in c.get(f"{PORTS}/{made['uuid']}", headers=old).json()
        fault(
            c.get(PORTS, params={"detail": "true"}, headers={"X-OpenStack-Ironic-API-Version": "1.42"}), 406
        )
        fault(c.get(PORTS, params={"fields": "bogus"}), 400)
        fault(c.get(PORTS, params={"fields": "uuid", "detail": "true"}), 400)
        fault(c.get(PORTS, params={"limit": "-1"}), 400)
        fault(c.get(PORTS, params={"marker": "nope"}), 400)
        fault(c.get(PORTS, params={"sort_key": "pxe"}), 400)
        fault(c.get(PORTS, params={"address": "zz"}), 400)
        fault(c.get(PORTS, params={"node": "no-such-node"}), 404)
        fault(c.get(f"{PORTS}/not-a-uuid"), 400)
        fault(c.get(f"{PORTS}/{missing}"), 404)
        # Patch: read-only fields, a taken address, a missing node, removing the address.
        other = make_port(c, n1, "52:54:00:bb:00:02")
        url = f"{PORTS}/{other['uuid']}"
        fault(c.patch(url, json=[{"op": "replace", "path": "/uuid", "value": missing}]), 400)
        fault(c.patch(url, json=[{"op": "replace", "path": "/address", "value": "52:54:00:bb:00:01"}]), 409)
        fault(c.patch(url, json=[{"op": "replace", "path": "/node_uuid", "value": missing}]), 400)
        fault(c.patch(url, json=[{"op": "remove", "path": "/address"}]), 400)
        fault(c.patch(url, json={"op": "replace"}), 400)
        assert c.get(url).json()["address"] == "52:54:00:bb:00:02"


def test_ports_are_admin_only(cloud: Cloud) -> None:
    with ironic(cloud) as admin:
        n1 = enroll(admin, "adm1")["uuid"]
        made = make_port(admin, n1, "52:54:00:cc:00:01")
    with ironic(cloud, demo_token(cloud)) as demo:
        fault(demo.get(PORTS), 403)
        fault(demo.get(f"{PORTS}/{made['uuid']}"), 403)
        fault(demo.post(PORTS, json={"address": "52:54:00:cc:00:02", "node_uuid": n1}), 403)
        fault(
            demo.patch(f"{PORTS}/{made['uuid']}", json=[{"op": "add", "path": "/extra/a", "value": 1}]), 403
        )
        fault(demo.delete(f"{PORTS}/{made['uuid']}"), 403)


def _walk(c: httpx.Client, **params: Any) -> list[str]:
    """Every port's address, following `next` one port a page."""
    resp = c.get(PORTS, params={"limit": 1, "fields": "uuid,address", **params}).json()
    seen = [p["address"] for p in resp["ports"]]
    while "next" in resp:
        resp = c.get(resp["next"]).json()
        seen += [p["address"] for p in resp["ports"]]
    return seen


def _paging_follows_any_sort_key(cloud: Cloud) -> None:
    with ironic(cloud) as c:
        n1, n2 = enroll(c, "pg1")["uuid"], enroll(c, "pg2")["uuid"]
        # Created out of address order: id order is …03, …01, …02.
        for address in ("52:54:00:dd:00:03", "52:54:00:dd:00:01", "52:54:00:dd:00:02"):
            make_port(c, n1, address)
        made = ["52:54:00:dd:00:03", "52:54:00:dd:00:01", "52:54:00:dd:00:02"]
        ordered = sorted(made)
        assert _walk(c, sort_key="address") == ordered
        assert _walk(c, sort_key="address", sort_dir="desc") == ordered[::-1]
        assert _walk(c) == made
        assert _walk(c, sort_dir="desc") == made[::-1]
        # A sort key many ports share (updated_at: NULL until patched, then equal times on some):
        # ties go by id in the sort's direction, NULLs lowest, and no port is lost or repeated.
        for address in ("52:54:00:dd:00:04", "52:54:00:dd:00:05"):
            make_port(c, n2, address)
        made += ["52:54:00:dd:00:04", "52:54:00:dd:00:05"]
        listed = {p["address"]: p["uuid"] for p in c.get(PORTS).json()["ports"]}
        patch = [{"op": "add", "path": "/extra/a", "value": 1}]
        assert c.patch(f"{PORTS}/{listed['52:54:00:dd:00:01']}", json=patch).status_code == 200
        never_patched = [a for a in made if a != "52:54:00:dd:00:01"]
        assert _walk(c, sort_key="updated_at") == never_patched + ["52:54:00:dd:00:01"]
        assert _walk(c, sort_key="updated_at", sort_dir="desc") == ["52:54:00:dd:00:01"] + never_patched[::-1]
        # Paging by node: the same walk inside one node's ports.
        assert _walk(c, sort_key="address", node_uuid=n1) == ordered


def test_paging_follows_any_sort_key(cloud: Cloud) -> None:
    _paging_follows_any_sort_key(cloud)


@pytest.mark.postgres
def test_paging_follows_any_sort_key_on_postgresql(pg_cloud: Cloud) -> None:
    _paging_follows_any_sort_key(pg_cloud)


@pytest.mark.postgres
def test_patches_moving_ports_both_ways_do_not_deadlock(pg_cloud: Cloud) -> None:
    """Port 1 goes A→B→A… while port 2 goes B→A→B…: each patch locks both nodes in id order
    before its port, so they queue instead of deadlocking (PostgreSQL would abort one)."""
    with ironic(pg_cloud) as c:
        a, b = enroll(c, "dla")["uuid"], enroll(c, "dlb")["uuid"]
        p1 = make_port(c, a, "52:54:00:ee:00:01")["uuid"]
        p2 = make_port(c, b, "52:54:00:ee:00:02")["uuid"]

    def shuttle(port: str, nodes: tuple[str, str]) -> list[int]:
        with ironic(pg_cloud) as client:
            return [
                client.patch(
                    f"{PORTS}/{port}", json=[{"op": "replace", "path": "/node_uuid", "value": nodes[i % 2]}]
                ).status_code
                for i in range(40)
            ]

    with ThreadPoolExecutor(2) as pool:
        one, two = pool.submit(shuttle, p1, (b, a)), pool.submit(shuttle, p2, (a, b))
        statuses = one.result() + two.result()
    assert statuses == [200] * 80
    with ironic(pg_cloud) as c:
        # Each port made an even number of moves: both are home again.
        assert c.get(f"{PORTS}/{p1}").json()["node_uuid"] == a
        assert c.get(f"{PORTS}/{p2}").json()["node_uuid"] == b
