from __future__ import annotations

import zlib

import pytest

from kumo.scheduler import SchedulerConfig, schedule, schedule_batch
from kumo.scheduler.core import first_rejection

from .builders import make_host, make_request, make_snapshot


def test_ranks_passing_hosts_best_first_with_claim_tokens() -> None:
    small = make_host("small").ram(2048).build()
    big = make_host("big").ram(16384).build()
    snapshot = make_snapshot(small, make_host("down").down(), big)
    decision = schedule(make_request(), snapshot)
    assert decision.ok
    assert decision.hosts == ["big", "small"]
    best = decision.candidates[0]
    assert (best.provider_id, best.generation) == (big.provider_id, big.generation)
    assert best.soft_policy_honoured is None
    assert decision.removed_by("ComputeFilter") == 1


def test_no_valid_host_message_counts_each_host_once() -> None:
    snapshot = make_snapshot(
        make_host("h1").down(),
        make_host("h2").down().ram(256),  # charged to ComputeFilter only: it runs first
        make_host("h3").ram(256),
        make_host("h4").ram(511),
        make_host("h5").ram(1024, used=1000),
    )
    decision = schedule(make_request(), snapshot)
    assert not decision.ok
    assert decision.message == (
        "No valid host was found. There are 5 hosts: 2 removed by ComputeFilter (service down), "
        "3 removed by ResourcesFilter (insufficient MEMORY_MB)"
    )


def test_summary_message_when_placed() -> None:
    snapshot = make_snapshot(make_host("h1").down(), make_host("h2").az("az2"), make_host("h3").az("az1"))
    decision = schedule(make_request(availability_zone="az1"), snapshot)
    assert decision.hosts == ["h3"]
    assert decision.message == (
        "There are 3 hosts: 1 removed by ComputeFilter (service down), "
        "1 removed by AvailabilityZoneFilter (not in the requested availability zone)"
    )


def test_no_valid_host_with_several_filters_and_reasons() -> None:
    snapshot = make_snapshot(make_host("h1").down(), make_host("h2").disabled(), make_host("h3").vcpus(0))
    decision = schedule(make_request(), snapshot)
    assert decision.message == (
        "No valid host was found. There are 3 hosts: 2 removed by ComputeFilter "
        "(1 service down, 1 service disabled), 1 removed by ResourcesFilter (insufficient VCPU)"
    )


def test_empty_fleet() -> None:
    decision = schedule(make_request(), make_snapshot())
    assert (decision.ok, decision.message) == (False, "No valid host was found. There are 0 hosts")


def test_candidate_list_is_capped() -> None:
    snapshot = make_snapshot(*(make_host(f"h{i}") for i in range(5)))
    decision = schedule(make_request(), snapshot, SchedulerConfig(max_candidates=2))
    assert decision.hosts == ["h0", "h1"]


def test_forced_host_skips_policy_filters_but_not_capacity_or_liveness() -> None:
    snapshot = make_snapshot(make_host("h1").az("az1"), make_host("h2").az("az2"), groups={"g1": {"h2": 1}})
    request = make_request(force_host="h2", availability_zone="az1", group="anti-affinity")
    assert schedule(request, snapshot).hosts == ["h2"]

    full = make_snapshot(make_host("h1"), make_host("h2").ram(256))
    decision = schedule(make_request(force_host="h2"), full)
    assert decision.message == (
        "No valid host was found. There are 2 hosts: 1 removed by ForceHostFilter (not the forced host), "
        "1 removed by ResourcesFilter (insufficient MEMORY_MB)"
    )
    down = make_snapshot(make_host("h2").down())
    assert schedule(make_request(force_host="h2"), down).removed_by("ComputeFilter") == 1


@pytest.mark.parametrize(
    ("policy", "groups", "expected"),
    [
        ("soft-affinity", {}, {"h1": True, "h2": True}),  # first member: anywhere honours it
        ("soft-affinity", {"g1": {"h1": 1}}, {"h1": True, "h2": False}),
        ("soft-anti-affinity", {"g1": {"h1": 1}}, {"h1": False, "h2": True}),
        ("affinity", {"g1": {"h1": 1}}, {"h1": None}),  # hard policies are enforced, not reported
    ],
)
def test_soft_policy_outcome_is_reported_per_candidate(
    policy: str, groups: dict[str, dict[str, int]], expected: dict[str, bool | None]
) -> None:
    snapshot = make_snapshot(make_host("h1"), make_host("h2"), groups=groups)
    decision = schedule(make_request(group=policy), snapshot)
    assert {c.host: c.soft_policy_honoured for c in decision.candidates} == expected


def test_schedule_does_not_touch_the_snapshot() -> None:
    snapshot = make_snapshot(make_host("h1"), groups={"g1": {"h1": 1}})
    before = repr(snapshot)
    schedule(make_request(group="soft-affinity"), snapshot)
    assert repr(snapshot) == before


def test_batch_fills_capacity_then_reports_no_valid_host() -> None:
    snapshot = make_snapshot(make_host("h1").vcpus(2), make_host("h2").vcpus(2))
    requests = [make_request(instance_uuid=f"i{n}", resources={"VCPU": 1}) for n in range(5)]
    decisions, after = schedule_batch(requests, snapshot)
    assert [d.hosts[0] if d.ok else None for d in decisions] == ["h1", "h2", "h1", "h2", None]
    assert decisions[4].removed_by("ResourcesFilter") == 2
    assert {h.name: (h.used["VCPU"], h.generation) for h in after.hosts.values()} == {
        "h1": (2, 2),
        "h2": (2, 2),
    }
    assert after.instance_hosts == {"i0": "h1", "i1": "h2", "i2": "h1", "i3": "h2"}


def test_batch_honours_anti_affinity_and_generation_tokens_chain() -> None:
    snapshot = make_snapshot(make_host("a"), make_host("b"), make_host("c"))
    requests = [make_request(instance_uuid=f"i{n}", group="anti-affinity") for n in range(4)]
    decisions, after = schedule_batch(requests, snapshot)
    placed = [d.candidates[0].host for d in decisions if d.ok]
    assert sorted(placed) == ["a", "b", "c"]
    assert decisions[3].message == (
        "No valid host was found. There are 3 hosts: 3 removed by ServerGroupAntiAffinityFilter "
        "(max_server_per_host members of the anti-affinity group already there)"
    )
    assert after.group_hosts == {"g1": {"a": 1, "b": 1, "c": 1}}


def test_batch_affinity_follows_the_first_member() -> None:
    snapshot = make_snapshot(make_host("a").ram(2048), make_host("b").ram(4096))
    requests = [make_request(instance_uuid=f"i{n}", group="affinity") for n in range(3)]
    decisions, _ = schedule_batch(requests, snapshot)
    assert [d.hosts for d in decisions] == [["b", "a"], ["b"], ["b"]]


def test_same_host_hint_can_name_an_earlier_instance_of_the_batch() -> None:
    snapshot = make_snapshot(make_host("a"), make_host("b"))
    first = make_request(instance_uuid="i0")
    second = make_request(instance_uuid="i1", different_host=("i0",))
    decisions, _ = schedule_batch([first, second], snapshot)
    assert decisions[1].hosts == [h for h in ("a", "b") if h != decisions[0].hosts[0]]


# ---------------------------------------------------------------------------- feasible sample


def _fleet(count: int, full: int = 0) -> list:  # type: ignore[type-arg]
    """`count` hosts, the first `full` of them without room for the request."""
    return [make_host(f"h{i:03d}").ram(4096, used=4096 if i < full else 0).build() for i in range(count)]


def test_a_sample_stops_the_walk_once_enough_hosts_passed() -> None:
    hosts = _fleet(100)
    snapshot = make_snapshot(*hosts)
    names = [h.name for h in hosts]
    config = SchedulerConfig(feasible_limit=5, max_candidates=10)
    decision = schedule(make_request(instance_uuid="sampled-1"), snapshot, config)
    # five hosts walked in a row from the instance's own start, wrapping at the end
    start = zlib.crc32(b"sampled-1") % 100
    assert set(decision.hosts) == {names[(start + k) % 100] for k in range(5)}
    another = schedule(make_request(instance_uuid="sampled-2"), snapshot, config)
    assert set(another.hosts) != set(decision.hosts)  # another instance starts elsewhere


def test_a_sample_larger_than_what_fits_walks_every_host() -> None:
    snapshot = make_snapshot(*_fleet(100, full=97))
    decision = schedule(make_request(), snapshot, SchedulerConfig(feasible_limit=5))
    assert sorted(decision.hosts) == ["h097", "h098", "h099"]
    assert decision.removed_by("ResourcesFilter") == 97


def test_requests_with_a_group_or_host_hints_are_never_sampled() -> None:
    snapshot = make_snapshot(*_fleet(30))
    config = SchedulerConfig(feasible_limit=2, max_candidates=50)
    assert len(schedule(make_request(), snapshot, config).candidates) == 2
    grouped = schedule(make_request(group="soft-anti-affinity"), snapshot, config)
    assert len(grouped.candidates) == 30
    hinted = schedule(make_request(different_host=("nobody",)), snapshot, config)
    assert len(hinted.candidates) == 30


def test_first_rejection_agrees_with_schedule() -> None:
    snapshot = make_snapshot(make_host("h1").down(), make_host("h2").ram(512), make_host("h3"))
    request = make_request(resources={"VCPU": 1, "MEMORY_MB": 1024})
    verdicts = {h.name: first_rejection(request, h, snapshot) for h in snapshot.hosts.values()}
    assert verdicts["h3"] is None
    assert verdicts["h1"] is not None and verdicts["h1"].filter == "ComputeFilter"
    assert verdicts["h2"] is not None and verdicts["h2"].reason == "insufficient MEMORY_MB"
    assert schedule(request, snapshot).hosts == ["h3"]
