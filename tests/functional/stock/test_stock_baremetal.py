"""Stock and HA groups with real baremetal nodes (enrolled through /baremetal, deployed by a
conductor stand-in): only available nodes move on approval, the project's servers land on its
private nodes, and a hard rack group spreads nodes over racks taken from node properties."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import Cloud, wait_for
from tests.functional.baremetal.helpers import (
    bm_flavor,
    create_server,
    enroll,
    image,
    ironic,
    make_available,
    wait_server,
)
from tests.functional.baremetal.standin import StandInConductor
from tests.functional.compute.helpers import demo_token, project_id

API = "/compute/v2.1"
STOCK = f"{API}/os-kumo-stock-requests"
RACKS = {"n1": "r1", "n2": "r1", "n3": "r2", "n4": "r2"}


@pytest.fixture
def conductor(cloud: Cloud) -> Iterator[StandInConductor]:
    c = StandInConductor(cloud.url, cloud.settings.secret("agent_token")).start()
    yield c
    c.stop()


def _nodes(c: httpx.Client) -> dict[str, str]:
    """Four available nodes over two racks, and n5 enrolled but never made available."""
    uuids = {}
    for name, rack in RACKS.items():
        uuids[name] = enroll(c, name, rack=rack, region="g1")["uuid"]
        make_available(c, uuids[name])
    uuids["n5"] = enroll(c, "n5", rack="r3")["uuid"]
    return uuids


def _public_stock(c: httpx.Client, flavor: str, hosts: list[str]) -> None:
    agg = c.post(f"{API}/os-aggregates", json={"aggregate": {"name": "bm.small.public"}}).json()["aggregate"]
    action = f"{API}/os-aggregates/{agg['id']}/action"
    metadata = {"baremetal": "true", "filter_flavor_id": flavor, "bm.small": "true"}
    assert c.post(action, json={"set_metadata": {"metadata": metadata}}).status_code == 200
    for host in hosts:
        assert c.post(action, json={"add_host": {"host": host}}).status_code == 200, host


def test_approval_moves_available_nodes_and_the_project_lands_on_them(
    cloud: Cloud, conductor: StandInConductor
) -> None:
    with ironic(cloud) as admin, cloud.client(token=demo_token(cloud)) as demo:
        nodes = _nodes(admin)
        flavor, img = bm_flavor(admin), image(admin)
        _public_stock(admin, flavor, list(nodes.values()))
        asked = demo.post(STOCK, json={"stock_request": {"flavor": flavor, "count": 2, "reason": "db"}})
        rid = asked.json()["stock_request"]["id"]
        approved = admin.post(f"{STOCK}/{rid}/action", json={"approve": None}).json()["stock_request"]
        available = sorted(nodes[n] for n in RACKS)
        assert approved["hosts"] == available[:2]  # by host name (the node uuid)
        assert nodes["n5"] not in approved["hosts"]
        # Two available nodes left (n5 is not available): three cannot be granted.
        more = demo.post(STOCK, json={"stock_request": {"flavor": flavor, "count": 3, "reason": "more"}})
        refused = admin.post(f"{STOCK}/{more.json()['stock_request']['id']}/action", json={"approve": None})
        assert refused.status_code == 409, refused.text
        assert "Only 2 of 3" in refused.text, refused.text

        mine = [create_server(demo, flavor, img, name=f"mine{i}") for i in range(2)]
        placed = sorted(
            wait_server(admin, sid, "ACTIVE")["OS-EXT-SRV-ATTR:hypervisor_hostname"] for sid in mine
        )
        assert placed == approved["hosts"]
        theirs = create_server(admin, flavor, img, name="public")
        assert wait_server(admin, theirs, "ACTIVE")["OS-EXT-SRV-ATTR:hypervisor_hostname"] in available[2:]
        private = next(
            a
            for a in admin.get(f"{API}/os-aggregates").json()["aggregates"]
            if a["name"] == f"bm.small.{project_id(admin, 'demo')}"
        )
        assert sorted(private["hosts"]) == approved["hosts"]


def test_hard_rack_group_spreads_baremetal_servers(cloud: Cloud, conductor: StandInConductor) -> None:
    with ironic(cloud) as c:
        nodes = _nodes(c)
        rack_of = {uuid: RACKS.get(name) for name, uuid in nodes.items()}
        flavor, img = bm_flavor(c), image(c)
        group = c.post(
            f"{API}/os-server-groups",
            json={
                "server_group": {"name": "ha", "policy": "anti-affinity", "rules": {"failure_domain": "rack"}}
            },
            headers={"OpenStack-API-Version": "compute 2.64"},
        )
        gid = group.json()["server_group"]["id"]
        ids = []
        for i in range(3):
            body: dict[str, Any] = {
                "server": {"name": f"ha{i}", "flavorRef": flavor, "imageRef": img, "networks": "none"},
                "os:scheduler_hints": {"group": gid},
            }
            ids.append(c.post(f"{API}/servers", json=body).json()["server"]["id"])
            status = "ERROR" if i == 2 else "ACTIVE"
            wait_server(c, ids[-1], status)
        racks = [
            rack_of[wait_server(c, sid, "ACTIVE")["OS-EXT-SRV-ATTR:hypervisor_hostname"]] for sid in ids[:2]
        ]
        assert sorted(racks) == ["r1", "r2"]


ZONES = {"n1": "az1", "n2": "az2", "n3": "az1", "n4": "az2"}


@pytest.mark.parametrize(
    ("policy", "domain", "active", "domains"),
    [
        ("anti-affinity", "rack", 2, 2),
        ("anti-affinity", "az", 2, 2),
        ("soft-anti-affinity", "rack", 4, 2),  # every node used, two per rack
    ],
)
def test_twenty_concurrent_creates_into_a_group_of_nodes(
    cloud: Cloud, conductor: StandInConductor, policy: str, domain: str, active: int, domains: int
) -> None:
    with ironic(cloud) as c:
        uuids = {}
        for name, rack in RACKS.items():
            uuids[name] = enroll(c, name, rack=rack, availability_zone=ZONES[name])["uuid"]
            make_available(c, uuids[name])
        label = {uuids[n]: (RACKS[n] if domain == "rack" else ZONES[n]) for n in RACKS}
        admin_project = project_id(c, "admin")
        unlimited = {"quota_set": {"instances": -1, "cores": -1, "ram": -1}}
        assert c.put(f"{API}/os-quota-sets/{admin_project}", json=unlimited).status_code == 200
        flavor, img = bm_flavor(c), image(c)
        group = c.post(
            f"{API}/os-server-groups",
            json={"server_group": {"name": "ha", "policy": policy, "rules": {"failure_domain": domain}}},
            headers={"OpenStack-API-Version": "compute 2.64"},
        ).json()["server_group"]["id"]

        def create(n: int) -> str:
            body = {
                "server": {"name": f"s{n}", "flavorRef": flavor, "imageRef": img, "networks": "none"},
                "os:scheduler_hints": {"group": group},
            }
            resp = c.post(f"{API}/servers", json=body)
            assert resp.status_code == 202, resp.text
            return str(resp.json()["server"]["id"])

        with ThreadPoolExecutor(20) as pool:
            ids = list(pool.map(create, range(20)))

        def settled() -> list[dict[str, Any]] | None:
            rows = [c.get(f"{API}/servers/{sid}").json()["server"] for sid in ids]
            return rows if all(s["status"] in ("ACTIVE", "ERROR") for s in rows) else None

        servers = wait_for(settled, timeout=60, interval=0.3)
        placed = [label[s["OS-EXT-SRV-ATTR:hypervisor_hostname"]] for s in servers if s["status"] == "ACTIVE"]
        assert len(placed) == active
        assert len(set(placed)) == domains
        assert max(Counter(placed).values()) == active // domains  # as even as the nodes allow
