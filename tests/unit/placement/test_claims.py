from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from kumo.compute.fleet_snapshot import load_snapshot
from kumo.db import Database
from kumo.errors import ClaimConflict
from kumo.placement.claims import ConsumerHeld, claim, claim_first, release, rename_consumer
from kumo.placement.models import Allocation, Inventory, ResourceProvider
from kumo.scheduler import Candidate, ScheduleRequest, schedule, schedule_batch

from .fleet import add_host


def allocations(db: Database) -> dict[str, dict[str, tuple[int, int]]]:
    """consumer -> resource class -> (provider id, used)."""
    with db.transaction() as s:
        rows = s.scalars(select(Allocation)).all()
    found: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for a in rows:
        assert a.resource_class not in found[a.consumer_id], f"{a.consumer_id} allocated twice"
        found[a.consumer_id][a.resource_class] = (a.provider_id, a.used)
    return dict(found)


def generations(db: Database) -> dict[int, int]:
    with db.transaction() as s:
        return {pid: gen for pid, gen in s.execute(select(ResourceProvider.id, ResourceProvider.generation))}


def conflicts_counted() -> float:
    return REGISTRY.get_sample_value("kumo_claim_conflicts_total") or 0.0


def test_claim_writes_allocations_and_bumps_generation(db: Database) -> None:
    with db.transaction() as s:
        p = add_host(s, "h1").id
    with db.transaction() as s:
        claim(s, p, 0, "c1", {"VCPU": 2, "MEMORY_MB": 512, "DISK_GB": 0})
    assert allocations(db) == {"c1": {"VCPU": (p, 2), "MEMORY_MB": (p, 512)}}
    assert generations(db) == {p: 1}


def test_stale_generation_conflicts_and_writes_nothing(db: Database) -> None:
    with db.transaction() as s:
        p = add_host(s, "h1").id
    with db.transaction() as s:
        claim(s, p, 0, "c1", {"VCPU": 1})
    before = conflicts_counted()
    with pytest.raises(ClaimConflict), db.transaction() as s:
        claim(s, p, 0, "c2", {"VCPU": 1})
    assert conflicts_counted() == before + 1
    with db.transaction() as s:  # nothing written even without a rollback
        with pytest.raises(ClaimConflict):
            claim(s, p, 0, "c3", {"VCPU": 1})
    assert set(allocations(db)) == {"c1"}
    assert generations(db) == {p: 1}


def test_claim_first_falls_back_to_the_next_candidate(db: Database) -> None:
    with db.transaction() as s:
        p1, p2, p3 = (add_host(s, name).id for name in ("h1", "h2", "h3"))
    stale, fresh, spare = (
        Candidate("h1", p1, 5, 1.0),
        Candidate("h2", p2, 0, 0.5),
        Candidate("h3", p3, 0, 0.1),
    )
    with db.transaction() as s:
        assert claim_first(s, [stale, fresh, spare], "c1", {"VCPU": 1}) == fresh
    assert allocations(db) == {"c1": {"VCPU": (p2, 1)}}
    with pytest.raises(ClaimConflict), db.transaction() as s:
        claim_first(s, [stale, fresh, spare], "c2", {"VCPU": 1}, limit=2)  # h2 moved: 1 -> spare not tried
    assert generations(db) == {p1: 0, p2: 1, p3: 0}


def test_release_drops_allocations_and_bumps_their_providers(db: Database) -> None:
    with db.transaction() as s:
        p1, p2, p3 = (add_host(s, name).id for name in ("h1", "h2", "h3"))
    with db.transaction() as s:
        claim(s, p1, 0, "c1", {"VCPU": 1})
        claim(s, p2, 0, "c1", {"MEMORY_MB": 64})  # e.g. a migration holding two hosts
        claim(s, p2, 1, "c2", {"VCPU": 1})
    with db.transaction() as s:
        release(s, "c1")
        release(s, "nobody")
    assert set(allocations(db)) == {"c2"}
    assert generations(db) == {p1: 2, p2: 3, p3: 0}


def test_batch_scheduled_on_one_snapshot_claims_in_one_transaction(db: Database) -> None:
    with db.transaction() as s:
        p1 = add_host(s, "h1", {"VCPU": 2, "MEMORY_MB": 4096}).id
        p2 = add_host(s, "h2", {"VCPU": 1, "MEMORY_MB": 4096}).id
    requests = [ScheduleRequest(f"c{n}", "p1", {"VCPU": 1}) for n in range(3)]
    with db.transaction() as s:
        decisions, _ = schedule_batch(requests, load_snapshot(s))
        for request, decision in zip(requests, decisions, strict=True):
            best = decision.candidates[0]  # the generation tokens chain as after_claim predicted
            claim(s, best.provider_id, best.generation, request.instance_uuid, request.resources)
    assert Counter(p for c in allocations(db).values() for p, _ in c.values()) == {p1: 2, p2: 1}
    assert generations(db) == {p1: 2, p2: 1}


# -- concurrency -----------------------------------------------------------------------------

THREADS = 8
PER_THREAD = 4
REQUEST = {"VCPU": 1, "MEMORY_MB": 256}
# Capacities in VCPU: 4, int(2 * 2.0) = 4, 5 - 1 = 4 -> 12 places for 32 consumers.
FLEET = [("h0", {"VCPU": 4}, 1.0, 0), ("h1", {"VCPU": 2}, 2.0, 0), ("h2", {"VCPU": 5}, 1.0, 1)]


def place(db: Database, consumer: str, conflicts: Counter[str]) -> str:
    """The server-create loop: read, schedule, claim in a later transaction; retry on conflict.
    Reading and claiming in separate transactions (with a pause) lets the race happen on
    SQLite too, where every transaction is serialized by BEGIN IMMEDIATE."""
    request = ScheduleRequest(consumer, "p1", REQUEST)
    for _ in range(50):  # each conflict means someone else's claim committed: bounded by capacity
        with db.transaction() as s:
            decision = schedule(request, load_snapshot(s, heartbeat_timeout=3600))
        if not decision.ok:
            return "no-valid-host"
        best = decision.candidates[0]
        time.sleep(0.002)
        try:
            with db.transaction() as s:
                claim(s, best.provider_id, best.generation, consumer, REQUEST)
            return best.host
        except ClaimConflict:
            conflicts[consumer] += 1
    return "gave-up"


def test_concurrent_claims_never_overcommit(db: Database) -> None:
    with db.transaction() as s:
        for name, inventory, ratio, reserved in FLEET:
            add_host(s, name, {**inventory, "MEMORY_MB": 65536}, ratio=ratio, reserved=reserved)
    outcomes: dict[str, str] = {}
    conflicts: Counter[str] = Counter()
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(t: int) -> None:
        try:
            start.wait()
            for n in range(PER_THREAD):
                consumer = f"c-{t}-{n}"
                outcomes[consumer] = place(db, consumer, conflicts)
        except BaseException as exc:  # surfaced below: a thread's assert would be lost
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors

    with db.transaction() as s:
        names = {pid: name for pid, name in s.execute(select(ResourceProvider.id, ResourceProvider.name))}
        capacity = {
            names[i.provider_id]: int((i.total - i.reserved) * i.allocation_ratio)
            for i in s.scalars(select(Inventory).where(Inventory.resource_class == "VCPU"))
        }
    held = allocations(db)
    used: Counter[str] = Counter()
    for consumer, by_class in held.items():
        providers = {provider for provider, _ in by_class.values()}
        assert len(providers) == 1 and set(by_class) == set(REQUEST), (consumer, by_class)
        host = names[providers.pop()]
        assert outcomes[consumer] == host  # the allocation is where the claimer thinks it is
        used[host] += by_class["VCPU"][1]

    assert all(used[h] <= capacity[h] for h in capacity), (used, capacity)
    assert sum(used.values()) == sum(capacity.values()) == 12  # and nothing was left on the table
    placed = {c for c, outcome in outcomes.items() if outcome not in ("no-valid-host", "gave-up")}
    assert placed == set(held)
    assert Counter(outcomes.values())["no-valid-host"] == THREADS * PER_THREAD - 12
    assert sum(conflicts.values()) > 0, "the race never happened: the test proved nothing"
    assert generations(db) == {p: used[names[p]] for p in names}  # one bump per claim


def test_rename_consumer_hands_allocations_over(db: Database) -> None:
    with db.transaction() as s:
        p = add_host(s, "h1").id
    with db.transaction() as s:
        claim(s, p, 0, "c1", {"VCPU": 2})
    with db.transaction() as s:
        rename_consumer(s, "c1", "m1")
    assert allocations(db) == {"m1": {"VCPU": (p, 2)}}
    assert generations(db) == {p: 1}  # usage unchanged


def test_rename_consumer_refuses_a_consumer_holding_allocations(db: Database) -> None:
    """No silent merge: the target's own allocations would count twice as one consumer's."""
    with db.transaction() as s:
        p = add_host(s, "h1").id
    with db.transaction() as s:
        claim(s, p, 0, "c1", {"VCPU": 2})
    with db.transaction() as s:
        claim(s, p, 1, "m1", {"VCPU": 1})
    with pytest.raises(ConsumerHeld) as refused, db.transaction() as s:
        rename_consumer(s, "c1", "m1")
    assert refused.value.consumer == "m1"
    assert allocations(db) == {"c1": {"VCPU": (p, 2)}, "m1": {"VCPU": (p, 1)}}
