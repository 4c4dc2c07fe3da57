"""The scheduler's in-memory index of every host provider's capacity and usage, one per worker.

A scheduling pass used to find its sample of fitting hosts with GET /allocation_candidates' own
query (two statements that visit inventories and usage in the database on every pass). The
index answers the same question from memory: which hosts have every requested class with room
for the amounts asked, walked from a random start. It is only a prefilter: the pass then reads
the sampled hosts from the database (kumo.compute.fleet_snapshot.load_snapshot), filters and weighs
that exact read, and claims with the provider-generation compare-and-swap. A stale index can
therefore cost a worse sample or a wider read, never a wrong placement or a wrong "no valid
host" (the whole fleet is read from the database before that answer).

How it stays current, cheaply:

* a full load the first time (hosts, their inventories and usage summed by provider);
* `sync`: the allocations written since the last one (allocation ids only grow) are added to
  usage, and hosts registered since are loaded — two indexed range reads in one statement. The
  scheduler loop syncs between passes, off a request's path (as the Kubernetes scheduler's
  cache is kept current by watches, not by its scheduling cycle); a pass syncs first only when
  that sync is older than kumo.compute.scheduling.FLEET_SYNC_MAX_AGE;
* every exact read of the database a pass makes is written back (`observe`): usage that went
  down (a server deleted), inventory changes and hosts that are gone are corrected for the
  hosts read. A pass that falls back to the whole fleet corrects them all.

An allocation committed out of id order (a lower id after a higher one was seen) is missed by
`sync` until an exact read of its host: the host looks emptier than it is, gets sampled, and
the exact read corrects it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import CompoundSelect, bindparam, func, literal, null, select, union_all
from sqlalchemy.orm import Session

from kumo.compute.models import ComputeHost
from kumo.placement.models import Allocation, Inventory
from kumo.scheduler import capacity as capacity_rule
from kumo.scheduler.snapshot import Snapshot

# One host's provider as read: capacity (kumo.scheduler.capacity.capacity), largest single
# allocation, and usage, per resource class.
_Provider = tuple[Mapping[str, int], Mapping[str, int], Mapping[str, int]]
# What a walk checks per requested class: the amount, and capacity, max_unit and usage by provider.
_Columns = list[tuple[int, dict[int, int], dict[int, int], dict[int, int]]]


def _fits(provider_id: int, columns: _Columns) -> bool:
    """The provider holds every class asked for, with room for the amount within max_unit (the
    scheduler's ResourcesFilter's verdict: kumo.scheduler.capacity.fits)."""
    for amount, capacity, max_unit, used in columns:
        room = capacity.get(provider_id)
        if room is None or not capacity_rule.fits(
            room, used.get(provider_id, 0), amount, max_unit.get(provider_id, amount)
        ):
            return False
    return True


# One round trip per sync: hosts registered and allocations written since the marks.
_CHANGES: CompoundSelect[Any] = union_all(
    select(literal(True), ComputeHost.id, ComputeHost.provider_id, null(), null()).where(
        ComputeHost.id > bindparam("host_mark")
    ),
    select(
        literal(False), Allocation.id, Allocation.provider_id, Allocation.resource_class, Allocation.used
    ).where(Allocation.id > bindparam("allocation_mark")),
)


class FleetIndex:
    """Host providers by id, and by the set of classes they hold (the walk of a request visits
    only providers holding every class it asks for). Thread-safe; meant to live as long as its
    worker (kumo.runtime.Runtime.fleet)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Class -> provider id -> amount, and the classes each provider holds (one shared set per
        # combination): dicts of ints are invisible to CPython's collector, so 60,000 providers add
        # nothing to a full collection (an object or a dict per provider would).
        self._classes: dict[int, frozenset[str]] = {}
        self._capacity: dict[str, dict[int, int]] = {}
        self._max_unit: dict[str, dict[int, int]] = {}
        self._used: dict[str, dict[int, int]] = {}
        self._class_sets: dict[frozenset[str], frozenset[str]] = {}
        self._by_classes: dict[frozenset[str], list[int]] = {}
        self._walks: dict[frozenset[str], list[int]] = {}  # request classes -> providers to walk
        self._allocation_mark = -1  # -1: never loaded
        self._host_mark = 0
        self._synced_at = 0.0  # time.monotonic() when the last sync started

    @property
    def loaded(self) -> bool:
        return self._allocation_mark >= 0

    def __len__(self) -> int:
        return len(self._classes)

    # -- keeping current -------------------------------------------------------------------

    def sync(self, session: Session, max_age: float = 0.0) -> None:
        """Bring the index up to date with what was written since the last sync (a full load
        the first time); nothing when the last sync started less than `max_age` seconds ago."""
        with self._lock:
            now = time.monotonic()
            if self.loaded and now - self._synced_at < max_age:
                return
            self._synced_at = now
            if not self.loaded:
                self._load(session, None)
                return
            marks = {"host_mark": self._host_mark, "allocation_mark": self._allocation_mark}
            changes: list[Any] = list(session.connection().execute(_CHANGES, marks).all())
            new_hosts = sorted((row[1], row[2]) for row in changes if row[0])
            rows = sorted((row[1], row[2], row[3], row[4]) for row in changes if not row[0])
            if new_hosts:
                self._host_mark = new_hosts[-1][0]
                # Their usage up to the current mark; the allocations below come on top.
                self._load(session, [provider_id for _, provider_id in new_hosts])
            if rows:
                self._allocation_mark = rows[-1][0]
            known, usage = self._classes, self._used
            for _, provider_id, resource_class, amount in rows:
                if provider_id in known:
                    used = usage.setdefault(resource_class, {})
                    used[provider_id] = used.get(provider_id, 0) + amount

    def _load(self, session: Session, provider_ids: list[int] | None) -> None:
        """Load every host provider (None) or these: inventories, then usage up to the
        allocation mark taken first (later allocations come with the next sync)."""
        if provider_ids is None:
            self._allocation_mark = session.scalar(select(func.coalesce(func.max(Allocation.id), 0))) or 0
            self._host_mark = session.scalar(select(func.coalesce(func.max(ComputeHost.id), 0))) or 0
        hosts = select(ComputeHost.provider_id)
        if provider_ids is not None:
            hosts = hosts.where(ComputeHost.provider_id.in_(provider_ids))
        inventories = select(
            Inventory.provider_id, Inventory.resource_class, Inventory.total, Inventory.reserved,
            Inventory.allocation_ratio, Inventory.max_unit,
        ).where(Inventory.provider_id.in_(hosts))  # fmt: skip
        usage = (
            select(Allocation.provider_id, Allocation.resource_class, func.sum(Allocation.used))
            .where(Allocation.provider_id.in_(hosts), Allocation.id <= self._allocation_mark)
            .group_by(Allocation.provider_id, Allocation.resource_class)
        )
        loaded: dict[int, tuple[dict[str, int], dict[str, int], dict[str, int]]] = {}
        for provider_id, resource_class, total, reserved, ratio, unit in session.execute(inventories):
            provider = loaded.get(provider_id)
            if provider is None:
                provider = loaded[provider_id] = ({}, {}, {})
            provider[0][resource_class] = capacity_rule.capacity(total, reserved, ratio)
            provider[1][resource_class] = unit
        for provider_id, resource_class, used in session.execute(usage):
            provider = loaded.get(provider_id)
            if provider is not None:
                provider[2][resource_class] = int(used or 0)
        if provider_ids is None:
            self._classes, self._capacity, self._max_unit, self._used = {}, {}, {}, {}
            self._by_classes, self._class_sets = {}, {}
        for provider_id in sorted(loaded):
            self._put(provider_id, loaded[provider_id])

    def observe(self, snapshot: Snapshot, provider_ids: Iterable[int] | None = None) -> None:
        """Write back an exact read: every host in `snapshot` as read, and the providers of
        `provider_ids` that the read did not return are gone (None: the snapshot is the whole
        fleet, so every provider it lacks is gone)."""
        with self._lock:
            if not self.loaded:
                return
            seen: set[int] = set()
            for host in snapshot.hosts.values():
                seen.add(host.provider_id)
                self._put(host.provider_id, (host.capacity, host.max_unit, host.used))
            gone = (set(self._classes) if provider_ids is None else set(provider_ids)) - seen
            for provider_id in gone:
                self._drop(provider_id)

    def _put(self, provider_id: int, provider: _Provider) -> None:
        capacity, max_unit, used = provider
        old = self._classes.get(provider_id)
        if old is not None:
            self._forget(provider_id)
        held = frozenset(capacity)
        held = self._classes[provider_id] = self._class_sets.setdefault(held, held)
        for columns, amounts in ((self._capacity, capacity), (self._max_unit, max_unit), (self._used, used)):
            for resource_class, amount in amounts.items():
                columns.setdefault(resource_class, {})[provider_id] = amount
        if old != held:
            if old is not None:
                self._by_classes[old].remove(provider_id)
            self._by_classes.setdefault(held, []).append(provider_id)
            self._walks.clear()

    def _drop(self, provider_id: int) -> None:
        old = self._classes.pop(provider_id, None)
        if old is not None:
            self._forget(provider_id)
            self._by_classes[old].remove(provider_id)
            self._walks.clear()

    def _forget(self, provider_id: int) -> None:
        for columns in (self._capacity, self._max_unit, self._used):
            for column in columns.values():
                column.pop(provider_id, None)

    # -- the prefilter ---------------------------------------------------------------------

    def sample(
        self, resources: Mapping[str, int], limit: int, rng: random.Random | Any = random
    ) -> list[int]:
        """Up to `limit` providers that hold every class of `resources` with room for it (and
        within max_unit), walked in id order from a random start and wrapping around, so that
        concurrent workers weigh different hosts of a large fleet."""
        wanted = tuple((rc, amount) for rc, amount in sorted(resources.items()) if amount > 0)
        classes = frozenset(rc for rc, _ in wanted)
        with self._lock:
            walk = self._walks.get(classes)
            if walk is None:
                walk = sorted(
                    pid for held, pids in self._by_classes.items() if classes <= held for pid in pids
                )
                self._walks[classes] = walk
            columns = [
                (amount, self._capacity.get(rc, {}), self._max_unit.get(rc, {}), self._used.get(rc, {}))
                for rc, amount in wanted
            ]
            found: list[int] = []
            count = len(walk)
            start = rng.randrange(count) if count > limit else 0
            for step in range(count):
                provider_id = walk[(start + step) % count]
                if _fits(provider_id, columns):
                    found.append(provider_id)
                    if len(found) >= limit:
                        break
            return found
