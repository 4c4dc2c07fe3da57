"""HA groups over failure domains: one row per case, over a small two-region, three-rack fleet.

Fleet (host: region / az / rack):  a1 r1/az1/rack1  a2 r1/az1/rack1  b1 r1/az1/rack2
                                    c1 r1/az2/rack3  d1 r2/az3/rack4  x1 (no rack, no region)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from kumo.scheduler import filters as f
from kumo.scheduler import schedule, schedule_batch
from kumo.scheduler.snapshot import Snapshot

from .builders import HostBuilder, make_host, make_request, make_snapshot

LABELS = {
    "a1": ("rack1", "az1", "r1"),
    "a2": ("rack1", "az1", "r1"),
    "b1": ("rack2", "az1", "r1"),
    "c1": ("rack3", "az2", "r1"),
    "d1": ("rack4", "az3", "r2"),
    "x1": (None, "az3", None),
}


def fleet() -> list[HostBuilder]:
    return [make_host(n).rack(rack).az(az).region(region) for n, (rack, az, region) in LABELS.items()]


def snapshot_with(members: Mapping[str, int]) -> Snapshot:
    return make_snapshot(*fleet(), groups={"g1": dict(members)})


@dataclass
class Case:
    id: str
    policy: str
    rules: dict[str, Any]
    members: Mapping[str, int]  # host -> members of group g1 already there
    allowed: set[str]  # hosts the group filters let through
    reason: dict[str, str] = field(default_factory=dict)  # host -> expected rejection reason


FULL_RACK = f"{f.GROUP_DOMAIN_FULL} rack"
NO_RACK = f"{f.NO_DOMAIN_LABEL} rack"
ALL = set(LABELS)

CASES = [
    # anti-affinity over host: Nova's rule, unchanged
    Case("anti/host/empty", "anti-affinity", {}, {}, ALL),
    Case("anti/host/one", "anti-affinity", {}, {"a1": 1}, ALL - {"a1"}, {"a1": f.GROUP_HOST_FULL}),
    # anti-affinity over rack: a rack with a member is full; a host without a rack label never passes
    Case("anti/rack/empty", "anti-affinity", {"failure_domain": "rack"}, {}, ALL - {"x1"}, {"x1": NO_RACK}),
    Case(
        "anti/rack/a1",
        "anti-affinity",
        {"failure_domain": "rack"},
        {"a1": 1},
        {"b1", "c1", "d1"},
        {"a1": FULL_RACK, "a2": FULL_RACK, "x1": NO_RACK},
    ),
    Case(
        "anti/rack/max2",
        "anti-affinity",
        {"failure_domain": "rack", "max_server_per_host": 2},
        {"a1": 1, "b1": 2},
        {"a1", "a2", "c1", "d1"},
        {"b1": FULL_RACK},
    ),
    Case(
        "anti/az/two-zones-used",
        "anti-affinity",
        {"failure_domain": "az"},
        {"a1": 1, "c1": 1},
        {"d1", "x1"},
        {"b1": f"{f.GROUP_DOMAIN_FULL} az"},
    ),
    Case(
        "anti/region",
        "anti-affinity",
        {"failure_domain": "region"},
        {"c1": 1},
        {"d1"},
        {"a1": f"{f.GROUP_DOMAIN_FULL} region", "x1": f"{f.NO_DOMAIN_LABEL} region"},
    ),
    # members on a host gone from the fleet count nowhere
    Case("anti/rack/unknown-host", "anti-affinity", {"failure_domain": "rack"}, {"gone": 3}, ALL - {"x1"}),
    # affinity over rack: once a member is in rack1, only rack1's hosts
    Case("aff/rack/empty", "affinity", {"failure_domain": "rack"}, {}, ALL - {"x1"}),
    Case(
        "aff/rack/a1",
        "affinity",
        {"failure_domain": "rack"},
        {"a1": 1},
        {"a1", "a2"},
        {"b1": f"{f.NOT_GROUP_DOMAIN} rack", "x1": NO_RACK},
    ),
    Case("aff/az/c1", "affinity", {"failure_domain": "az"}, {"c1": 1}, {"c1"}),
    # soft policies never filter
    Case("soft-anti/rack", "soft-anti-affinity", {"failure_domain": "rack"}, {"a1": 5}, ALL),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_group_filters_per_failure_domain(case: Case) -> None:
    snapshot = snapshot_with(case.members)
    request = make_request(group=(case.policy, case.rules))
    passed = set()
    for host in snapshot.hosts.values():
        results = [
            flt(host, request, snapshot) for flt in (f.group_affinity_filter, f.group_anti_affinity_filter)
        ]
        failed = [r for r in results if not r.ok]
        if not failed:
            passed.add(host.name)
        elif host.name in case.reason:
            assert failed[0].reason == case.reason[host.name]
    assert passed == case.allowed


@pytest.mark.parametrize(
    ("rules", "count", "expected_domains"),
    [
        ({"failure_domain": "rack"}, 4, 4),  # rack1..rack4, x1 has no rack
        ({"failure_domain": "az"}, 3, 3),
        ({"failure_domain": "region"}, 2, 2),
        ({"failure_domain": "rack", "max_server_per_host": 2}, 8, 4),
    ],
)
def test_hard_spread_batch_never_shares_a_domain(
    rules: dict[str, Any], count: int, expected_domains: int
) -> None:
    """A batch scheduled on one read places as many as the domains allow, then says no."""
    domain = rules["failure_domain"]
    snapshot = make_snapshot(*fleet())
    requests = [make_request(instance_uuid=f"i{n}", group=("anti-affinity", rules)) for n in range(count + 1)]
    decisions, final = schedule_batch(requests, snapshot)
    placed = [d.candidates[0].host for d in decisions if d.ok]
    assert len(placed) == count
    assert not decisions[-1].ok
    per_domain: dict[str | None, int] = {}
    for host in placed:
        value = final.hosts[host].failure_domain(domain)
        per_domain[value] = per_domain.get(value, 0) + 1
    assert len(per_domain) == expected_domains
    assert max(per_domain.values()) <= rules.get("max_server_per_host", 1)
    assert None not in per_domain


def test_soft_anti_affinity_spreads_over_racks_then_reports_the_breach() -> None:
    snapshot = make_snapshot(*fleet())
    requests = [
        make_request(instance_uuid=f"i{n}", group=("soft-anti-affinity", {"failure_domain": "rack"}))
        for n in range(6)
    ]
    decisions, final = schedule_batch(requests, snapshot)
    first = [d.candidates[0] for d in decisions[:4]]
    assert len({final.hosts[c.host].rack for c in first}) == 4  # one per rack while racks last
    assert all(c.soft_policy_honoured for c in first)
    assert all(d.ok for d in decisions)
    assert [d.candidates[0].soft_policy_honoured for d in decisions[4:]] == [False, False]


def test_soft_affinity_packs_into_the_members_rack() -> None:
    snapshot = snapshot_with({"b1": 1})
    request = make_request(group=("soft-affinity", {"failure_domain": "rack"}))
    decision = schedule(request, snapshot)
    assert decision.candidates[0].host == "b1"
    assert decision.candidates[0].soft_policy_honoured is True
    assert {c.host: c.soft_policy_honoured for c in decision.candidates}["a1"] is False


def test_domain_counts_follow_claims() -> None:
    snapshot = make_snapshot(*fleet())
    request = make_request(group=("anti-affinity", {"failure_domain": "rack"}))
    after = snapshot.after_claim("a1", request)
    assert after.group_members_in("g1", "rack", "rack1") == 1
    assert snapshot.group_members_in("g1", "rack", "rack1") == 0  # the original is untouched
    refreshed = after.with_group_hosts("g1", {"b1": 2})
    assert refreshed.group_members_in("g1", "rack", "rack1") == 0
    assert refreshed.group_domains("g1", "rack") == {"rack2"}
