"""The precache fan-out planner: which (host, image) of a job starts copying now, and from
where. Pure: it takes the job's rows as they are (with each host's liveness) and returns a
decision; no I/O, no clock. The service runs it after every change of a job (created, a
host's report, a host found down) and commits its decision in the same transaction.

The rules, per image:
- A host whose service is down is skipped (as Nova skips it); one that was copying is
  skipped too, so a dead seed is replaced on the next pass.
- Hosts are grouped by rack label (hosts without one form one rack, ""). A rack with no
  verified copy and no copy in flight gets ONE seed, copying from the origin; the origin
  serves at most `origin_concurrency` copies at once over the whole job (seeds wait their
  turn), so the origin sends one copy per rack.
- A host holding a verified copy (`cached` or `existing`, up, and with a registered peer
  endpoint) is a holder: it serves at most `peers_per_holder` hosts of its rack at once,
  counting every task that lists it (first or as a fallback). Every queued host of a rack that
  has a holder with a free slot copies from it; its sources are that holder, then up to
  `peer_fallbacks` other holders of the rack that still have a slot. A peer task never lists
  the origin: when its peers fail, the task fails back and the planner decides again. No peer
  traffic crosses racks unless `cross_rack_peers`.
- Origin copies are counted per (rack, image) (`Target.origin_attempts`): a rack is seeded
  again after a failed or dead seed, preferring a host that has not tried the origin yet, at
  most `rack_origin_attempts` times; after that the rack's remaining rows are errors that say
  why: "no copy in the rack can serve its peers…" when copies are held there by hosts that
  cannot serve (down, or without a peer endpoint), else "origin copy failed" (no copy is held:
  the origin copies failed, or the copies were dropped since).
- A queued host whose peer copies failed avoids the holders they listed (`failed_from`); when
  the rack has no other holder it falls back to the origin: an origin copy while the rack's
  origin budget lasts, one such copy in flight per rack at a time; once the budget is spent it
  copies from those holders again (its attempts are bounded). The origin therefore serves at most
  racks × rack_origin_attempts copies of an image, and exactly one per rack when nothing fails.
- Retries (`after_failure`): a failed (host, image) goes back to the queue until it has been
  tried `max_attempts` times, then it is an error.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ORIGIN = "origin"
PEER = "peer:"

QUEUED = "queued"
DOWNLOADING = "downloading"
CACHED = "cached"
EXISTING = "existing"
ERROR = "error"
SKIPPED = "skipped"
UNSUPPORTED = "unsupported"
HOLDING = frozenset({CACHED, EXISTING})
ACTIVE = frozenset({QUEUED, DOWNLOADING})
TERMINAL = frozenset({CACHED, EXISTING, ERROR, SKIPPED, UNSUPPORTED})

HOST_DOWN = "host down"
ORIGIN_FAILED = "origin copy failed"  # the budget is spent and no copy is held in the rack
# the budget is spent and copies are held in the rack, but by hosts that cannot serve a peer
# (down, or without a peer endpoint)
NO_SERVING_COPY = "no copy in the rack can serve its peers and its origin copies are spent"


def budget_spent(reason: str, tries: int) -> str:
    return f"{reason} ({tries} origin copies)"


@dataclass(frozen=True)
class Target:
    """One image on one host of the job, as it stands."""

    host: str
    image_id: str
    rack: str | None = None
    state: str = QUEUED
    source: str | None = None  # while downloading or once done: "origin" | "peer:<host>"
    attempts: int = 0
    up: bool = True
    free_disk_gb: int = 0
    origin_attempts: int = 0  # copies of this row the origin was asked for so far
    serves: bool = True  # its agent registered a peer endpoint
    planned: tuple[str, ...] = ()  # while downloading: every source its task lists
    failed_from: tuple[str, ...] = ()  # the holders its failed peer copies listed (this job)


@dataclass(frozen=True)
class Policy:
    origin_concurrency: int = 4
    peers_per_holder: int = 2
    peer_fallbacks: int = 0  # a fallback holds a slot of its holder as its first source does
    max_attempts: int = 3
    cross_rack_peers: bool = False
    rack_origin_attempts: int = 3


@dataclass(frozen=True)
class Assignment:
    host: str
    image_id: str
    sources: tuple[str, ...]  # ("origin",) for a seed, else ("peer:<host>", …)

    @property
    def source(self) -> str:
        return self.sources[0]


@dataclass(frozen=True)
class Skip:
    host: str
    image_id: str
    reason: str


@dataclass(frozen=True)
class Plan:
    assignments: tuple[Assignment, ...] = ()
    skips: tuple[Skip, ...] = ()
    errors: tuple[Skip, ...] = ()  # rows that cannot be copied any more (reason given)


def peer(host: str) -> str:
    return f"{PEER}{host}"


def peer_host(source: str | None) -> str | None:
    return source[len(PEER) :] if source and source.startswith(PEER) else None


def plan(targets: Iterable[Target], policy: Policy) -> Plan:
    rows = list(targets)
    skips = tuple(Skip(t.host, t.image_id, HOST_DOWN) for t in rows if t.state in ACTIVE and not t.up)
    live = [t for t in rows if t.up]
    origin_busy = sum(1 for t in live if t.state == DOWNLOADING and t.source == ORIGIN)
    assignments: list[Assignment] = []
    errors: list[Skip] = []
    by_image: dict[str, list[Target]] = defaultdict(list)
    for t in rows:
        by_image[t.image_id].append(t)
    for image_id in sorted(by_image):
        made, failed, origin_busy = _plan_image(image_id, by_image[image_id], policy, origin_busy)
        assignments += made
        errors += failed
    return Plan(tuple(assignments), skips, tuple(errors))


def _rack(t: Target) -> str:
    return t.rack or ""


def _plan_image(
    image_id: str, rows: Sequence[Target], policy: Policy, origin_busy: int
) -> tuple[list[Assignment], list[Skip], int]:
    """`rows`: every row of the image (dead hosts' too: their origin copies still count)."""
    serving: Counter[str] = Counter()
    holders: dict[str, list[str]] = defaultdict(list)
    in_flight: Counter[str] = Counter()
    queued: dict[str, list[Target]] = defaultdict(list)
    origin_tries: Counter[str] = Counter()
    origin_in_flight: Counter[str] = Counter()
    landed: set[str] = set()  # racks where a copy is held (serving or not)
    for t in sorted(rows, key=lambda t: t.host):
        origin_tries[_rack(t)] += t.origin_attempts
        if t.state in HOLDING:
            landed.add(_rack(t))
        if not t.up:
            continue
        if t.state in HOLDING and t.serves:
            holders[_rack(t)].append(t.host)
        elif t.state == DOWNLOADING:
            in_flight[_rack(t)] += 1
            listed = t.planned or ((t.source,) if t.source else ())
            serving.update(s for s in set(listed) if peer_host(s))
            origin_in_flight[_rack(t)] += ORIGIN in listed
        elif t.state == QUEUED:
            queued[_rack(t)].append(t)
    everyone = sorted(h for hs in holders.values() for h in hs)
    made: list[Assignment] = []
    failed: list[Skip] = []
    for rack in sorted(queued):
        # a seed is retried on another host: the ones that tried the origin least go first, then
        # the ones whose peer copies failed (they waited longest), then the most free disk
        waiting = sorted(
            queued[rack],
            key=lambda t: (t.origin_attempts, not t.failed_from, -t.free_disk_gb, t.host),
        )
        rack_holders = holders.get(rack) or (everyone if policy.cross_rack_peers else [])
        free = {h: policy.peers_per_holder - serving[peer(h)] for h in rack_holders}
        if not rack_holders:
            if in_flight[rack]:
                continue
            if origin_tries[rack] >= policy.rack_origin_attempts:
                why = budget_spent(NO_SERVING_COPY if rack in landed else ORIGIN_FAILED, origin_tries[rack])
                failed += [Skip(t.host, image_id, why) for t in sorted(waiting, key=lambda t: t.host)]
            elif origin_busy < policy.origin_concurrency:
                made.append(Assignment(waiting[0].host, image_id, (ORIGIN,)))
                origin_busy += 1
            continue
        # A host whose peer copies failed avoids the holders it failed from. When every holder of
        # the rack is one of those, it falls back to the origin, within the rack's origin budget
        # and one such copy in flight per rack at a time; once the budget is spent it tries them
        # again (its own attempts are bounded: it never waits forever).
        for t in waiting:
            fresh = [h for h in rack_holders if h not in t.failed_from]
            if t.failed_from and not fresh and origin_tries[rack] < policy.rack_origin_attempts:
                if not origin_in_flight[rack] and origin_busy < policy.origin_concurrency:
                    made.append(Assignment(t.host, image_id, (ORIGIN,)))
                    origin_busy += 1
                    origin_in_flight[rack] += 1
                    origin_tries[rack] += 1
                continue
            open_ = [h for h in (fresh or rack_holders) if free[h] > 0]
            if not open_:
                continue
            chosen = max(open_, key=lambda h: (free[h], -rack_holders.index(h)))
            free[chosen] -= 1
            others = [h for h in open_ if h != chosen and free[h] > 0][: policy.peer_fallbacks]
            for h in others:  # a fallback holds a slot too: peers_per_holder bounds every listing
                free[h] -= 1
            made.append(Assignment(t.host, image_id, (peer(chosen), *map(peer, others))))
    return made, failed, origin_busy


def after_failure(attempts: int, policy: Policy) -> str:
    """A (host, image) whose copy failed after `attempts` tries: queued again, or an error."""
    return QUEUED if attempts < policy.max_attempts else ERROR


def job_state(states: Iterable[str], cancelled: bool = False) -> str:
    """running while any (host, image) is queued or copying; then cancelled (if asked), failed
    (nothing cached and at least one error) or done."""
    seen = list(states)
    if any(s in ACTIVE for s in seen):
        return "running"
    if cancelled:
        return "cancelled"
    if any(s == ERROR for s in seen) and not any(s in HOLDING for s in seen):
        return "failed"
    return "done"
