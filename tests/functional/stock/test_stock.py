"""Stock through the API: public stock aggregates, the request → approve/reject workflow, and
private stock isolation in both directions, with fake agents as the machines (baremetal nodes
are hosts too), on SQLite; racing approvals on PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.helpers import demo_token, project_id
from tests.functional.compute.test_servers import _create, _server, _setup

API = "/compute/v2.1"
STOCK = f"{API}/os-kumo-stock-requests"


def stock_cloud(cloud: Cloud, fleet: Fleet, machines: int = 3) -> dict[str, str]:
    """Machines m1..mN in the public stock of flavor bm.small; v1 an ordinary VM host."""
    for n in range(1, machines + 1):
        fleet.add(f"m{n}", vcpus=4, memory_mb=8192)  # one bm.small (7000 MB) each, like a node
    fleet.add("v1")
    with cloud.client(microversion="2.64") as c:
        wait_for(lambda: len(c.get(f"{API}/os-hypervisors").json()["hypervisors"]) == machines + 1)
        flavor = c.post(
            f"{API}/flavors", json={"flavor": {"name": "bm.small", "vcpus": 4, "ram": 7000, "disk": 10}}
        )
        assert flavor.status_code == 200, flavor.text
        fid = flavor.json()["flavor"]["id"]
        # As a node's CUSTOM_<CLASS> would: only stock machines fit (fake agents report VCPU only).
        specs = {"extra_specs": {"aggregate_instance_extra_specs:baremetal": "true"}}
        assert c.post(f"{API}/flavors/{fid}/os-extra_specs", json=specs).status_code == 200
        agg = c.post(f"{API}/os-aggregates", json={"aggregate": {"name": "bm.small"}}).json()["aggregate"]
        metadata = {"baremetal": "true", "filter_flavor_id": fid, "bm.small": "true"}
        assert c.post(
            f"{API}/os-aggregates/{agg['id']}/action", json={"set_metadata": {"metadata": metadata}}
        ).is_success
        for n in range(1, machines + 1):
            added = c.post(f"{API}/os-aggregates/{agg['id']}/action", json={"add_host": {"host": f"m{n}"}})
            assert added.status_code == 200, added.text
        return {"flavor": fid, "public": str(agg["id"]), "demo": project_id(c, "demo")}


def _request(c: httpx.Client, count: int, flavor: str = "bm.small") -> dict[str, Any]:
    resp = c.post(STOCK, json={"stock_request": {"flavor": flavor, "count": count, "reason": "db cluster"}})
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["stock_request"])


def _act(c: httpx.Client, rid: str, body: dict[str, Any]) -> httpx.Response:
    return c.post(f"{STOCK}/{rid}/action", json=body)


def _aggregate(c: httpx.Client, name: str) -> dict[str, Any]:
    return next(a for a in c.get(f"{API}/os-aggregates").json()["aggregates"] if a["name"] == name)


def test_request_approve_reject_and_private_stock_isolation(cloud: Cloud, fleet: Fleet) -> None:
    ids = stock_cloud(cloud, fleet)
    demo = cloud.client(token=demo_token(cloud), microversion="2.64")
    admin = cloud.client(microversion="2.64")
    with demo, admin:
        req = _request(demo, 2)
        assert (req["status"], req["count"], req["flavor_id"], req["hosts"]) == (
            "pending",
            2,
            ids["flavor"],
            [],
        )
        assert [r["id"] for r in demo.get(STOCK).json()["stock_requests"]] == [req["id"]]
        assert admin.get(STOCK).json()["stock_requests"] == []  # admin's own project
        assert (
            len(admin.get(STOCK, params={"all_projects": "1", "status": "pending"}).json()["stock_requests"])
            == 1
        )
        forbidden = _act(demo, req["id"], {"approve": None})
        assert forbidden.status_code == 403 and "forbidden" in forbidden.json()

        approved = _act(admin, req["id"], {"approve": None})
        assert approved.status_code == 200, approved.text
        body = approved.json()["stock_request"]
        private_name = f"bm.small.{ids['demo']}"
        assert (body["status"], body["hosts"], body["aggregate"]) == ("approved", ["m1", "m2"], private_name)
        again = _act(admin, req["id"], {"approve": None})
        assert again.status_code == 200 and again.json()["stock_request"]["hosts"] == ["m1", "m2"]
        assert _act(admin, req["id"], {"reject": {"reason": "late"}}).status_code == 409

        private = _aggregate(admin, private_name)
        assert sorted(private["hosts"]) == ["m1", "m2"]
        assert private["metadata"] == {
            "bm.small": "true",
            "baremetal": "true",
            "filter_flavor_id": ids["flavor"],
            "filter_tenant_id": ids["demo"],
        }
        assert _aggregate(admin, "bm.small")["hosts"] == ["m3"]

        # Asking for more than the public stock holds moves nothing and stays pending.
        short = _request(demo, 2)
        refused = _act(admin, short["id"], {"approve": None})
        assert refused.status_code == 409
        assert "Only 1 of 2" in refused.json()["conflictingRequest"]["message"]
        assert demo.get(f"{STOCK}/{short['id']}").json()["stock_request"]["status"] == "pending"
        assert _aggregate(admin, "bm.small")["hosts"] == ["m3"]
        rejected = _act(admin, short["id"], {"reject": {"reason": "no budget"}}).json()["stock_request"]
        assert (rejected["status"], rejected["decision_reason"]) == ("rejected", "no budget")
        assert _act(admin, short["id"], {"approve": None}).status_code == 409

        # Isolation both ways: demo's bm.small lands only in its private stock, admin's only in
        # public stock; a VM flavor never lands on stock.
        _, image = _setup(admin)
        mine = [_create(demo, ids["flavor"], image) for _ in range(2)]
        theirs = _create(admin, ids["flavor"], image)
        placed = {
            sid: wait_for(lambda sid=sid: (s := _server(admin, sid))["status"] == "ACTIVE" and s)[
                "OS-EXT-SRV-ATTR:host"
            ]
            for sid in [*mine, theirs]
        }
        assert sorted(placed[s] for s in mine) == ["m1", "m2"]
        assert placed[theirs] == "m3"
        full = _create(demo, ids["flavor"], image)  # private stock full: no public stock for demo
        failed = wait_for(lambda: (s := _server(admin, full))["status"] == "ERROR" and s)
        assert "StockFilter" in failed["fault"]["message"]
        vm = admin.post(
            f"{API}/flavors", json={"flavor": {"name": "vm.small", "vcpus": 1, "ram": 512, "disk": 1}}
        )
        vm_server = _create(demo, vm.json()["flavor"]["id"], image)
        assert (
            wait_for(lambda: (s := _server(admin, vm_server))["status"] == "ACTIVE" and s)[
                "OS-EXT-SRV-ATTR:host"
            ]
            == "v1"
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"stock_request": {"flavor": "bm.small", "count": 0, "reason": "x"}}, "count"),
        ({"stock_request": {"flavor": "nope", "count": 1, "reason": "x"}}, "Flavor nope could not be found."),
        ({"stock_request": {"flavor": "bm.small", "count": 1}}, "'reason' is a required property"),
        (
            {"stock_request": {"flavor": "bm.small", "count": 1, "reason": "x", "az": "a"}},
            "Additional properties",
        ),
    ],
)
def test_bad_requests(cloud: Cloud, body: dict[str, Any], message: str) -> None:
    with cloud.client() as c:
        c.post(f"{API}/flavors", json={"flavor": {"name": "bm.small", "vcpus": 1, "ram": 512, "disk": 1}})
        resp = c.post(STOCK, json=body)
        assert resp.status_code == 400
        assert message in resp.json()["badRequest"]["message"]
        assert c.get(f"{STOCK}/nope").json()["itemNotFound"]["code"] == 404
        assert c.post(f"{STOCK}/x/action", json={"frobnicate": None}).status_code == 400


@pytest.mark.postgres
def test_racing_approvals_never_move_a_host_twice(pg_cloud: Cloud, pg_fleet: Fleet) -> None:
    """Eight requests for two machines each race for five machines, each approved by two
    admins at once: the same request approved twice moves once, and every host moves once."""
    stock_cloud(pg_cloud, pg_fleet, machines=5)
    with pg_cloud.client(token=demo_token(pg_cloud)) as demo:
        requests = [_request(demo, 2)["id"] for _ in range(8)]
    results: dict[str, list[int]] = {rid: [] for rid in requests}
    barrier = threading.Barrier(len(requests) * 2)

    def approve(rid: str) -> None:
        with pg_cloud.client() as c:
            barrier.wait()
            results[rid].append(_act(c, rid, {"approve": None}).status_code)

    threads = [threading.Thread(target=approve, args=(rid,)) for rid in requests for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pg_cloud.client() as c:
        rows = c.get(STOCK, params={"all_projects": "1"}).json()["stock_requests"]
        approved = [r for r in rows if r["status"] == "approved"]
        assert len(approved) == 2  # five machines, two per request
        moved = [h for r in approved for h in r["hosts"]]
        assert len(moved) == len(set(moved)) == 4
        for r in rows:
            codes = sorted(results[r["id"]])
            assert codes == ([200, 200] if r["status"] == "approved" else [409, 409]), (r, codes)
        private = _aggregate(c, approved[0]["aggregate"])
        assert sorted(private["hosts"]) == sorted(moved)
        assert _aggregate(c, "bm.small")["hosts"] == sorted(set(f"m{n}" for n in range(1, 6)) - set(moved))


def test_a_private_flavor_not_shared_with_the_project_cannot_be_requested(cloud: Cloud) -> None:
    with cloud.client() as admin, cloud.client(token=demo_token(cloud)) as demo:
        body = {
            "flavor": {
                "name": "bm.secret",
                "vcpus": 1,
                "ram": 512,
                "disk": 1,
                "os-flavor-access:is_public": False,
            }
        }
        secret = admin.post(f"{API}/flavors", json=body).json()["flavor"]["id"]
        ask = {"stock_request": {"flavor": "bm.secret", "count": 1, "reason": "x"}}
        refused = demo.post(STOCK, json=ask)
        assert (
            refused.status_code == 400
            and "bm.secret could not be found" in refused.json()["badRequest"]["message"]
        )
        share = {"addTenantAccess": {"tenant": project_id(admin, "demo")}}
        assert admin.post(f"{API}/flavors/{secret}/action", json=share).status_code == 200
        assert demo.post(STOCK, json=ask).status_code == 200


def test_private_stock_of_one_flavor_leaves_public_stock_of_others_open(cloud: Cloud, fleet: Fleet) -> None:
    stock_cloud(cloud, fleet, machines=1)
    fleet.add("x1", vcpus=4, memory_mb=8192)
    with cloud.client(microversion="2.64") as admin, cloud.client(token=demo_token(cloud)) as demo:
        wait_for(lambda: len(admin.get(f"{API}/os-hypervisors").json()["hypervisors"]) == 3)
        other = admin.post(
            f"{API}/flavors", json={"flavor": {"name": "bm.other", "vcpus": 4, "ram": 7000, "disk": 10}}
        )
        oid = other.json()["flavor"]["id"]
        specs = {"extra_specs": {"aggregate_instance_extra_specs:baremetal": "true"}}
        admin.post(f"{API}/flavors/{oid}/os-extra_specs", json=specs)
        agg = admin.post(f"{API}/os-aggregates", json={"aggregate": {"name": "bm.other"}}).json()["aggregate"]
        action = f"{API}/os-aggregates/{agg['id']}/action"
        admin.post(
            action, json={"set_metadata": {"metadata": {"baremetal": "true", "filter_flavor_id": oid}}}
        )
        admin.post(action, json={"add_host": {"host": "x1"}})
        rid = _request(demo, 1)["id"]
        assert _act(admin, rid, {"approve": None}).json()["stock_request"]["hosts"] == ["m1"]
        _, image = _setup(admin)
        sid = _create(demo, oid, image)  # demo's private stock is bm.small only
        assert (
            wait_for(lambda: (s := _server(admin, sid))["status"] == "ACTIVE" and s)["OS-EXT-SRV-ATTR:host"]
            == "x1"
        )


@pytest.mark.postgres
def test_approval_racing_server_creates_never_hands_over_a_busy_host(
    pg_cloud: Cloud, pg_fleet: Fleet
) -> None:
    """Admin boots three bm.small servers on public stock while an approval moves three of
    the six machines to demo's private stock: no moved machine may hold one of those servers."""
    ids = stock_cloud(pg_cloud, pg_fleet, machines=6)
    with pg_cloud.client(token=demo_token(pg_cloud)) as demo:
        rid = _request(demo, 3)["id"]
    with pg_cloud.client() as admin:
        _, image = _setup(admin)
    barrier = threading.Barrier(4)
    servers: list[str] = []
    outcome: list[int] = []

    def boot() -> None:
        with pg_cloud.client() as c:
            barrier.wait()
            servers.append(_create(c, ids["flavor"], image))

    def approve() -> None:
        with pg_cloud.client() as c:
            barrier.wait()
            outcome.append(_act(c, rid, {"approve": None}).status_code)

    threads = [threading.Thread(target=boot) for _ in range(3)] + [threading.Thread(target=approve)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pg_cloud.client() as admin:
        finals = [
            wait_for(lambda sid=sid: (s := _server(admin, sid))["status"] in ("ACTIVE", "ERROR") and s)
            for sid in servers
        ]
        private = _aggregate(admin, f"bm.small.{ids['demo']}")["hosts"] if outcome == [200] else []
        busy = {s["OS-EXT-SRV-ATTR:host"] for s in finals if s["status"] == "ACTIVE"}
        assert not busy & set(private), (busy, private)
        assert outcome in ([200], [409])
        assert len(private) in (0, 3)
