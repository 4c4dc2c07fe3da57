"""schedule(request, snapshot) -> Decision: filter, weigh, rank. Pure: no I/O, no clock, no
randomness; the same inputs give the same ranking (the rebalancer relies on that when it
replays the core on a hypothetical snapshot)."""

from __future__ import annotations

import itertools
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kumo.scheduler.filters import DEFAULT_FILTERS, FORCED_HOST_FILTERS, Filter
from kumo.scheduler.request import ScheduleRequest
from kumo.scheduler.snapshot import HostState, Snapshot
from kumo.scheduler.weighers import SchedulerConfig, soft_policy_honoured, weigh_hosts


@dataclass(frozen=True)
class Candidate:
    host: str
    provider_id: int
    generation: int  # pass to claims.claim() as seen_generation
    weight: float
    # For a soft-(anti-)affinity group: whether landing here honours the policy; else None.
    soft_policy_honoured: bool | None = None


@dataclass(frozen=True)
class Rejection:
    filter: str
    reason: str
    count: int


@dataclass(frozen=True)
class Decision:
    candidates: tuple[Candidate, ...]  # best first; claim the first, fall back to the next
    total_hosts: int
    rejections: tuple[Rejection, ...]  # pipeline order; each host charged to one filter

    @property
    def ok(self) -> bool:
        return bool(self.candidates)

    @property
    def hosts(self) -> list[str]:
        return [c.host for c in self.candidates]

    def removed_by(self, filter_name: str) -> int:
        return sum(r.count for r in self.rejections if r.filter == filter_name)

    @property
    def message(self) -> str:
        """E.g. 'No valid host was found. There are 5 hosts: 2 removed by ComputeFilter (service
        down), 3 removed by ResourcesFilter (insufficient MEMORY_MB)'; a summary when ok."""
        noun = "host" if self.total_hosts == 1 else "hosts"
        verb = "is" if self.total_hosts == 1 else "are"
        parts = [_describe(name, self._reasons_of(name)) for name in self._filters()]
        head = "" if self.ok else "No valid host was found. "
        tail = f": {', '.join(parts)}" if parts else ""
        return f"{head}There {verb} {self.total_hosts} {noun}{tail}"

    def _filters(self) -> list[str]:
        return list(dict.fromkeys(r.filter for r in self.rejections))

    def _reasons_of(self, filter_name: str) -> list[Rejection]:
        return [r for r in self.rejections if r.filter == filter_name]


def _describe(filter_name: str, rejections: list[Rejection]) -> str:
    total = sum(r.count for r in rejections)
    if len(rejections) == 1:
        why = rejections[0].reason
    else:
        why = ", ".join(f"{r.count} {r.reason}" for r in rejections)
    return f"{total} removed by {filter_name} ({why})"


def schedule(
    request: ScheduleRequest,
    snapshot: Snapshot,
    config: SchedulerConfig | None = None,
    filters: Sequence[Filter] | None = None,
) -> Decision:
    config = config or SchedulerConfig()
    if filters is None:
        filters = FORCED_HOST_FILTERS if request.force_host is not None else DEFAULT_FILTERS
    sample = config.feasible_limit if _samplable(request) else None
    survivors, rejections = _filter(request, snapshot, filters, sample)
    ranked = weigh_hosts(survivors, request, snapshot, config, limit=config.max_candidates)
    candidates = tuple(
        Candidate(h.name, h.provider_id, h.generation, weight, _soft_policy_honoured(h, request, snapshot))
        for h, weight in ranked
    )
    return Decision(candidates, len(snapshot.hosts), rejections)


def schedule_batch(
    requests: Sequence[ScheduleRequest], snapshot: Snapshot, config: SchedulerConfig | None = None
) -> tuple[list[Decision], Snapshot]:
    """Schedule instances one after another on one read, each seeing the previous ones placed
    on their best candidate. Claim them in order; after any claim conflict, reload and
    reschedule the rest (the later decisions assumed the earlier best candidates)."""
    decisions = []
    for request in requests:
        decision = schedule(request, snapshot, config)
        decisions.append(decision)
        if decision.ok:
            snapshot = snapshot.after_claim(decision.candidates[0].host, request)
    return decisions, snapshot


def first_rejection(
    request: ScheduleRequest, host: HostState, snapshot: Snapshot, filters: Sequence[Filter] = DEFAULT_FILTERS
) -> Rejection | None:
    """The first filter of the pipeline that refuses `host` for `request` (count 1), or None when
    every filter passes it: the verdict `schedule` gives that host, asked of one host at a time
    (the rebalancer walks destinations in its own order on a hypothetical snapshot)."""
    for f in filters:
        if f.applies_to(request):
            result = f.check(host, request, snapshot)
            if not result.ok:
                return Rejection(f.name, result.reason, 1)
    return None


def _samplable(request: ScheduleRequest) -> bool:
    """A request whose verdict depends on no other instance's host: any feasible host will do."""
    return (
        request.group is None
        and not request.same_host
        and not request.different_host
        and request.force_host is None
        and request.requested_host is None
    )


def _filter(
    request: ScheduleRequest, snapshot: Snapshot, filters: Sequence[Filter], sample: int | None = None
) -> tuple[list[HostState], tuple[Rejection, ...]]:
    """The hosts every filter passes, and why the others failed. With `sample`, the walk starts
    at a host picked by the instance's uuid (instances of one pass start apart) and stops once
    `sample` hosts passed; the rejections then count the hosts walked."""
    survivors: list[HostState] = []
    counts: dict[str, Counter[str]] = {f.name: Counter() for f in filters}
    # The filters that can reject a host for this request (the others pass every host).
    active = [(f.name, f.check) for f in filters if f.applies_to(request)]
    hosts: Iterable[HostState] = snapshot.hosts.values()
    if sample is not None and len(snapshot.hosts) > sample:
        ordered = list(hosts)
        start = zlib.crc32(request.instance_uuid.encode()) % len(ordered)
        hosts = itertools.chain(ordered[start:], ordered[:start])
    for host in hosts:
        for name, check in active:
            result = check(host, request, snapshot)
            if not result.ok:
                counts[name][result.reason] += 1
                break
        else:
            survivors.append(host)
            if sample is not None and len(survivors) >= sample:
                break
    rejections = tuple(
        Rejection(name, reason, n) for name, reasons in counts.items() for reason, n in reasons.items()
    )
    return survivors, rejections


def _soft_policy_honoured(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> bool | None:
    return soft_policy_honoured(host, request, snapshot)  # per failure domain (kumo.scheduler.weighers)
