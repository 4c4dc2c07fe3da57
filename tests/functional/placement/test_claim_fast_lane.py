"""PUT /placement/allocations/{consumer} through the claim fast lane (kumo.placement.api.fast):
it carries out well-formed, authorized claims itself and hands everything else to the full
route, so every answer, errors included, is the one the full route gives."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from kumo.placement.api import fast
from tests.conftest import DEMO_PASSWORD, Cloud
from tests.functional.placement import test_placement_api
from tests.functional.placement.test_placement_api import make_provider

V = {"OpenStack-API-Version": "placement 1.35"}


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Consumers whose claim the fast lane carried out."""
    seen: list[str] = []
    real = fast._replace

    def spy(rt: Any, write: Any) -> None:
        seen.append(write.consumer)
        real(rt, write)

    monkeypatch.setattr(fast, "_replace", spy)
    yield seen


def _claim(rp: str, **extra: Any) -> dict[str, Any]:
    return {
        "allocations": {rp: {"resources": {"VCPU": 1}}},
        "project_id": "p",
        "user_id": "u",
        "consumer_generation": None,
        **extra,
    }


def _without_request_id(resp: httpx.Response) -> Any:
    try:
        body = resp.json()
    except ValueError:
        return resp.content
    for error in body.get("errors", []) if isinstance(body, dict) else []:
        error.pop("request_id", None)
    return body


def test_well_formed_claims_take_the_fast_lane(
    cloud: Cloud, placement: httpx.Client, taken: list[str]
) -> None:
    rp = make_provider(placement, "cn1", {"VCPU": {"total": 2}})
    consumer = str(uuid.uuid4())
    resp = placement.put(f"/allocations/{consumer}", json=_claim(rp))
    assert resp.status_code == 204, resp.text
    assert resp.headers["openstack-api-version"] == "placement 1.35"
    assert resp.headers["x-openstack-request-id"].startswith("req-")
    assert taken == [consumer]
    got = placement.get(f"/allocations/{consumer}").json()
    assert got["allocations"][rp]["resources"] == {"VCPU": 1} and got["consumer_generation"] == 1

    # Domain errors are answered by the fast lane in Placement's error format.
    stale = placement.put(f"/allocations/{consumer}", json=_claim(rp))  # null generation is stale now
    assert stale.status_code == 409
    assert stale.json()["errors"][0]["code"] == "placement.concurrent_update"
    assert stale.headers["openstack-api-version"] == "placement 1.35"
    over = placement.put(
        f"/allocations/{uuid.uuid4()}", json=_claim(rp, allocations={rp: {"resources": {"VCPU": 2}}})
    )
    assert over.status_code == 409 and "capacity" in over.json()["errors"][0]["detail"]
    assert len(taken) == 3

    # An older microversion's body shape goes through the lane too (1.0: a list, no owner).
    old = str(uuid.uuid4())
    body = {"allocations": [{"resource_provider": {"uuid": rp}, "resources": {"VCPU": 1}}]}
    resp = httpx.put(
        f"{cloud.url}/placement/allocations/{old}", json=body, headers={"X-Auth-Token": cloud.token()}
    )
    assert resp.status_code == 204 and "openstack-api-version" in resp.headers
    assert taken[-1] == old


def _requests(cloud: Cloud, rp: str) -> list[tuple[str, dict[str, str], bytes]]:
    """(consumer, headers, body) the fast lane leaves to the full route."""
    admin, demo = cloud.token(), cloud.token("demo", DEMO_PASSWORD, "demo")
    good = httpx.Request("PUT", "http://x", json=_claim(rp)).content
    json_type = {"Content-Type": "application/json"}
    return [
        ("no token", {**V, **json_type}, good),
        ("bad token", {**V, **json_type, "X-Auth-Token": "nope"}, good),
        ("not admin", {**V, **json_type, "X-Auth-Token": demo}, good),
        ("bad version", {"OpenStack-API-Version": "placement 1.x", **json_type, "X-Auth-Token": admin}, good),
        ("too new", {"OpenStack-API-Version": "placement 1.99", **json_type, "X-Auth-Token": admin}, good),
        ("not json", {**V, **json_type, "X-Auth-Token": admin}, b"{nope"),
        ("a list", {**V, **json_type, "X-Auth-Token": admin}, b"[1]"),
        ("empty", {**V, **json_type, "X-Auth-Token": admin}, b""),
        ("text", {**V, "Content-Type": "text/plain", "X-Auth-Token": admin}, good),
        ("invalid", {**V, **json_type, "X-Auth-Token": admin}, b'{"allocations": {}}'),
        ("bad consumer", {**V, **json_type, "X-Auth-Token": admin}, good),
    ]


def test_everything_else_gets_the_full_routes_answer(
    cloud: Cloud, placement: httpx.Client, taken: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rp = make_provider(placement, "cn1", {"VCPU": {"total": 8}})

    def send(label: str, headers: dict[str, str], body: bytes) -> httpx.Response:
        consumer = "not-a-uuid" if label == "bad consumer" else str(uuid.UUID(int=len(label)))
        return httpx.put(f"{cloud.url}/placement/allocations/{consumer}", headers=headers, content=body)

    requests = _requests(cloud, rp)
    through_lane = [send(*r) for r in requests]
    assert taken == []  # none of them was carried out by the lane
    monkeypatch.setattr(fast, "_take", lambda *_: None)  # the lane off: the full route alone
    full_route = [send(*r) for r in requests]
    for (label, _, _), lane, full in zip(requests, through_lane, full_route, strict=True):
        assert lane.status_code == full.status_code and lane.status_code >= 400, label
        assert _without_request_id(lane) == _without_request_id(full), label
        assert lane.headers.get("openstack-api-version") == full.headers.get("openstack-api-version"), label


@pytest.fixture
def pg_placement(pg_cloud: Cloud) -> Iterator[httpx.Client]:
    client = httpx.Client(
        base_url=f"{pg_cloud.url}/placement",
        headers={"X-Auth-Token": pg_cloud.token(), **V},
        timeout=30,
    )
    yield client
    client.close()


def test_postgresql_claims_run_on_the_event_loop_and_never_overcommit(
    pg_placement: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the lane carries out the claims through the database's store: concurrent
    claims on one provider take exactly its capacity, the rest get 409s, and every answer keeps
    Placement's error format."""
    runs: list[int] = []
    real = fast._replace

    def spy(rt: Any, write: Any) -> None:
        runs.append(1)
        real(rt, write)

    monkeypatch.setattr(fast, "_replace", spy)
    rp = make_provider(pg_placement, "cn1", {"VCPU": {"total": 10}, "MEMORY_MB": {"total": 1024}})
    consumers = [str(uuid.uuid4()) for _ in range(40)]

    def claim(consumer: str) -> httpx.Response:
        return pg_placement.put(f"/allocations/{consumer}", json=_claim(rp))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(claim, consumers))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [204] * 10 + [409] * 30
    for a in answers:
        if a.status_code == 409:
            assert a.json()["errors"][0]["code"] in (
                "placement.undefined_code",
                "placement.concurrent_update",
            )
            assert a.headers["openstack-api-version"] == "placement 1.35"
    assert len(runs) == 40
    usages = pg_placement.get(f"/resource_providers/{rp}/usages").json()
    assert usages["usages"] == {"VCPU": 10, "MEMORY_MB": 0}
    assert usages["resource_provider_generation"] == 1 + 10  # inventory, then one per claim

    # Replacing, stale generations and removal through the same path.
    first = next(c for c, a in zip(consumers, answers, strict=True) if a.status_code == 204)
    moved = pg_placement.put(f"/allocations/{first}", json=_claim(rp, consumer_generation=1))
    assert moved.status_code == 204, moved.text
    stale = pg_placement.put(f"/allocations/{first}", json=_claim(rp, consumer_generation=1))
    assert stale.status_code == 409 and stale.json()["errors"][0]["code"] == "placement.concurrent_update"
    gone = pg_placement.put(
        f"/allocations/{first}", json={**_claim(rp, consumer_generation=2), "allocations": {}}
    )
    assert gone.status_code == 204
    assert pg_placement.get(f"/allocations/{first}").json() == {"allocations": {}}
    missing = pg_placement.put(f"/allocations/{uuid.uuid4()}", json=_claim(str(uuid.uuid4())))
    assert missing.status_code == 400 and "does not exist" in missing.json()["errors"][0]["detail"]


@pytest.mark.parametrize(
    "scenario",
    [
        test_placement_api.test_allocations_consumer_generation_and_capacity,
        test_placement_api.test_post_allocations_is_atomic,
        test_placement_api.test_reshaper_moves_allocations_atomically,
        test_placement_api.test_old_microversion_shapes,
        test_placement_api.test_inventories_and_generation_conflicts,
        test_placement_api.test_allocation_candidates,
    ],
)
def test_allocation_scenarios_on_postgresql(pg_placement: httpx.Client, scenario: Any) -> None:
    """Scenarios of test_placement_api (run there on SQLite) on PostgreSQL, where writes take
    the two-statement path (PUT through the lane's own connections, POST and the reshaper
    through the session) and the database builds the allocation candidates' body."""
    scenario(pg_placement)
