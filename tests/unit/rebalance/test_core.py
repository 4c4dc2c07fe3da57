"""The planner's rules, one row per case: a fleet, a policy, the moves and skips expected.

Hosts have 4 cores (efficiency 0.95: loss starts above 3.8 cores of demand; headroom 0.85: a
destination takes demand up to 3.4 cores). Servers are 1 vCPU / 1 GiB unless a row says otherwise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from kumo.rebalance import core as c
from kumo.scheduler import GroupSpec

from .builders import VICTIM, fleet, host, vm

NOW = 100000.0
ANTI = GroupSpec("g-anti", "anti-affinity")
ANTI2 = GroupSpec("g-anti2", "anti-affinity", {"max_server_per_host": 2})
AFF = GroupSpec("g-aff", "affinity")


def hot_a(*extra: c.VmState, victim: dict[str, Any] | None = None) -> list[c.VmState]:
    """Host A at demand 5.0 (loses 1.2 cores): victim v1 and four 1-core fillers, plus `extra`."""
    return [
        vm("v1", "A", demand=1.0, **{**VICTIM, **(victim or {})}),
        vm("f2", "A", demand=1.0),
        vm("f3", "A", demand=1.0),
        vm("f4", "A", demand=1.0),
        vm("f5", "A", demand=1.0),
        *extra,
    ]


@dataclass
class Case:
    id: str
    hosts: list[Any]
    vms: list[c.VmState]
    policy: dict[str, Any] = field(default_factory=dict)
    moves: list[tuple[str, str]] = field(default_factory=list)  # (server, destination) in order
    skips: dict[str, str] = field(default_factory=dict)  # server -> reason (a subset of skipped)
    detail: dict[str, str] = field(default_factory=dict)  # server -> text its skip's detail holds
    inflight: int = 0


V = {"candidates": "victims"}
CASES = [
    Case("no-victim/nothing", [host("A"), host("B")], [vm("v1", "A", demand=5.0, steal=20.0, hot=2)]),
    Case(
        "hysteresis/armed-below-trigger-still-victim",
        [host("A"), host("B")],
        hot_a(victim={"steal": 3.0}),
        V,
        moves=[("v1", "B")],
    ),
    Case("hysteresis/below-clear-not-victim", [host("A"), host("B")], hot_a(victim={"steal": 2.0}), V),
    Case("basic/victim-moves", [host("A"), host("B")], hot_a(), V, moves=[("v1", "B")]),
    Case(
        "basic/all-candidates-best-rate",
        [host("A"), host("B")],
        hot_a(vm("big", "A", demand=1.0, ram_mib=8192)),
        moves=[("f2", "B")],
        skips={"v1": c.HOST_OUT_BUSY, "big": c.HOST_OUT_BUSY},
    ),
    Case(
        "score/more-gain-first",
        [host("A"), host("B")],
        [
            vm("v1", "A", demand=0.3, **VICTIM),
            vm("f2", "A", demand=1.2),
            *[vm(f"f{i}", "A", demand=1.0) for i in (3, 4, 5)],
        ],
        moves=[("f2", "B")],
    ),
    Case(
        "score/cheaper-migration-first",
        [host("A"), host("B")],
        [
            vm("a-big", "A", demand=1.0, ram_mib=8192, **VICTIM),
            vm("b-small", "A", demand=1.0, ram_mib=512, **VICTIM),
            *[vm(f"f{i}", "A", demand=1.0) for i in (3, 4, 5)],
        ],
        V,
        moves=[("b-small", "B")],
    ),
    Case(
        "gain/too-small",
        [host("A"), host("B")],
        [vm("v1", "A", demand=0.1, **VICTIM), *[vm(f"f{i}", "A", demand=0.95) for i in (2, 3, 4, 5)]],
        V,
        skips={"v1": c.LOW_GAIN},
    ),
    Case(
        "exclude/metadata-never",
        [host("A"), host("B")],
        hot_a(victim={"metadata": {"kumo:rebalance": "never"}}),
        V,
        skips={"v1": c.EXCLUDED},
    ),
    Case(
        "exclude/other-value-moves",
        [host("A"), host("B")],
        hot_a(victim={"metadata": {"kumo:rebalance": "yes"}}),
        V,
        moves=[("v1", "B")],
    ),
    Case(
        "exclude/not-active",
        [host("A"), host("B")],
        hot_a(victim={"movable_state": False}),
        V,
        skips={"v1": c.NOT_ACTIVE},
    ),
    Case(
        "exclude/hard-affinity-member",
        [host("A"), host("B")],
        hot_a(victim={"group": AFF}),
        V,
        skips={"v1": c.IN_AFFINITY_GROUP},
    ),
    Case(
        "cooldown/moved-10-min-ago",
        [host("A"), host("B")],
        hot_a(victim={"moves": (c.PastMove(NOW - 600, "X"),)}),
        V,
        skips={"v1": c.COOLING_DOWN},
    ),
    Case(
        "cooldown/moved-2-h-ago",
        [host("A"), host("B")],
        hot_a(victim={"moves": (c.PastMove(NOW - 7200, "X"),)}),
        V,
        moves=[("v1", "B")],
    ),
    Case(
        "cooldown/doubles-with-each-move",
        [host("A"), host("B")],
        hot_a(victim={"moves": (c.PastMove(NOW - 9000, "X"), c.PastMove(NOW - 2700, "Y"))}),
        V,
        skips={"v1": c.COOLING_DOWN},
    ),
    Case(
        "ping-pong/never-back-within-a-day",
        [host("A"), host("B")],
        hot_a(victim={"moves": (c.PastMove(NOW - 7200, "B"),)}),
        V,
        skips={"v1": c.NO_DESTINATION},
        detail={"v1": c.LEFT_RECENTLY},
    ),
    Case(
        "az/other-az-refused",
        [host("A"), host("B", az="az2")],
        hot_a(),
        V,
        skips={"v1": c.NO_DESTINATION},
        detail={"v1": "no other host in the AZ"},
    ),
    Case(
        "az/other-az-allowed-without-same-az",
        [host("A"), host("B", az="az2")],
        hot_a(),
        {**V, "same_az": False},
        moves=[("v1", "B")],
    ),
    Case(
        "headroom/dest-would-exceed",
        [host("A"), host("B", base_demand=2.5)],
        hot_a(),
        V,
        skips={"v1": c.NO_DESTINATION},
        detail={"v1": c.OVER_HEADROOM},
    ),
    Case(
        "headroom/inbound-inflight-counts",
        [host("A"), host("B", inbound_demand=2.5)],
        hot_a(),
        V,
        skips={"v1": c.NO_DESTINATION},
        detail={"v1": c.OVER_HEADROOM},
    ),
    Case(
        "headroom/lower-utilisation-wins",
        [host("A"), host("B", base_demand=2.0), host("C", base_demand=1.0)],
        hot_a(),
        V,
        moves=[("v1", "C")],
    ),
    Case(
        "role/fewest-same-role-beats-utilisation",
        [host("A"), host("B"), host("C", base_demand=2.0)],
        hot_a(vm("w", "B", demand=0.1, metadata={"role": "web"}), victim={"metadata": {"role": "web"}}),
        V,
        moves=[("v1", "C")],
    ),
    Case(
        "filters/disabled-host",
        [host("A"), host("B")],
        hot_a(),
        V,
        skips={"v1": c.NO_DESTINATION},
        detail={"v1": "ComputeFilter (service disabled)"},
    ),
    Case(
        "filters/no-ram",
        [host("A"), host("B")],
        hot_a(victim={"ram_mib": 20000}),
        V,
        skips={"v1": c.NO_DESTINATION},
        detail={"v1": "ResourcesFilter (insufficient MEMORY_MB)"},
    ),
    Case(
        "filters/anti-affinity-existing-member",
        [host("A"), host("B")],
        hot_a(vm("g2", "B", demand=0.1, group=ANTI), victim={"group": ANTI}),
        V,
        skips={"v1": c.NO_DESTINATION},
        detail={"v1": "ServerGroupAntiAffinityFilter"},
    ),
    Case(
        "filters/anti-affinity-against-own-earlier-move",
        [host("A1"), host("A2"), host("B")],
        [
            vm("g1", "A1", demand=1.0, group=ANTI, **VICTIM),
            *[vm(f"a{i}", "A1", demand=1.0) for i in range(4)],
            vm("g2", "A2", demand=1.0, group=ANTI, **VICTIM),
            *[vm(f"b{i}", "A2", demand=1.0) for i in range(4)],
        ],
        {**V, "per_host_in": 2},
        moves=[("g1", "B")],
        skips={"g2": c.NO_DESTINATION},
        detail={"g2": "ServerGroupAntiAffinityFilter"},
    ),
    Case(
        "filters/max-server-per-host-2-admits-both",
        [host("A1"), host("A2"), host("B")],
        [
            vm("g1", "A1", demand=1.0, group=ANTI2, **VICTIM),
            *[vm(f"a{i}", "A1", demand=1.0) for i in range(4)],
            vm("g2", "A2", demand=1.0, group=ANTI2, **VICTIM),
            *[vm(f"b{i}", "A2", demand=1.0) for i in range(4)],
        ],
        {**V, "per_host_in": 2},
        moves=[("g1", "B"), ("g2", "B")],
    ),
    Case(
        "caps/per-host-in",
        [host("A1"), host("A2"), host("B"), host("C", base_demand=1.0)],
        [
            vm("g1", "A1", demand=1.0, **VICTIM),
            *[vm(f"a{i}", "A1", demand=1.0) for i in range(4)],
            vm("g2", "A2", demand=1.0, **VICTIM),
            *[vm(f"b{i}", "A2", demand=1.0) for i in range(4)],
        ],
        V,
        moves=[("g1", "B"), ("g2", "C")],
    ),
    Case(
        "caps/per-host-in-inflight",
        [host("A"), host("B", in_inflight=1)],
        hot_a(),
        V,
        skips={"v1": c.NO_DESTINATION},
        detail={"v1": c.INBOUND_BUSY},
    ),
    Case(
        "caps/per-host-out-inflight",
        [host("A", out_inflight=1), host("B")],
        hot_a(),
        V,
        skips={"v1": c.HOST_OUT_BUSY},
    ),
    Case(
        "caps/per-plan",
        [host("A1"), host("A2"), host("B"), host("C")],
        [
            vm("g1", "A1", demand=1.0, **VICTIM),
            *[vm(f"a{i}", "A1", demand=1.0) for i in range(4)],
            vm("g2", "A2", demand=1.0, **VICTIM),
            *[vm(f"b{i}", "A2", demand=1.0) for i in range(4)],
        ],
        {**V, "per_plan": 1},
        moves=[("g1", "B")],
        skips={"g2": c.PLAN_FULL},
    ),
    Case(
        "caps/per-cloud-counts-inflight",
        [host("A"), host("B")],
        hot_a(),
        {**V, "per_cloud": 2},
        skips={"v1": c.CLOUD_FULL},
        inflight=2,
    ),
    Case(
        "relieved/second-server-not-needed",
        [host("A"), host("B"), host("C")],
        [
            vm("v1", "A", demand=1.0, **VICTIM),
            vm("v5", "A", demand=0.1, **VICTIM),
            *[vm(f"f{i}", "A", demand=1.0) for i in (2, 3, 4)],
        ],
        {**V, "per_host_out": 2},
        moves=[("v1", "B")],
        skips={"v5": c.NOT_CHOSEN},
    ),
]


def _snapshot(case: Case) -> c.Snapshot:
    hosts = list(case.hosts)
    if case.id == "filters/disabled-host":
        hosts = [(replace(h, enabled=False), cpu) if h.name == "B" else (h, cpu) for h, cpu in hosts]
    return fleet(hosts, case.vms, now=NOW, inflight=case.inflight)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_plan(case: Case) -> None:
    result = c.plan(_snapshot(case), c.Policy(**case.policy))
    assert [(m.server, m.destination) for m in result.moves] == case.moves
    for server, reason in case.skips.items():
        skip = result.skip_of(server)
        assert skip is not None, f"{server} neither moved nor skipped"
        assert skip.reason == reason, skip
        assert case.detail.get(server, "") in skip.detail
    moved = {m.server for m in result.moves}
    assert not moved & {s.server for s in result.skipped}


def test_predicted_effect_is_the_model() -> None:
    result = c.plan(fleet([host("A"), host("B")], hot_a(), now=NOW), c.Policy(candidates="victims"))
    (move,) = result.moves
    assert result.effect.hot_hosts == ("A",) and result.effect.victims == ("v1",)
    assert result.effect.lost_cores_before == pytest.approx(5.0 - 0.95 * 4)
    assert result.effect.lost_cores_after == pytest.approx(4.0 - 0.95 * 4)
    assert move.gain_cores == pytest.approx(1.0)
    assert move.dest_demand_after == pytest.approx(1.0)
    assert move.victims == ("v1",)
    assert move.est_seconds == pytest.approx(10 + 1024 * 1.5 / 119)


def test_no_victim_gives_empty_plan_and_no_skips() -> None:
    result = c.plan(fleet([host("A"), host("B")], [vm("v", "A", demand=6.0)], now=NOW))
    assert result.moves == () and result.skipped == ()
    assert result.effect.lost_cores_before > 0  # overloaded, but nobody armed the trigger


@pytest.mark.parametrize(
    ("rounds", "steal", "busy", "expect"),
    [
        (0, 6.0, 0.6, 1),  # above trigger and busy: count up
        (2, 6.0, 0.6, 3),
        (2, 6.0, 0.2, 2),  # idle server: hold, never arm
        (3, 4.0, 0.6, 3),  # between clear and trigger: hold (hysteresis)
        (3, 2.4, 0.6, 0),  # below clear: reset
        (0, 4.0, 0.9, 0),
    ],
)
def test_advance_hot_rounds(rounds: int, steal: float, busy: float, expect: int) -> None:
    assert c.advance_hot_rounds(rounds, steal, busy, c.Policy()) == expect


def test_same_snapshot_in_any_order_gives_same_plan() -> None:
    hosts = [host(n) for n in ("A1", "A2", "B", "C", "D")]
    vms = [
        vm("g1", "A1", demand=1.0, group=ANTI, **VICTIM),
        *[vm(f"a{i}", "A1", demand=1.0) for i in range(4)],
        vm("g2", "A2", demand=1.0, group=ANTI, **VICTIM),
        *[vm(f"b{i}", "A2", demand=1.0) for i in range(4)],
    ]
    first = c.plan(fleet(hosts, vms, now=NOW))
    shuffled = list(vms)
    random.Random(7).shuffle(shuffled)
    assert c.plan(fleet(list(reversed(hosts)), shuffled, now=NOW)) == first
    assert len(first.moves) == 2


def test_replanning_the_predicted_fleet_moves_nothing_back() -> None:
    hosts = [host("A"), host("B")]
    first = c.plan(fleet(hosts, hot_a(), now=NOW), c.Policy(candidates="victims"))
    (move,) = first.moves
    after = [
        replace(v, host=move.destination, moves=(c.PastMove(NOW, "A"),)) if v.uuid == move.server else v
        for v in hot_a()
    ]
    again = c.plan(fleet(hosts, after, now=NOW + 7200))
    assert again.moves == ()
