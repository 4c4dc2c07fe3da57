"""osc-placement (`openstack resource provider ...`) against kumo's Placement API."""

from __future__ import annotations

import uuid

import pytest

from tests.cli.conftest import OpenStackCLI

pytestmark = pytest.mark.cli

AGGREGATE = str(uuid.UUID(int=7))


@pytest.fixture
def placement_cli(osc: OpenStackCLI) -> OpenStackCLI:
    pytest.importorskip("osc_placement")
    return osc


def test_provider_inventory_and_candidates(placement_cli: OpenStackCLI) -> None:
    osc = placement_cli
    rp = osc.run("resource", "provider", "create", "cn1")
    assert rp["name"] == "cn1" and rp["generation"] == 0
    inv = osc.run(
        "resource",
        "provider",
        "inventory",
        "set",
        rp["uuid"],
        "--resource",
        "VCPU=8",
        "--resource",
        "MEMORY_MB=4096",
        "--resource",
        "VCPU:allocation_ratio=2.0",
    )
    assert {row["resource_class"]: row["total"] for row in inv} == {"VCPU": 8, "MEMORY_MB": 4096}
    listed = osc.run("resource", "provider", "list", "--resource", "VCPU=10")
    assert [p["uuid"] for p in listed] == [rp["uuid"]]

    osc.run("trait", "create", "CUSTOM_FAST", json=False)
    traits = osc.run("resource", "provider", "trait", "set", rp["uuid"], "--trait", "CUSTOM_FAST")
    assert [t["name"] for t in traits] == ["CUSTOM_FAST"]
    aggs = osc.run(
        "resource", "provider", "aggregate", "set", rp["uuid"], "--aggregate", AGGREGATE, "--generation", "2"
    )
    assert [a["uuid"] for a in aggs] == [AGGREGATE]

    candidates = osc.run(
        "allocation",
        "candidate",
        "list",
        "--resource",
        "VCPU=2",
        "--required",
        "CUSTOM_FAST",
        "--member-of",
        AGGREGATE,
        "--limit",
        "5",
    )
    assert [c["resource provider"] for c in candidates] == [rp["uuid"]]

    consumer = str(uuid.uuid4())
    osc.run(
        "resource",
        "provider",
        "allocation",
        "set",
        consumer,
        "--allocation",
        f"rp={rp['uuid']},VCPU=2,MEMORY_MB=512",
        "--project-id",
        str(uuid.uuid4()),
        "--user-id",
        str(uuid.uuid4()),
    )
    usage = osc.run("resource", "provider", "usage", "show", rp["uuid"])
    assert {row["resource_class"]: row["usage"] for row in usage} == {"VCPU": 2, "MEMORY_MB": 512}
    with pytest.raises(AssertionError, match="in use|409|allocations"):
        osc.run("resource", "provider", "delete", rp["uuid"], json=False)
    osc.run("resource", "provider", "allocation", "delete", consumer, json=False)
    osc.run("resource", "provider", "delete", rp["uuid"], json=False)
    assert osc.run("resource", "provider", "list") == []
