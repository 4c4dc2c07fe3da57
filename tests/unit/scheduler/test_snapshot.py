from __future__ import annotations

import pytest

from kumo.scheduler import GroupSpec

from .builders import make_host, make_request, make_snapshot


def test_with_claim_adds_usage_and_bumps_generation_like_claims_claim() -> None:
    host = make_host("h1").vcpus(8, used=2).build()
    claimed = host.with_claim({"VCPU": 2, "CUSTOM_X": 1})
    assert (claimed.used["VCPU"], claimed.used["CUSTOM_X"], claimed.generation) == (4, 1, host.generation + 1)
    assert (host.used["VCPU"], host.generation) == (2, 0)


def test_free_is_capacity_minus_used_and_zero_for_unknown_classes() -> None:
    host = make_host("h1").ram(4096, used=1000, ratio=1.5, reserved=96).build()
    assert (host.free("MEMORY_MB"), host.free("CUSTOM_GPU")) == (6000 - 1000, 0)


def test_after_claim_returns_a_new_snapshot() -> None:
    snapshot = make_snapshot(make_host("h1"), make_host("h2"), groups={"g1": {"h2": 1}})
    after = snapshot.after_claim("h2", make_request(instance_uuid="i9", group="anti-affinity"))
    assert after.group_hosts == {"g1": {"h2": 2}}
    assert after.instance_hosts == {"i9": "h2"}
    assert after.hosts["h2"].used["VCPU"] == 1 and after.hosts["h1"] is snapshot.hosts["h1"]
    assert snapshot.group_hosts == {"g1": {"h2": 1}} and snapshot.instance_hosts == {}
    assert snapshot.hosts["h2"].used["VCPU"] == 0


def test_aggregate_metadata_merges_aggregates_and_splits_commas() -> None:
    host = make_host("h1").aggregate({"gpu": "a100, h100", "ssd": "true"}).aggregate({"gpu": "t4"}).build()
    assert host.aggregate_metadata() == {"gpu": {"a100", "h100", "t4"}, "ssd": {"true"}}


def test_with_instance_hosts_merges() -> None:
    snapshot = make_snapshot(make_host("h1"), instances={"i1": "h1"}).with_instance_hosts({"i2": "h1"})
    assert snapshot.instance_hosts == {"i1": "h1", "i2": "h1"}


def test_group_spec_validates_policy_and_defaults_max_server_per_host() -> None:
    assert GroupSpec("g", "anti-affinity").max_server_per_host == 1
    with pytest.raises(ValueError, match="policy"):
        GroupSpec("g", "spread-out")
