"""The scheduler's in-memory fleet index: which hosts it samples for a request, and how it
stays current (sync of what was written since, write-back of exact reads). On SQLite and
PostgreSQL."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from kumo.compute.fleet_index import FleetIndex
from kumo.compute.fleet_snapshot import load_snapshot
from kumo.db import Database
from kumo.scheduler.filters import resources_filter
from kumo.scheduler.request import ScheduleRequest
from tests.unit.placement.fleet import add_host, allocate, recorded_statements

VM = {"VCPU": 2, "MEMORY_MB": 1024}


def _loaded(db: Database) -> FleetIndex:
    index = FleetIndex()
    with db.transaction() as s:
        index.sync(s)
    return index


def _ids(db: Database) -> dict[str, int]:
    with db.transaction() as s:
        return {name: host.provider_id for name, host in load_snapshot(s).hosts.items()}


class _First:
    """A walk from the first provider in id order."""

    @staticmethod
    def randrange(count: int) -> int:
        return 0


def test_samples_only_hosts_with_every_class_room_and_max_unit(db: Database) -> None:
    with db.transaction() as s:
        full = add_host(s, "full", {"VCPU": 4, "MEMORY_MB": 4096})
        allocate(s, full, "c1", {"VCPU": 3})
        add_host(s, "fits", {"VCPU": 4, "MEMORY_MB": 4096})
        add_host(s, "no-memory", {"VCPU": 64})
        add_host(s, "small-unit", {"VCPU": 64, "MEMORY_MB": 4096}, max_unit=1)
        add_host(s, "node", {"CUSTOM_BAREMETAL": 1})
        add_host(s, "roomy", {"VCPU": 16, "MEMORY_MB": 4096, "DISK_GB": 100})
    ids = _ids(db)
    index = _loaded(db)
    assert len(index) == 6
    assert index.sample(VM, 10) == [ids["fits"], ids["roomy"]]
    assert index.sample({"CUSTOM_BAREMETAL": 1}, 10) == [ids["node"]]
    assert index.sample({"VCPU": 1, "DISK_GB": 101}, 10) == []


def test_a_sample_is_limited_and_walks_from_a_random_start_wrapping_around(db: Database) -> None:
    with db.transaction() as s:
        for n in range(6):
            add_host(s, f"h{n}")
    ids = sorted(_ids(db).values())
    index = _loaded(db)
    assert index.sample(VM, 2, rng=_First()) == ids[:2]
    seen = {tuple(index.sample(VM, 2, rng=random.Random(seed))) for seed in range(40)}
    assert len(seen) > 1  # different workers weigh different hosts
    assert all(len(sample) == 2 for sample in seen)
    assert (ids[5], ids[0]) in seen  # the walk wraps around the end
    assert sorted(index.sample(VM, 100)) == ids  # a limit above the fleet: every host, once


def test_sync_adds_new_allocations_and_new_hosts(db: Database) -> None:
    with db.transaction() as s:
        first = add_host(s, "h1", {"VCPU": 4, "MEMORY_MB": 4096})
    index = _loaded(db)
    with db.transaction() as s:
        allocate(s, first, "c1", {"VCPU": 3})  # h1 can no longer take 2 VCPU
        second = add_host(s, "h2", {"VCPU": 4, "MEMORY_MB": 4096})
        allocate(s, second, "c2", {"MEMORY_MB": 1024})
    assert index.sample(VM, 10) == [first.id]  # not synced yet
    with db.transaction() as s:
        index.sync(s)
    assert index.sample(VM, 10) == [second.id]
    with db.transaction() as s:
        allocate(s, second, "c3", {"MEMORY_MB": 3000})  # counted once, not with the host's load
        index.sync(s)
    assert index.sample(VM, 10) == []


def test_a_sync_younger_than_max_age_reads_nothing(db: Database) -> None:
    """The scheduler loop syncs between passes; a pass then skips its own sync (max_age)."""
    with db.transaction() as s:
        first = add_host(s, "h1", {"VCPU": 4, "MEMORY_MB": 4096})
    index = _loaded(db)
    with db.transaction() as s:
        allocate(s, first, "c1", {"VCPU": 3})
    with recorded_statements(db) as statements, db.transaction() as s:
        index.sync(s, max_age=60.0)
        assert index.sample(VM, 10) == [first.id]  # as of the last sync
        assert not [sql for sql in statements if "allocations" in sql]
        index.sync(s)
        assert index.sample(VM, 10) == []
        assert len([sql for sql in statements if "allocations" in sql]) == 1


def test_an_exact_read_corrects_usage_inventory_and_gone_hosts(db: Database) -> None:
    with db.transaction() as s:
        h1 = add_host(s, "h1", {"VCPU": 4, "MEMORY_MB": 4096})
        allocate(s, h1, "c1", {"VCPU": 4})
        h2 = add_host(s, "h2", {"VCPU": 4, "MEMORY_MB": 4096})
    index = _loaded(db)
    assert index.sample(VM, 10) == [h2.id]
    with db.transaction() as s:
        s.execute(text("DELETE FROM allocations WHERE consumer_id = 'c1'"))
        s.execute(text(f"DELETE FROM inventories WHERE provider_id = {h2.id}"))
        s.execute(text("DELETE FROM compute_hosts WHERE name = 'h2'"))
    with db.transaction() as s:
        index.sync(s)  # a delete is no new row: the index cannot know yet
        assert index.sample(VM, 10) == [h2.id]
        asked = [h1.id, h2.id]
        index.observe(load_snapshot(s, provider_ids=asked), asked)
    assert index.sample(VM, 10) == [h1.id]  # h1 emptied, h2 gone
    assert len(index) == 1


def test_a_whole_fleet_read_corrects_every_host(db: Database) -> None:
    with db.transaction() as s:
        h1 = add_host(s, "h1", {"VCPU": 4, "MEMORY_MB": 4096})
        allocate(s, h1, "c1", {"VCPU": 4})
    index = _loaded(db)
    assert index.sample(VM, 10) == []
    with db.transaction() as s:
        s.execute(text("DELETE FROM allocations"))
    with db.transaction() as s:
        index.observe(load_snapshot(s))
    assert index.sample(VM, 10) == [h1.id]


# -- against the exact read, on random fleets ----------------------------------------------

CLASSES = ["VCPU", "MEMORY_MB", "DISK_GB", "CUSTOM_GPU"]
inventory = st.dictionaries(st.sampled_from(CLASSES), st.integers(1, 12), min_size=1)
usage = st.dictionaries(st.sampled_from(CLASSES), st.integers(0, 14))  # may exceed capacity
host = st.tuples(inventory, st.sampled_from([1.0, 1.5, 0.7]), st.integers(0, 2), usage)
request = st.dictionaries(st.sampled_from(CLASSES), st.integers(1, 6), min_size=1)


def _fitting(db: Database, wanted: dict[str, int]) -> set[int]:
    """The brute-force answer: the hosts the scheduler's ResourcesFilter passes on an exact read."""
    probe = ScheduleRequest("probe", "p", wanted)
    with db.transaction() as s:
        snapshot = load_snapshot(s)
    return {h.provider_id for h in snapshot.hosts.values() if resources_filter(h, probe, snapshot).ok}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fleet=st.lists(host, max_size=8), later=st.lists(usage, max_size=8), wanted=request)
def test_the_sample_is_the_hosts_an_exact_read_fits(
    db: Database, fleet: list[Any], later: list[dict[str, int]], wanted: dict[str, int]
) -> None:
    with db.transaction() as s:
        for table in ("allocations", "inventories", "compute_hosts", "resource_providers"):
            s.execute(text(f"DELETE FROM {table}"))
        providers = []
        for n, (inventory_, ratio, reserved, used) in enumerate(fleet):
            provider = add_host(
                s, f"h{n}", inventory_, ratio=ratio, reserved=min(reserved, min(inventory_.values()))
            )
            allocate(s, provider, f"c{n}", {rc: amount for rc, amount in used.items() if amount})
            providers.append(provider)
    index = _loaded(db)
    assert set(index.sample(wanted, 1000)) == _fitting(db, wanted)
    with db.transaction() as s:  # claims made elsewhere since: the next sync sees them
        for n, (provider, used) in enumerate(zip(providers, later, strict=False)):
            allocate(s, provider, f"later{n}", {rc: amount for rc, amount in used.items() if amount})
        index.sync(s)
    assert set(index.sample(wanted, 1000)) == _fitting(db, wanted)


def _tracked_within(index: FleetIndex) -> int:
    """How many objects the collector tracks among those the index's attributes hold."""
    import gc

    seen: set[int] = set()
    todo = [value for value in vars(index).values() if isinstance(value, (dict, list, tuple, set, frozenset))]
    tracked = 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if gc.is_tracked(obj):
            tracked += 1
            todo.extend(gc.get_referents(obj))
    return tracked


def test_the_index_adds_nothing_for_the_collector_to_walk(db: Database) -> None:
    """A full collection walks every object the collector tracks: the index keeps its providers
    in dicts of ints, which it does not track, so a fleet of thousands of hosts costs a
    scheduler's full collections nothing (as an object per provider they cost 25 ms at 60,000
    hosts)."""
    import gc

    from kumo.scheduler.snapshot import HostState, Snapshot

    index = _loaded(db)
    hosts = [
        HostState(
            name=f"h{i}",
            provider_id=1000 + i,
            generation=0,
            capacity={"VCPU": 64, "MEMORY_MB": 262144, "DISK_GB": 2000},
            used={"VCPU": i % 32, "MEMORY_MB": 1024},
            max_unit={"VCPU": 64, "MEMORY_MB": 262144, "DISK_GB": 2000},
        )
        for i in range(5000)
    ]
    index.observe(Snapshot.of(hosts, {}, {}))
    assert len(index.sample(VM, 5000)) == 5000  # every host is there to sample
    gc.collect()
    assert len(index) == 5000
    assert _tracked_within(index) < 20
