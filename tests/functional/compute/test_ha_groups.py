"""HA groups over failure domains through the compute API, with in-process fake agents that
report their rack (`kumo agent --rack`): hard spread, soft spread with its event, rule
validation, labels through os-kumo-host-labels, and moves that would break a hard group."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kumo.compute.server_groups import SPREAD_NOT_HONOURED_EVENT
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.test_servers import _create, _server, _setup, _wait_status

API = "/compute/v2.1"
MV = "2.64"
RACKS = {"h1": "r1", "h2": "r1", "h3": "r2", "h4": "r2"}


def _group(c: httpx.Client, policy: str, **rules: Any) -> str:
    body: dict[str, Any] = {"name": f"ha-{policy}", "policy": policy}
    if rules:
        body["rules"] = rules
    resp = c.post(f"{API}/os-server-groups", json={"server_group": body})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["server_group"]["id"])


def _settle(c: httpx.Client, ids: list[str]) -> list[dict[str, Any]]:
    return [wait_for(lambda i=i: (s := _server(c, i))["status"] in ("ACTIVE", "ERROR") and s) for i in ids]


def _racked_fleet(fleet: Fleet) -> None:
    for host, rack in RACKS.items():
        fleet.add(host, rack=rack, region="RegionOne")


def _wait_labels(c: httpx.Client) -> None:
    def labelled() -> bool:
        rows = c.get(f"{API}/os-kumo-host-labels").json()["host_labels"]
        return {r["host"]: r["rack"] for r in rows} == RACKS

    wait_for(labelled)


@pytest.mark.parametrize(
    ("rules", "status", "message"),
    [
        ({"failure_domain": "rack"}, 200, None),
        ({"failure_domain": "rack", "max_server_per_host": "2"}, 200, None),
        ({"failure_domain": "row"}, 400, "'row' is not one of ['host', 'rack', 'az', 'region']"),
        ({"failure": "rack"}, 400, "Additional properties are not allowed"),
    ],
)
def test_failure_domain_rule_validation(
    cloud: Cloud, rules: dict[str, Any], status: int, message: str | None
) -> None:
    with cloud.client(microversion=MV) as c:
        resp = c.post(
            f"{API}/os-server-groups",
            json={"server_group": {"name": "g", "policy": "anti-affinity", "rules": rules}},
        )
        assert resp.status_code == status, resp.text
        if message is None:
            group = resp.json()["server_group"]
            assert group["rules"]["failure_domain"] == "rack"
            assert group["rules"].get("max_server_per_host", 2) == 2
        else:
            assert message in resp.json()["badRequest"]["message"]


def test_failure_domain_rule_for_every_policy_but_max_per_host_only_for_spreads(cloud: Cloud) -> None:
    with cloud.client(microversion=MV) as c:
        for policy in ("affinity", "soft-affinity", "anti-affinity", "soft-anti-affinity"):
            _group(c, policy, failure_domain="az")
        resp = c.post(
            f"{API}/os-server-groups",
            json={"server_group": {"name": "g", "policy": "affinity", "rules": {"max_server_per_host": 2}}},
        )
        assert resp.status_code == 400
        assert resp.json()["badRequest"]["message"] == "Only anti-affinity policy supports rules."


def test_host_labels_api_is_admin_only_and_validates(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("h1", rack="r1")
    from tests.functional.compute.helpers import demo_token

    with cloud.client() as c:
        wait_for(lambda: c.get(f"{API}/os-kumo-host-labels").json()["host_labels"])
        resp = c.put(f"{API}/os-kumo-host-labels/h1", json={"labels": {"region": "RegionTwo"}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["host_labels"] == {
            "host": "h1",
            "rack": "r1",
            "region": "RegionTwo",
            "availability_zone": "nova",
        }
        assert c.put(f"{API}/os-kumo-host-labels/h1", json={"labels": {"row": "x"}}).status_code == 400
        assert c.put(f"{API}/os-kumo-host-labels/nope", json={"labels": {"rack": "x"}}).status_code == 404
        cleared = c.put(f"{API}/os-kumo-host-labels/h1", json={"labels": {"rack": None}})
        assert cleared.json()["host_labels"]["rack"] is None
    with cloud.client(token=demo_token(cloud)) as c:
        assert c.get(f"{API}/os-kumo-host-labels").status_code == 403


def test_hard_rack_spread_never_shares_a_rack(cloud: Cloud, fleet: Fleet) -> None:
    _racked_fleet(fleet)
    with cloud.client(microversion=MV) as c:
        _wait_labels(c)
        flavor, image = _setup(c)
        gid = _group(c, "anti-affinity", failure_domain="rack")
        finals = _settle(c, [_create(c, flavor, image, hints={"group": gid}) for _ in range(3)])
        active = [s for s in finals if s["status"] == "ACTIVE"]
        assert sorted(RACKS[s["OS-EXT-SRV-ATTR:host"]] for s in active) == ["r1", "r2"]
        (failed,) = [s for s in finals if s["status"] == "ERROR"]
        assert "ServerGroupAntiAffinityFilter" in failed["fault"]["message"]


def test_soft_rack_spread_places_all_and_says_when_it_could_not_spread(cloud: Cloud, fleet: Fleet) -> None:
    _racked_fleet(fleet)
    with cloud.client(microversion=MV) as c:
        _wait_labels(c)
        flavor, image = _setup(c)
        gid = _group(c, "soft-anti-affinity", failure_domain="rack")
        ids = []
        for _ in range(3):  # one at a time, so each sees the previous one placed
            ids.append(_create(c, flavor, image, hints={"group": gid}))
            _wait_status(c, ids[-1], "ACTIVE")
        racks = [RACKS[_server(c, i)["OS-EXT-SRV-ATTR:host"]] for i in ids]
        assert sorted(racks[:2]) == ["r1", "r2"]
        for n, sid in enumerate(ids):
            req = c.get(f"{API}/servers/{sid}/os-instance-actions").json()["instanceActions"][0]["request_id"]
            events = c.get(f"{API}/servers/{sid}/os-instance-actions/{req}").json()["instanceAction"][
                "events"
            ]
            names = [e["event"] for e in events]
            assert (SPREAD_NOT_HONOURED_EVENT in names) == (n == 2), names


def test_a_move_that_would_break_a_hard_rack_group_is_refused(cloud: Cloud, fleet: Fleet) -> None:
    _racked_fleet(fleet)
    with cloud.client(microversion=MV) as c:
        _wait_labels(c)
        flavor, image = _setup(c)
        gid = _group(c, "anti-affinity", failure_domain="rack")
        first = _create(c, flavor, image, hints={"group": gid}, availability_zone="nova:h1")
        _wait_status(c, first, "ACTIVE")
        second = _create(c, flavor, image, hints={"group": gid})
        assert _wait_status(c, second, "ACTIVE")["OS-EXT-SRV-ATTR:host"] in ("h3", "h4")
        mv = {"OpenStack-API-Version": "compute 2.56"}
        for body in (
            {"migrate": {"host": "h3"}},
            {"os-migrateLive": {"host": "h4", "block_migration": "auto"}},
        ):
            resp = c.post(f"{API}/servers/{first}/action", json=body, headers=mv)
            assert resp.status_code == 400, resp.text
            assert "ServerGroupAntiAffinityFilter" in resp.json()["badRequest"]["message"]
        # Unnamed destination: the scheduler only offers the member's own rack.
        resp = c.post(f"{API}/servers/{first}/action", json={"migrate": None}, headers=mv)
        assert resp.status_code == 202, resp.text
        assert (
            wait_for(lambda: (s := _server(c, first))["status"] == "VERIFY_RESIZE" and s)[
                "OS-EXT-SRV-ATTR:host"
            ]
            == "h2"
        )
