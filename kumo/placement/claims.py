"""Claims: turn a scheduling decision into allocations, optimistically (Placement's protocol).

claim() compare-and-swaps the provider generation the scheduler saw
(`UPDATE resource_providers SET generation = generation + 1 WHERE id = :id AND generation = :seen`)
and only then inserts the allocation rows, in the caller's transaction.

Why no capacity re-check in SQL: every write that changes what a provider can take (allocations
here, inventory in the agent's report) bumps its generation in the same transaction. The
snapshot reads generations *before* usage and inventory (kumo.compute.fleet_snapshot), so the usage
the scheduler checked is at least as new as the generation it carries. If the swap matches,
nothing committed against that provider since that read: the scheduler's ResourcesFilter
verdict still holds. If anything did commit, the swap matches no row and we raise. The
invariant therefore rests on (1) the caller having filtered on the same snapshot the
generation came from, and (2) every inventory/allocation writer bumping the generation.

On ClaimConflict nothing has been written (the swap comes first), so the caller may try the
next candidate in the same transaction, or roll back, reload the snapshot and reschedule.

The scheduler's hot path makes the same claim, with the rest of a placement's writes, as one
plan its store commits (kumo.compute.scheduling.placement_plan, Store.commit_placement).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, cast

from sqlalchemy import CursorResult, delete, insert, select, update
from sqlalchemy.orm import Session

from kumo.errors import ClaimConflict
from kumo.metrics import CLAIM_CONFLICTS, CLAIM_SECONDS
from kumo.placement.models import Allocation, ResourceProvider
from kumo.scheduler.core import Candidate


def claim(
    session: Session, provider_id: int, seen_generation: int, consumer_id: str, resources: Mapping[str, int]
) -> None:
    """Allocate `resources` on the provider for the consumer, or raise ClaimConflict."""
    started = time.perf_counter()
    if not _bump_generation(session, provider_id, seen_generation):
        CLAIM_CONFLICTS.inc()
        raise ClaimConflict(f"resource provider {provider_id} changed since generation {seen_generation}")
    rows = [
        {"provider_id": provider_id, "consumer_id": consumer_id, "resource_class": rc, "used": amount}
        for rc, amount in resources.items()
        if amount > 0
    ]
    if rows:
        session.execute(insert(Allocation), rows)
    CLAIM_SECONDS.observe(time.perf_counter() - started)


def claim_first(
    session: Session,
    candidates: Iterable[Candidate],
    consumer_id: str,
    resources: Mapping[str, int],
    limit: int = 3,
) -> Candidate:
    """Claim on the first of the best `limit` candidates whose generation still matches;
    ClaimConflict when all of them moved (reload the snapshot and reschedule). Check
    `decision.ok` first: an empty candidate list also ends in ClaimConflict."""
    for tried, candidate in enumerate(candidates):
        if tried >= limit:
            break
        try:
            claim(session, candidate.provider_id, candidate.generation, consumer_id, resources)
        except ClaimConflict:
            continue
        return candidate
    raise ClaimConflict(f"every candidate for {consumer_id} changed under us")


def release(session: Session, consumer_id: str) -> None:
    """Drop the consumer's allocations and bump the generation of every provider they were on
    (in id order, so concurrent releases lock providers in the same order)."""
    provider_ids = session.scalars(
        select(Allocation.provider_id)
        .where(Allocation.consumer_id == consumer_id)
        .distinct()
        .order_by(Allocation.provider_id)
    ).all()
    if not provider_ids:
        return
    session.execute(delete(Allocation).where(Allocation.consumer_id == consumer_id))
    for provider_id in provider_ids:
        _bump_generation(session, provider_id, None)


def _bump_generation(session: Session, provider_id: int, seen: int | None) -> bool:
    stmt = update(ResourceProvider).where(ResourceProvider.id == provider_id)
    if seen is not None:
        stmt = stmt.where(ResourceProvider.generation == seen)
    stmt = stmt.values(generation=ResourceProvider.generation + 1).execution_options(
        synchronize_session=False
    )
    result = cast(CursorResult[Any], session.execute(stmt))
    return result.rowcount == 1


class ConsumerHeld(Exception):
    """The consumer allocations were to be handed to holds allocations of its own."""

    def __init__(self, consumer: str) -> None:
        super().__init__(f"consumer {consumer} already holds allocations")
        self.consumer = consumer


def rename_consumer(session: Session, old_consumer: str, new_consumer: str) -> None:
    """Hand a consumer's allocations to another consumer id (a move parks the source's
    allocations on a migration consumer). Usage is unchanged, so no generation moves.
    Refused (ConsumerHeld, nothing changed) when `new_consumer` already holds allocations:
    the two would silently count as one consumer's, twice on a shared provider."""
    if old_consumer == new_consumer:
        return
    held = session.scalar(select(Allocation.id).where(Allocation.consumer_id == new_consumer).limit(1))
    if held is not None:
        raise ConsumerHeld(new_consumer)
    session.execute(
        update(Allocation)
        .where(Allocation.consumer_id == old_consumer)
        .values(consumer_id=new_consumer)
        .execution_options(synchronize_session=False)
    )
