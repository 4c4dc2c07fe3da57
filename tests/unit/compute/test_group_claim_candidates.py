"""server_groups.claim_candidates: which ranked candidates a claim may fall back to."""

from __future__ import annotations

import pytest

from kumo.compute.server_groups import claim_candidates
from kumo.scheduler import schedule
from tests.unit.scheduler.builders import make_host, make_request, make_snapshot

FLEET = [
    make_host("a1").rack("r1"),
    make_host("a2").rack("r1"),
    make_host("b1").rack("r2"),
    make_host("c1").rack("r3"),
]


@pytest.mark.parametrize(
    ("policy", "members", "allowed"),
    [
        # soft anti-affinity: only the emptiest racks (r3 here, one host)
        ("soft-anti-affinity", {"a1": 1, "b1": 1}, ["c1"]),
        ("soft-anti-affinity", {}, ["a1", "a2", "b1", "c1"]),
        # soft affinity: only the rack holding the most members
        ("soft-affinity", {"b1": 2, "a1": 1}, ["b1"]),
        # hard policies: every candidate passed the filters, any may take the claim
        ("anti-affinity", {"a1": 1}, ["b1", "c1"]),
    ],
)
def test_claim_candidates(policy: str, members: dict[str, int], allowed: list[str]) -> None:
    snapshot = make_snapshot(*FLEET, groups={"g1": members})
    request = make_request(group=(policy, {"failure_domain": "rack"}))
    decision = schedule(request, snapshot)
    assert sorted(c.host for c in claim_candidates(decision.candidates, request, snapshot)) == allowed


def test_no_group_keeps_every_candidate() -> None:
    snapshot = make_snapshot(*FLEET)
    decision = schedule(make_request(), snapshot)
    assert claim_candidates(decision.candidates, make_request(), snapshot) == decision.candidates
