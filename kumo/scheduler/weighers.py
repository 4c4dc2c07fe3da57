"""Host weighers: each scores a host with a raw number; scores are min-max normalized across
the hosts that passed the filters and summed with per-weigher multipliers (Nova's scheme)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kumo.scheduler.request import SOFT_AFFINITY, SOFT_ANTI_AFFINITY, ScheduleRequest
from kumo.scheduler.snapshot import HostState, Snapshot

SPREAD = "spread"
PACK = "pack"

Weigh = Callable[[HostState, ScheduleRequest, Snapshot], float]


@dataclass(frozen=True)
class Weigher:
    name: str
    weigh: Weigh
    # When given and false, the weigher scores every host alike for this request: all-equal
    # values normalize to 0, so skipping it changes no total.
    applies: Callable[[ScheduleRequest], bool] | None = None


@dataclass(frozen=True)
class SchedulerConfig:
    strategy: str = SPREAD  # "spread": most free capacity first; "pack": least free first
    ram_weight: float = 1.0
    cpu_weight: float = 1.0
    disk_weight: float = 0.0
    # Large enough to outvote the resource weighers (each contributes at most its weight).
    soft_affinity_weight: float = 10.0
    soft_anti_affinity_weight: float = 10.0
    # A host whose canaries failed in a row ranks below every healthy one that passed the
    # filters (as Nova's BuildFailureWeigher pushes back a host failing builds), never out.
    canary_weight: float = 100.0
    max_candidates: int = 10  # length of the ranked list handed to the claimer
    # Stop filtering once this many hosts passed (None: filter them all), as the Kubernetes
    # scheduler's numFeasibleNodesToFind does: the best of a sample spreads nearly as well. For
    # requests with no server group and no host hints only (see kumo.scheduler.core.schedule).
    feasible_limit: int | None = None

    def __post_init__(self) -> None:
        if self.strategy not in (SPREAD, PACK):
            raise ValueError(f"unknown scheduler strategy {self.strategy!r}")


def _free(resource_class: str) -> Weigh:
    return lambda host, request, snapshot: float(host.free(resource_class))


def _group_members(policy: str, sign: float) -> Weigh:
    def weigh(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> float:
        group = request.group
        if group is None or group.policy != policy:
            return 0.0
        domain = group.failure_domain
        value = host.failure_domain(domain)
        if value is None:  # unlabelled: cannot prove a spread or a pack, so rank it last
            return -1.0 if sign > 0 else sign * (sum(snapshot.group_hosts.get(group.uuid, {}).values()) + 1)
        return sign * snapshot.group_members_in(group.uuid, domain, value)

    return weigh


def soft_policy_honoured(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> bool | None:
    """For a soft-(anti-)affinity group: whether landing on `host` honours the policy over the
    group's failure domain (host, rack, az, region); None for any other request. A host
    without the domain's label never honours it (the spread cannot be proven)."""
    group = request.group
    if group is None or group.policy not in (SOFT_AFFINITY, SOFT_ANTI_AFFINITY):
        return None
    domain = group.failure_domain
    value = host.failure_domain(domain)
    if value is None:
        return False
    here = snapshot.group_members_in(group.uuid, domain, value)
    if group.policy == SOFT_ANTI_AFFINITY:
        return here < group.max_server_per_host
    return here > 0 or not snapshot.group_domains(group.uuid, domain)


RAM = Weigher("RAMWeigher", _free("MEMORY_MB"))
CPU = Weigher("CPUWeigher", _free("VCPU"))
DISK = Weigher("DiskWeigher", _free("DISK_GB"))


def _group_policy(policy: str) -> Callable[[ScheduleRequest], bool]:
    return lambda request: request.group is not None and request.group.policy == policy


SOFT_AFFINITY_WEIGHER = Weigher(
    "ServerGroupSoftAffinityWeigher", _group_members(SOFT_AFFINITY, 1.0), _group_policy(SOFT_AFFINITY)
)
SOFT_ANTI_AFFINITY_WEIGHER = Weigher(
    "ServerGroupSoftAntiAffinityWeigher",
    _group_members(SOFT_ANTI_AFFINITY, -1.0),
    _group_policy(SOFT_ANTI_AFFINITY),
)


def _canary(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> float:
    return -1.0 if host.canary_suspect else 0.0


CANARY = Weigher("CanaryWeigher", _canary)


def weighers(config: SchedulerConfig) -> list[tuple[Weigher, float]]:
    """The weighers with their multipliers; "pack" turns the free-capacity ones around."""
    sign = 1.0 if config.strategy == SPREAD else -1.0
    pairs = [
        (RAM, sign * config.ram_weight),
        (CPU, sign * config.cpu_weight),
        (DISK, sign * config.disk_weight),
        (SOFT_AFFINITY_WEIGHER, config.soft_affinity_weight),
        (SOFT_ANTI_AFFINITY_WEIGHER, config.soft_anti_affinity_weight),
        (CANARY, config.canary_weight),
    ]
    return [(w, m) for w, m in pairs if m != 0.0]


def normalize(values: Sequence[float]) -> list[float]:
    """Min-max to [0, 1]; all-equal values carry no preference and become 0."""
    if not values:
        return []
    low, high = min(values), max(values)
    if high == low:
        return [0.0] * len(values)
    return [(v - low) / (high - low) for v in values]


def weigh_hosts(
    hosts: Sequence[HostState],
    request: ScheduleRequest,
    snapshot: Snapshot,
    config: SchedulerConfig,
    limit: int | None = None,
) -> list[tuple[HostState, float]]:
    """Hosts with their combined weight, best first (ties broken by name, for determinism);
    only the best `limit` when given (a partial sort: the same first `limit` as the full one)."""
    totals = [0.0] * len(hosts)
    for weigher, multiplier in weighers(config):
        if weigher.applies is not None and not weigher.applies(request):
            continue
        raw = [weigher.weigh(h, request, snapshot) for h in hosts]
        for i, value in enumerate(normalize(raw)):
            totals[i] += multiplier * value
    pairs = zip(hosts, totals, strict=True)
    if limit is not None and limit < len(hosts):
        return heapq.nsmallest(limit, pairs, key=_rank_key)
    return sorted(pairs, key=_rank_key)


def _rank_key(pair: tuple[HostState, float]) -> tuple[float, str]:
    return (-pair[1], pair[0].name)
