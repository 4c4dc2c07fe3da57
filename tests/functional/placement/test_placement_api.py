"""The Placement API over HTTP: shapes, microversions, generation conflicts and error codes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import DEMO_PASSWORD, Cloud

CONSUMER = "5d1c3f4e-9b1e-4d0a-8e53-3c8b3c1a0f11"
AGG1, AGG2 = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))


def make_provider(
    placement: httpx.Client, name: str, inventory: dict[str, Any] | None = None, **body: Any
) -> str:
    resp = placement.post("/resource_providers", json={"name": name, **body})
    assert resp.status_code == 200, resp.text
    rp = resp.json()["uuid"]
    if inventory:
        resp = placement.put(
            f"/resource_providers/{rp}/inventories",
            json={"resource_provider_generation": 0, "inventories": inventory},
        )
        assert resp.status_code == 200, resp.text
    return rp


def generation(placement: httpx.Client, rp: str) -> int:
    return int(placement.get(f"/resource_providers/{rp}").json()["generation"])


def error(resp: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()["errors"][0]
    assert body["status"] == resp.status_code
    assert body["request_id"].startswith("req-")
    return body


COMPUTE = {"VCPU": {"total": 8}, "MEMORY_MB": {"total": 4096, "reserved": 512}, "DISK_GB": {"total": 100}}


def test_root_document_and_microversions(cloud: Cloud, placement: httpx.Client) -> None:
    root = httpx.get(f"{cloud.url}/placement/")  # no token needed
    assert root.status_code == 200
    version = root.json()["versions"][0]
    assert (version["id"], version["min_version"], version["max_version"], version["status"]) == (
        "v1.0",
        "1.0",
        "1.35",
        "CURRENT",
    )
    assert root.headers["openstack-api-version"] == "placement 1.0"

    # osc-placement negotiates with 1.29: accepted as is.
    resp = placement.get("/", headers={"OpenStack-API-Version": "placement 1.29"})
    assert resp.headers["openstack-api-version"] == "placement 1.29"
    resp = placement.get("/resource_providers", headers={"OpenStack-API-Version": "placement 1.99"})
    assert resp.status_code == 406
    assert (error(resp)["max_version"], error(resp)["min_version"]) == ("1.35", "1.0")
    assert placement.get("/", headers={"OpenStack-API-Version": "placement 1.x"}).status_code == 400
    latest = placement.get("/", headers={"OpenStack-API-Version": "placement latest"})
    assert latest.headers["openstack-api-version"] == "placement 1.35"
    # Handlers that do not exist yet at a version are 404, as in Placement.
    assert (
        placement.get("/usages?project_id=x", headers={"OpenStack-API-Version": "placement 1.8"}).status_code
        == 404
    )
    assert placement.get("/traits", headers={"OpenStack-API-Version": "placement 1.5"}).status_code == 404


def test_admin_only(cloud: Cloud) -> None:
    token = cloud.token("demo", DEMO_PASSWORD, "demo")
    resp = httpx.get(f"{cloud.url}/placement/resource_providers", headers={"X-Auth-Token": token})
    assert resp.status_code == 403
    assert "errors" in resp.json()
    assert httpx.get(f"{cloud.url}/placement/resource_providers").status_code == 401


def test_provider_lifecycle(placement: httpx.Client) -> None:
    rp = make_provider(placement, "cn1")
    shown = placement.get(f"/resource_providers/{rp}").json()
    assert shown["name"] == "cn1" and shown["generation"] == 0
    assert shown["root_provider_uuid"] == rp and shown["parent_provider_uuid"] is None
    assert {link["rel"] for link in shown["links"]} == {
        "self",
        "inventories",
        "usages",
        "aggregates",
        "traits",
        "allocations",
    }
    dup = placement.post("/resource_providers", json={"name": "cn1"})
    assert dup.status_code == 409 and error(dup)["code"] == "placement.duplicate_name"
    old = placement.post(
        "/resource_providers", json={"name": "old"}, headers={"OpenStack-API-Version": "placement 1.19"}
    )
    assert old.status_code == 201 and old.headers["location"].startswith("/resource_providers/")

    child = make_provider(placement, "cn1-numa0", parent_provider_uuid=rp)
    assert placement.get(f"/resource_providers/{child}").json()["root_provider_uuid"] == rp
    tree = placement.get(f"/resource_providers?in_tree={child}").json()["resource_providers"]
    assert sorted(p["uuid"] for p in tree) == sorted([rp, child])
    resp = placement.delete(f"/resource_providers/{rp}")
    assert (
        resp.status_code == 409 and error(resp)["code"] == "placement.resource_provider.cannot_delete_parent"
    )

    renamed = placement.put(f"/resource_providers/{child}", json={"name": "numa0"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "numa0"
    assert placement.delete(f"/resource_providers/{child}").status_code == 204
    assert placement.get(f"/resource_providers/{child}").status_code == 404
    assert placement.post("/resource_providers", json={"name": "x", "bogus": 1}).status_code == 400
    assert placement.post("/resource_providers", json={"name": "x", "uuid": "nope"}).status_code == 400


def test_inventories_and_generation_conflicts(placement: httpx.Client) -> None:
    rp = make_provider(placement, "cn1", COMPUTE)
    body = placement.get(f"/resource_providers/{rp}/inventories").json()
    assert body["resource_provider_generation"] == 1
    assert body["inventories"]["MEMORY_MB"] == {
        "total": 4096,
        "reserved": 512,
        "min_unit": 1,
        "max_unit": 2147483647,
        "step_size": 1,
        "allocation_ratio": 1.0,
    }
    stale = placement.put(
        f"/resource_providers/{rp}/inventories",
        json={"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 4}}},
    )
    assert stale.status_code == 409 and error(stale)["code"] == "placement.concurrent_update"
    assert generation(placement, rp) == 1

    one = placement.put(
        f"/resource_providers/{rp}/inventories/VCPU",
        json={"resource_provider_generation": 1, "total": 16, "allocation_ratio": 2.0},
    )
    assert one.status_code == 200 and one.json()["resource_provider_generation"] == 2
    assert placement.get(f"/resource_providers/{rp}/inventories/VCPU").json()["total"] == 16
    bad = placement.put(
        f"/resource_providers/{rp}/inventories/VCPU", json={"resource_provider_generation": 2, "total": 0}
    )
    assert bad.status_code == 400
    too_reserved = placement.put(
        f"/resource_providers/{rp}/inventories/VCPU",
        json={"resource_provider_generation": 2, "total": 4, "reserved": 5},
    )
    assert too_reserved.status_code == 400
    unknown = placement.put(
        f"/resource_providers/{rp}/inventories",
        json={"resource_provider_generation": 2, "inventories": {"CUSTOM_NOPE": {"total": 1}}},
    )
    assert unknown.status_code == 400

    # Inventory in use cannot go away.
    placement.put(
        f"/allocations/{CONSUMER}",
        json={
            "allocations": {rp: {"resources": {"DISK_GB": 10}}},
            "project_id": "p",
            "user_id": "u",
            "consumer_generation": None,
        },
    )
    gen = generation(placement, rp)
    busy = placement.delete(f"/resource_providers/{rp}/inventories/DISK_GB")
    assert busy.status_code == 409 and error(busy)["code"] == "placement.inventory.inuse"
    busy = placement.put(
        f"/resource_providers/{rp}/inventories",
        json={"resource_provider_generation": gen, "inventories": {"VCPU": {"total": 4}}},
    )
    assert busy.status_code == 409 and error(busy)["code"] == "placement.inventory.inuse"
    assert placement.delete(f"/resource_providers/{rp}/inventories/MEMORY_MB").status_code == 204
    in_use = placement.delete(f"/resource_providers/{rp}")
    assert in_use.status_code == 409 and error(in_use)["code"] == "placement.resource_provider.inuse"


def test_allocations_consumer_generation_and_capacity(placement: httpx.Client) -> None:
    rp = make_provider(placement, "cn1", COMPUTE)

    def put(
        resources: dict[str, int], consumer_generation: int | None, consumer: str = CONSUMER
    ) -> httpx.Response:
        return placement.put(
            f"/allocations/{consumer}",
            json={
                "allocations": {rp: {"resources": resources}},
                "project_id": "proj",
                "user_id": "user",
                "consumer_generation": consumer_generation,
            },
        )

    assert put({"VCPU": 2, "MEMORY_MB": 1024}, None).status_code == 204
    got = placement.get(f"/allocations/{CONSUMER}").json()
    assert got["consumer_generation"] == 1 and got["project_id"] == "proj"
    assert got["allocations"][rp] == {"generation": 2, "resources": {"MEMORY_MB": 1024, "VCPU": 2}}

    conflict = put({"VCPU": 4}, None)  # the consumer exists: null is stale
    assert conflict.status_code == 409 and error(conflict)["code"] == "placement.concurrent_update"
    assert put({"VCPU": 4}, 7).status_code == 409
    assert put({"VCPU": 4}, 1).status_code == 204
    assert placement.get(f"/allocations/{CONSUMER}").json()["consumer_generation"] == 2

    over = put({"VCPU": 9}, 2)  # capacity is 8
    assert over.status_code == 409 and "capacity" in error(over)["detail"]
    assert error(over)["code"] == "placement.undefined_code"
    memory_full = put({"MEMORY_MB": 3585}, None, str(uuid.uuid4()))  # (4096 - 512) - 0 < 3585
    assert memory_full.status_code == 409
    no_inventory = put({"CUSTOM_GPU": 1}, None, str(uuid.uuid4()))
    assert no_inventory.status_code in (400, 409)
    missing_rp = placement.put(
        f"/allocations/{uuid.uuid4()}",
        json={
            "allocations": {str(uuid.uuid4()): {"resources": {"VCPU": 1}}},
            "project_id": "p",
            "user_id": "u",
            "consumer_generation": None,
        },
    )
    assert missing_rp.status_code == 400

    usages = placement.get(f"/resource_providers/{rp}/usages").json()
    assert usages["usages"] == {"DISK_GB": 0, "MEMORY_MB": 0, "VCPU": 4}
    assert placement.get("/usages?project_id=proj").json()["usages"] == {"VCPU": 4}
    assert placement.get("/usages?project_id=proj&user_id=other").json()["usages"] == {}
    assert placement.get("/usages").status_code == 400
    on_rp = placement.get(f"/resource_providers/{rp}/allocations").json()
    assert on_rp["allocations"] == {CONSUMER: {"resources": {"VCPU": 4}, "consumer_generation": 2}}

    # Empty allocations at 1.28+ remove them (with the right generation); DELETE removes too.
    assert put({}, 2).status_code == 400  # resources must not be empty
    empty = placement.put(
        f"/allocations/{CONSUMER}",
        json={"allocations": {}, "project_id": "proj", "user_id": "user", "consumer_generation": 2},
    )
    assert empty.status_code == 204
    assert placement.get(f"/allocations/{CONSUMER}").json() == {"allocations": {}}
    assert placement.delete(f"/allocations/{CONSUMER}").status_code == 404
    assert put({"VCPU": 1}, None).status_code == 204
    assert placement.delete(f"/allocations/{CONSUMER}").status_code == 204


def test_post_allocations_is_atomic(placement: httpx.Client) -> None:
    rp = make_provider(placement, "cn1", {"VCPU": {"total": 4}})
    a, b = str(uuid.uuid4()), str(uuid.uuid4())

    def body(amount_b: int) -> dict[str, Any]:
        entry = {"project_id": "p", "user_id": "u", "consumer_generation": None}
        return {
            a: {"allocations": {rp: {"resources": {"VCPU": 2}}}, **entry},
            b: {"allocations": {rp: {"resources": {"VCPU": amount_b}}}, **entry},
        }

    assert placement.post("/allocations", json=body(3)).status_code == 409  # 2 + 3 > 4
    assert placement.get(f"/allocations/{a}").json() == {"allocations": {}}
    assert placement.post("/allocations", json=body(2)).status_code == 204
    assert placement.get(f"/resource_providers/{rp}/usages").json()["usages"] == {"VCPU": 4}


def test_old_microversion_shapes(placement: httpx.Client) -> None:
    rp = make_provider(placement, "cn1", COMPUTE)
    v17 = {"OpenStack-API-Version": "placement 1.7"}
    resp = placement.put(
        f"/allocations/{CONSUMER}",
        json={"allocations": [{"resource_provider": {"uuid": rp}, "resources": {"VCPU": 1}}]},
        headers=v17,
    )
    assert resp.status_code == 204
    got = placement.get(f"/allocations/{CONSUMER}", headers=v17).json()
    assert got == {"allocations": {rp: {"generation": 2, "resources": {"VCPU": 1}}}}
    shown = placement.get(
        f"/resource_providers/{rp}", headers={"OpenStack-API-Version": "placement 1.0"}
    ).json()
    assert "root_provider_uuid" not in shown
    assert {link["rel"] for link in shown["links"]} == {"self", "inventories", "usages"}
    cands = placement.get(
        "/allocation_candidates?resources=VCPU:1", headers={"OpenStack-API-Version": "placement 1.10"}
    )
    request = cands.json()["allocation_requests"][0]
    assert request == {"allocations": [{"resource_provider": {"uuid": rp}, "resources": {"VCPU": 1}}]}
    assert cands.json()["provider_summaries"][rp] == {"resources": {"VCPU": {"capacity": 8, "used": 1}}}


def test_aggregates_and_traits(placement: httpx.Client) -> None:
    rp = make_provider(placement, "cn1")
    resp = placement.put(
        f"/resource_providers/{rp}/aggregates", json={"aggregates": [AGG1], "resource_provider_generation": 0}
    )
    assert resp.status_code == 200 and resp.json() == {
        "aggregates": [AGG1],
        "resource_provider_generation": 1,
    }
    stale = placement.put(
        f"/resource_providers/{rp}/aggregates", json={"aggregates": [], "resource_provider_generation": 0}
    )
    assert stale.status_code == 409 and error(stale)["code"] == "placement.concurrent_update"
    old = placement.put(
        f"/resource_providers/{rp}/aggregates",
        json=[AGG1, AGG2],
        headers={"OpenStack-API-Version": "placement 1.1"},
    )
    assert old.json() == {"aggregates": sorted([AGG1, AGG2])}
    assert generation(placement, rp) == 1  # no bump before 1.19
    members = placement.get(f"/resource_providers?member_of=in:{AGG2},{uuid.uuid4()}").json()[
        "resource_providers"
    ]
    assert [p["uuid"] for p in members] == [rp]
    assert placement.get(f"/resource_providers?member_of=!{AGG2}").json()["resource_providers"] == []

    assert placement.put("/traits/CUSTOM_FAST").status_code == 201
    assert placement.put("/traits/CUSTOM_FAST").status_code == 204
    assert placement.put("/traits/NOT_CUSTOM").status_code == 400
    assert placement.get("/traits/CUSTOM_FAST").status_code == 204
    assert placement.get("/traits/CUSTOM_NOPE").status_code == 404
    assert "HW_CPU_X86_AVX2" in placement.get("/traits").json()["traits"]
    assert placement.get("/traits?name=startswith:CUSTOM_").json()["traits"] == ["CUSTOM_FAST"]

    set_traits = placement.put(
        f"/resource_providers/{rp}/traits",
        json={"traits": ["CUSTOM_FAST", "HW_CPU_X86_AVX2"], "resource_provider_generation": 1},
    )
    assert set_traits.json() == {
        "traits": ["CUSTOM_FAST", "HW_CPU_X86_AVX2"],
        "resource_provider_generation": 2,
    }
    stale = placement.put(
        f"/resource_providers/{rp}/traits", json={"traits": [], "resource_provider_generation": 1}
    )
    assert stale.status_code == 409 and error(stale)["code"] == "placement.concurrent_update"
    unknown = placement.put(
        f"/resource_providers/{rp}/traits",
        json={"traits": ["CUSTOM_NOPE"], "resource_provider_generation": 2},
    )
    assert unknown.status_code == 400
    assert placement.get("/traits?associated=true").json()["traits"] == ["CUSTOM_FAST", "HW_CPU_X86_AVX2"]
    assert placement.delete("/traits/CUSTOM_FAST").status_code == 409
    assert placement.delete("/traits/HW_CPU_X86_AVX2").status_code == 400
    assert placement.get("/resource_providers?required=CUSTOM_FAST,!HW_CPU_X86_SSE").json()[
        "resource_providers"
    ]
    assert placement.delete(f"/resource_providers/{rp}/traits").status_code == 204
    assert placement.get(f"/resource_providers/{rp}/traits").json()["traits"] == []
    assert placement.delete("/traits/CUSTOM_FAST").status_code == 204


def test_resource_classes(placement: httpx.Client) -> None:
    names = [rc["name"] for rc in placement.get("/resource_classes").json()["resource_classes"]]
    assert names[:3] == ["VCPU", "MEMORY_MB", "DISK_GB"]
    assert placement.post("/resource_classes", json={"name": "CUSTOM_GPU"}).status_code == 201
    assert placement.post("/resource_classes", json={"name": "CUSTOM_GPU"}).status_code == 409
    assert placement.post("/resource_classes", json={"name": "GPU"}).status_code == 400
    assert placement.put("/resource_classes/CUSTOM_FPGA").status_code == 201
    assert placement.put("/resource_classes/CUSTOM_FPGA").status_code == 204
    assert placement.get("/resource_classes/CUSTOM_GPU").json()["name"] == "CUSTOM_GPU"
    rp = make_provider(placement, "gpu", {"CUSTOM_GPU": {"total": 2}})
    assert placement.delete("/resource_classes/CUSTOM_GPU").status_code == 409
    assert placement.delete("/resource_classes/VCPU").status_code == 400
    assert placement.delete("/resource_classes/CUSTOM_FPGA").status_code == 204
    assert placement.get("/resource_classes/CUSTOM_FPGA").status_code == 404
    assert (
        placement.get("/resource_providers?resources=CUSTOM_GPU:2").json()["resource_providers"][0]["uuid"]
        == rp
    )
    assert placement.get("/resource_providers?resources=CUSTOM_GPU:3").json()["resource_providers"] == []
    assert placement.get("/resource_providers?resources=CUSTOM_NOPE:3").status_code == 400


def test_allocation_candidates(placement: httpx.Client) -> None:
    placement.put("/traits/CUSTOM_SSD")
    fast = make_provider(placement, "fast", COMPUTE)
    slow = make_provider(placement, "slow", COMPUTE)
    small = make_provider(placement, "small", {"VCPU": {"total": 1}, "MEMORY_MB": {"total": 4096}})
    placement.put(
        f"/resource_providers/{fast}/traits",
        json={"traits": ["CUSTOM_SSD"], "resource_provider_generation": 1},
    )
    placement.put(
        f"/resource_providers/{slow}/aggregates",
        json={"aggregates": [AGG1], "resource_provider_generation": 1},
    )

    def uuids(query: str, **headers: str) -> list[str]:
        resp = placement.get(f"/allocation_candidates?{query}", headers=headers)
        assert resp.status_code == 200, resp.text
        return [next(iter(r["allocations"])) for r in resp.json()["allocation_requests"]]

    assert uuids("resources=VCPU:2,MEMORY_MB:1024") == [fast, slow]
    assert uuids("resources=VCPU:1") == [fast, slow, small]
    assert uuids("resources=VCPU:1&limit=2") == [fast, slow]
    assert uuids("resources=VCPU:2&required=CUSTOM_SSD") == [fast]
    assert uuids("resources=VCPU:2&required=!CUSTOM_SSD") == [slow]
    assert uuids(f"resources=VCPU:2&member_of={AGG1}") == [slow]
    assert uuids(f"resources=VCPU:2&member_of=in:{AGG1},{AGG2}") == [slow]
    assert uuids(f"resources=VCPU:2&member_of=!{AGG1}") == [fast]
    assert uuids(f"resources=VCPU:1&in_tree={small}") == [small]
    assert uuids(f"resources=VCPU:1&in_tree={uuid.uuid4()}") == []
    assert uuids("resources=VCPU:1&root_required=CUSTOM_SSD") == [fast]
    assert uuids("resources=VCPU:1&resources1=MEMORY_MB:512&group_policy=none") == [fast, slow, small]
    assert uuids("resources1=VCPU:1&resources2=MEMORY_MB:512&group_policy=isolate") == []

    body = placement.get("/allocation_candidates?resources=VCPU:2&required=CUSTOM_SSD").json()
    assert body["allocation_requests"] == [
        {"allocations": {fast: {"resources": {"VCPU": 2}}}, "mappings": {"": [fast]}}
    ]
    assert body["provider_summaries"] == {
        fast: {
            "resources": {
                "DISK_GB": {"capacity": 100, "used": 0},
                "MEMORY_MB": {"capacity": 3584, "used": 0},
                "VCPU": {"capacity": 8, "used": 0},
            },
            "traits": ["CUSTOM_SSD"],
            "parent_provider_uuid": None,
            "root_provider_uuid": fast,
        }
    }
    # Before 1.27 only the requested classes are summarised; before 1.17 no traits.
    old = placement.get(
        "/allocation_candidates?resources=VCPU:2", headers={"OpenStack-API-Version": "placement 1.16"}
    )
    assert old.json()["provider_summaries"][fast] == {"resources": {"VCPU": {"capacity": 8, "used": 0}}}


@pytest.mark.parametrize(
    "query",
    [
        "",
        "resources=VCPU",
        "resources=VCPU:0",
        "resources=VCPU:1&limit=0",
        "resources=VCPU:1&bogus=1",
        "resources=CUSTOM_NOPE:1",
        "resources=VCPU:1&required=CUSTOM_NOPE",
        "resources=VCPU:1&required=CUSTOM_X,!CUSTOM_X",
        "resources=VCPU:1&member_of=not-a-uuid",
        "resources=VCPU:1&in_tree=nope",
        "resources1=VCPU:1&resources2=VCPU:1",
        "resources=VCPU:1&required1=HW_CPU_X86_AVX2",
        "resources=VCPU:1&group_policy=sometimes",
    ],
)
def test_allocation_candidates_bad_queries(placement: httpx.Client, query: str) -> None:
    resp = placement.get(f"/allocation_candidates?{query}")
    assert resp.status_code == 400, resp.text
    assert error(resp)["title"] == "Bad Request"


def test_reshaper_moves_allocations_atomically(placement: httpx.Client) -> None:
    root = make_provider(placement, "cn1", {"VCPU": {"total": 8}})
    child = make_provider(placement, "cn1-gpu", parent_provider_uuid=root)
    placement.put("/resource_classes/CUSTOM_VGPU")
    placement.put(
        f"/resource_providers/{root}/inventories",
        json={
            "resource_provider_generation": 1,
            "inventories": {"VCPU": {"total": 8}, "CUSTOM_VGPU": {"total": 2}},
        },
    )
    placement.put(
        f"/allocations/{CONSUMER}",
        json={
            "allocations": {root: {"resources": {"VCPU": 1, "CUSTOM_VGPU": 1}}},
            "project_id": "p",
            "user_id": "u",
            "consumer_generation": None,
        },
    )
    root_gen, child_gen = generation(placement, root), generation(placement, child)
    body = {
        "inventories": {
            root: {"inventories": {"VCPU": {"total": 8}}, "resource_provider_generation": root_gen},
            child: {"inventories": {"CUSTOM_VGPU": {"total": 2}}, "resource_provider_generation": child_gen},
        },
        "allocations": {
            CONSUMER: {
                "allocations": {root: {"resources": {"VCPU": 1}}, child: {"resources": {"CUSTOM_VGPU": 1}}},
                "project_id": "p",
                "user_id": "u",
                "consumer_generation": 1,
            }
        },
    }
    stale = {**body, "allocations": {CONSUMER: {**body["allocations"][CONSUMER], "consumer_generation": 0}}}
    assert placement.post("/reshaper", json=stale).status_code == 409
    assert placement.get(f"/resource_providers/{child}/inventories").json()["inventories"] == {}
    assert placement.post("/reshaper", json=body).status_code == 204
    moved = placement.get(f"/allocations/{CONSUMER}").json()["allocations"]
    assert moved[child]["resources"] == {"CUSTOM_VGPU": 1} and moved[root]["resources"] == {"VCPU": 1}


def test_inventory_conflict_on_postgresql(pg_cloud: Cloud) -> None:
    """Generation compare-and-swap and capacity on PostgreSQL too."""
    with httpx.Client(
        base_url=f"{pg_cloud.url}/placement",
        headers={"X-Auth-Token": pg_cloud.token(), "OpenStack-API-Version": "placement 1.35"},
    ) as placement:
        rp = make_provider(placement, "cn1", {"VCPU": {"total": 2}})
        stale = placement.put(
            f"/resource_providers/{rp}/inventories",
            json={"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 4}}},
        )
        assert stale.status_code == 409 and error(stale)["code"] == "placement.concurrent_update"
        first = placement.put(
            f"/allocations/{CONSUMER}",
            json={
                "allocations": {rp: {"resources": {"VCPU": 2}}},
                "project_id": "p",
                "user_id": "u",
                "consumer_generation": None,
            },
        )
        assert first.status_code == 204
        assert placement.get("/allocation_candidates?resources=VCPU:1").json()["allocation_requests"] == []
        assert placement.get("/usages?project_id=p").json()["usages"] == {"VCPU": 2}


def _generation_writes(rp: str, seen: int) -> list[tuple[str, dict[str, Any]]]:
    """Every write that carries the provider generation the client saw."""
    return [
        (f"/resource_providers/{rp}/inventories", {"resource_provider_generation": seen, "inventories": {}}),
        (f"/resource_providers/{rp}/inventories/VCPU", {"resource_provider_generation": seen, "total": 4}),
        (f"/resource_providers/{rp}/aggregates", {"resource_provider_generation": seen, "aggregates": []}),
        (f"/resource_providers/{rp}/traits", {"resource_provider_generation": seen, "traits": []}),
    ]


def _pg_placement(pg_cloud: Cloud) -> httpx.Client:
    """An admin client on the PostgreSQL cloud's /placement at microversion 1.35."""
    headers = {"X-Auth-Token": pg_cloud.token(), "OpenStack-API-Version": "placement 1.35"}
    return httpx.Client(base_url=f"{pg_cloud.url}/placement", headers=headers, timeout=30)


def check_generation_out_of_range(placement: httpx.Client) -> None:
    rp = make_provider(placement, "cn-range", COMPUTE)
    # 2**31 overflowed PostgreSQL's integer column, 2**64 SQLite's: a 500 from the bound parameter.
    for seen in (2**31, -(2**31) - 1, 2**64):
        for path, body in _generation_writes(rp, seen):
            resp = placement.put(path, json=body)
            assert resp.status_code == 400, (path, seen, resp.text)
            assert error(resp)["code"] == "placement.undefined_code"
        created = placement.post(
            f"/resource_providers/{rp}/inventories",
            json={"resource_class": "DISK_GB", "total": 1, "resource_provider_generation": seen},
        )
        assert created.status_code == 400, created.text
    path, body = _generation_writes(rp, 2**31 - 1)[2]
    stale = placement.put(path, json=body)  # in range: the usual conflict
    assert stale.status_code == 409 and error(stale)["code"] == "placement.concurrent_update"
    assert generation(placement, rp) == 1


def test_generation_out_of_range_is_a_400(placement: httpx.Client) -> None:
    check_generation_out_of_range(placement)


@pytest.mark.postgres
def test_generation_out_of_range_is_a_400_postgresql(pg_cloud: Cloud) -> None:
    with _pg_placement(pg_cloud) as placement:
        check_generation_out_of_range(placement)


def check_long_custom_names(placement: httpx.Client) -> None:
    longest = "CUSTOM_" + "X" * 248  # Placement's maxLength: 255
    for path in ("/traits/", "/resource_classes/"):
        assert placement.put(path + longest).status_code == 201
        too_long = placement.put(path + longest + "X")  # past the column: a 500 on PostgreSQL
        assert too_long.status_code == 400, too_long.text
        assert "longer than 255" in error(too_long)["detail"]
    posted = placement.post("/resource_classes", json={"name": longest + "X"})
    assert posted.status_code == 400


def test_custom_names_longer_than_255_are_a_400(placement: httpx.Client) -> None:
    check_long_custom_names(placement)


@pytest.mark.postgres
def test_custom_names_longer_than_255_are_a_400_postgresql(pg_cloud: Cloud) -> None:
    with _pg_placement(pg_cloud) as placement:
        check_long_custom_names(placement)


@pytest.mark.parametrize(
    "query",
    [
        "/resource_providers?resources=VCPU:\u00b9",  # a digit to str.isdigit(), not to int(): a 500
        "/allocation_candidates?resources=VCPU:\u00b9",
        "/allocation_candidates?resources=VCPU:1&limit=\u00b9",
        "/allocation_candidates?resources=VCPU:\u0665",  # not an ASCII digit
    ],
)
def test_amounts_and_limits_are_ascii_digits(placement: httpx.Client, query: str) -> None:
    resp = placement.get(query)
    assert resp.status_code == 400, resp.text
    assert error(resp)["status"] == 400
