from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kumo.scheduler import SchedulerConfig
from kumo.scheduler.weighers import normalize, weigh_hosts

from .builders import HostBuilder, make_host, make_request, make_snapshot


@dataclass
class Case:
    id: str
    hosts: list[HostBuilder]
    expected: list[str]  # host names, best first
    config: SchedulerConfig = field(default_factory=SchedulerConfig)
    request: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, dict[str, int]] = field(default_factory=dict)


def free(name: str, vcpus: int, ram: int) -> HostBuilder:
    return make_host(name).vcpus(vcpus).ram(ram)


CASES = [
    Case(
        "spread/most-free-first",
        [free("a", 4, 1024), free("b", 8, 8192), free("c", 6, 4096)],
        ["b", "c", "a"],
    ),
    Case(
        "pack/least-free-first",
        [free("a", 4, 1024), free("b", 8, 8192), free("c", 6, 4096)],
        ["a", "c", "b"],
        SchedulerConfig(strategy="pack"),
    ),
    Case(
        "spread/ram-only",
        [free("a", 16, 1024), free("b", 1, 2048)],
        ["b", "a"],
        SchedulerConfig(cpu_weight=0.0),
    ),
    Case(
        "spread/cpu-only",
        [free("a", 16, 1024), free("b", 1, 2048)],
        ["a", "b"],
        SchedulerConfig(ram_weight=0.0),
    ),
    Case(
        "spread/used-counts",
        [make_host("a").vcpus(8, used=7).ram(8192, used=8000), make_host("b").vcpus(4).ram(4096)],
        ["b", "a"],
    ),
    Case("ties/by-name", [free("b", 4, 4096), free("a", 4, 4096)], ["a", "b"]),
    Case(
        "canary/suspect-ranks-below-every-healthy-host",
        [free("a", 16, 16384).canary_suspect(), free("b", 1, 512), free("c", 2, 1024)],
        ["c", "b", "a"],
    ),
    Case(
        "canary/all-suspect-resources-decide",
        [free("a", 16, 16384).canary_suspect(), free("b", 1, 512).canary_suspect()],
        ["a", "b"],
    ),
    Case(
        "soft-affinity/members-beat-free-space",
        [free("a", 16, 16384), free("b", 2, 1024), free("c", 2, 1024)],
        ["c", "b", "a"],
        request={"group": "soft-affinity"},
        groups={"g1": {"c": 2, "b": 1}},
    ),
    Case(
        "soft-anti-affinity/fewest-members-first",
        [free("a", 16, 16384), free("b", 2, 1024), free("c", 2, 1024)],
        ["c", "b", "a"],
        request={"group": "soft-anti-affinity"},
        groups={"g1": {"a": 2, "b": 1}},
    ),
    Case(
        "soft-weights-off/resources-decide",
        [free("a", 16, 16384), free("b", 2, 1024)],
        ["a", "b"],
        SchedulerConfig(soft_anti_affinity_weight=0.0),
        request={"group": "soft-anti-affinity"},
        groups={"g1": {"a": 3}},
    ),
    Case(
        "hard-policy/no-soft-weighing",
        [free("a", 16, 16384), free("b", 2, 1024)],
        ["a", "b"],
        request={"group": "affinity"},
        groups={"g1": {"b": 1}},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_ranking(case: Case) -> None:
    snapshot = make_snapshot(*case.hosts, groups=case.groups)
    ranked = weigh_hosts(list(snapshot.hosts.values()), make_request(**case.request), snapshot, case.config)
    assert [h.name for h, _ in ranked] == case.expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], []),
        ([5.0], [0.0]),
        ([3.0, 3.0], [0.0, 0.0]),
        ([0.0, 5.0, 10.0], [0.0, 0.5, 1.0]),
        ([-2.0, 0.0], [0.0, 1.0]),
    ],
)
def test_normalize(values: list[float], expected: list[float]) -> None:
    assert normalize(values) == expected


def test_weights_combine_normalized_scores() -> None:
    snapshot = make_snapshot(free("a", 2, 1024), free("b", 4, 2048))
    ranked = weigh_hosts(
        list(snapshot.hosts.values()), make_request(), snapshot, SchedulerConfig(ram_weight=2.0)
    )
    assert [(h.name, w) for h, w in ranked] == [("b", 3.0), ("a", 0.0)]


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(ValueError, match="strategy"):
        SchedulerConfig(strategy="random")
