"""Allocations of consumers, usages, and the reshaper.

A write replaces the allocations of one or more consumers in one transaction: it bumps the
generation of every provider it touches first (in id order: the row locks serialise
concurrent writers of a provider), rewrites the rows, then checks the capacity rule over the
new rows in one query. Any violation raises, and the transaction rolls back whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.compute.models import Instance
from kumo.errors import BadRequest, Conflict, NotFound
from kumo.placement.api.exceptions import ConcurrentUpdate, InventoryInUse
from kumo.placement.api.inventories import set_inventories
from kumo.placement.api.providers import Provider, bump_generation, providers_by_uuid
from kumo.placement.api_models import Consumer
from kumo.placement.candidates import usage_of
from kumo.placement.claims import release
from kumo.placement.models import Allocation, Inventory, ResourceProvider

# Placement's project and user for consumers it knows nothing about.
INCOMPLETE = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class ConsumerState:
    uuid: str
    exists: bool  # has allocations
    generation: int
    project_id: str
    user_id: str
    has_row: bool


@dataclass
class AllocationWrite:
    consumer: str
    allocations: Mapping[str, Mapping[str, int]]  # provider uuid -> resource class -> amount
    project_id: str | None = None
    user_id: str | None = None
    generation: int | None = None
    check_generation: bool = False  # microversion >= 1.28


def consumer_state(session: Session, consumer: str) -> ConsumerState:
    """Whether the consumer has allocations, its row, and its instance's owner: one query."""

    def of(column: Any, where: Any) -> Any:
        return select(column).where(where).limit(1).scalar_subquery()

    row = session.execute(
        select(
            exists().where(Allocation.consumer_id == consumer),
            of(Consumer.generation, Consumer.uuid == consumer),
            of(Consumer.project_id, Consumer.uuid == consumer),
            of(Consumer.user_id, Consumer.uuid == consumer),
            # kumo's scheduler claims for instances without a consumer row.
            of(Instance.project_id, Instance.uuid == consumer),
            of(Instance.user_id, Instance.uuid == consumer),
        )
    ).one()
    has_allocations, generation, project, user, instance_project, instance_user = row
    if generation is not None:
        return ConsumerState(consumer, bool(has_allocations), generation, project, user, True)
    if instance_project is None:
        instance_project, instance_user = INCOMPLETE, INCOMPLETE
    return ConsumerState(consumer, bool(has_allocations), 0, instance_project, instance_user, False)


@dataclass(frozen=True)
class ConsumerAllocations:
    state: ConsumerState
    by_provider: dict[str, tuple[int, dict[str, int]]]  # provider uuid -> (generation, resources)


def allocations_of_consumer(session: Session, consumer: str) -> ConsumerAllocations:
    rows = session.execute(
        select(ResourceProvider.uuid, ResourceProvider.generation, Allocation.resource_class, Allocation.used)
        .join(ResourceProvider, ResourceProvider.id == Allocation.provider_id)
        .where(Allocation.consumer_id == consumer)
        .order_by(ResourceProvider.id, Allocation.resource_class)
    )
    by_provider: dict[str, tuple[int, dict[str, int]]] = {}
    for uuid, generation, rc, used in rows:
        by_provider.setdefault(uuid, (generation, {}))[1][rc] = used
    return ConsumerAllocations(consumer_state(session, consumer), by_provider)


def allocations_on_provider(session: Session, provider: Provider) -> dict[str, tuple[int, dict[str, int]]]:
    """consumer -> (consumer generation, resources)."""
    rows = session.execute(
        select(Allocation.consumer_id, Allocation.resource_class, Allocation.used, Consumer.generation)
        .outerjoin(Consumer, Consumer.uuid == Allocation.consumer_id)
        .where(Allocation.provider_id == provider.id)
        .order_by(Allocation.consumer_id, Allocation.resource_class)
    )
    result: dict[str, tuple[int, dict[str, int]]] = {}
    for consumer, rc, used, generation in rows:
        result.setdefault(consumer, (generation or 0, {}))[1][rc] = used
    return result


def _check_generation(write: AllocationWrite, state: ConsumerState) -> None:
    if not write.check_generation:
        return
    expected = state.generation if state.exists else None
    if write.generation != expected:
        shown = "null" if expected is None else expected
        got = "None" if write.generation is None else write.generation
        raise ConcurrentUpdate(f"consumer generation conflict - expected {shown} but got {got}")


def _check_capacity(session: Session, consumers: list[str]) -> None:
    """The capacity rule over the consumers' new rows, in one query: an inventory of the
    class exists, the amount respects min_unit/max_unit/step_size, and the provider's total
    usage fits (total - reserved) * allocation_ratio."""
    inv = Inventory.__table__.alias("inv")
    a = Allocation.__table__.alias("a")
    capacity = (inv.c.total - inv.c.reserved) * inv.c.allocation_ratio
    row = session.execute(
        select(
            ResourceProvider.uuid,
            a.c.resource_class,
            a.c.used,
            inv.c.provider_id.label("has_inventory"),
            inv.c.min_unit,
            inv.c.max_unit,
            inv.c.step_size,
        )
        .select_from(
            a.join(ResourceProvider, ResourceProvider.id == a.c.provider_id).outerjoin(
                inv, (inv.c.provider_id == a.c.provider_id) & (inv.c.resource_class == a.c.resource_class)
            )
        )
        .where(
            a.c.consumer_id.in_(consumers),
            or_(
                inv.c.provider_id.is_(None),
                a.c.used < inv.c.min_unit,
                a.c.used > inv.c.max_unit,
                a.c.used % inv.c.step_size != 0,
                usage_of(a.c.provider_id, a.c.resource_class) > capacity,
            ),
        )
        .limit(1)
    ).first()
    if row is None:
        return
    uuid, rc = row.uuid, row.resource_class
    if row.has_inventory is None:
        raise Conflict(
            f"Unable to allocate inventory: Inventory for '{rc}' on resource provider '{uuid}' invalid."
        )
    if row.used < row.min_unit or row.used > row.max_unit or row.used % row.step_size:
        raise Conflict(
            f"Unable to allocate inventory: Allocation for {rc} on resource provider {uuid} violates "
            f"min_unit, max_unit, or step_size. Requested: {row.used}, min_unit: {row.min_unit}, "
            f"max_unit: {row.max_unit}, step_size: {row.step_size}"
        )
    raise Conflict(
        f"Unable to allocate inventory: Unable to create allocation for '{rc}' on resource provider "
        f"'{uuid}'. The requested amount would exceed the capacity."
    )


def _save_consumer(session: Session, write: AllocationWrite, state: ConsumerState) -> None:
    if not any(write.allocations.values()):
        session.execute(delete(Consumer).where(Consumer.uuid == write.consumer))
        return
    project = write.project_id or state.project_id
    user = write.user_id or state.user_id
    if state.has_row and state.exists:
        result = session.execute(
            update(Consumer)
            .where(Consumer.uuid == write.consumer, Consumer.generation == state.generation)
            .values(generation=Consumer.generation + 1, project_id=project, user_id=user)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], result).rowcount != 1:
            raise ConcurrentUpdate(f"consumer generation conflict for {write.consumer}")
        return
    if state.has_row:  # a row without allocations: the consumer starts over at generation 1
        result = session.execute(
            update(Consumer)
            .where(Consumer.uuid == write.consumer, Consumer.generation == state.generation)
            .values(generation=1, project_id=project, user_id=user)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], result).rowcount != 1:
            raise ConcurrentUpdate(f"consumer generation conflict for {write.consumer}")
        return
    try:
        # No savepoint: a concurrent creator's row fails this INSERT, and the whole
        # transaction rolls back with the ConcurrentUpdate anyway.
        session.execute(
            insert(Consumer).values(uuid=write.consumer, project_id=project, user_id=user, generation=1)
        )
    except IntegrityError as exc:
        raise ConcurrentUpdate(f"consumer generation conflict for {write.consumer}") from exc


def replace_allocations(session: Session, writes: list[AllocationWrite]) -> None:
    """Set the allocations of every consumer in `writes` (an empty mapping removes them)."""
    providers = providers_by_uuid(session, {u for w in writes for u in w.allocations})
    for write in writes:
        for uuid in write.allocations:
            if uuid not in providers:
                raise BadRequest(f"Allocation for resource provider '{uuid}' that does not exist.")
    states = {w.consumer: consumer_state(session, w.consumer) for w in writes}
    for write in writes:
        _check_generation(write, states[write.consumer])

    consumers = [w.consumer for w in writes]
    replacing = [c for c in consumers if states[c].exists]  # new consumers have nothing to drop
    old: set[int] = set()
    if replacing:
        old = set(
            session.scalars(
                select(Allocation.provider_id).where(Allocation.consumer_id.in_(replacing)).distinct()
            )
        )
    for provider_id in sorted(old | {p.id for p in providers.values()}):
        bump_generation(session, provider_id)
    if replacing:
        session.execute(delete(Allocation).where(Allocation.consumer_id.in_(replacing)))
    rows = [
        {"provider_id": providers[uuid].id, "consumer_id": w.consumer, "resource_class": rc, "used": amount}
        for w in writes
        for uuid, resources in w.allocations.items()
        for rc, amount in resources.items()
    ]
    if rows:
        session.execute(insert(Allocation), rows)
    _check_capacity(session, consumers)
    for write in writes:
        _save_consumer(session, write, states[write.consumer])


def delete_allocations(session: Session, consumer: str) -> None:
    if not session.execute(select(exists().where(Allocation.consumer_id == consumer))).scalar():
        raise NotFound(f"No allocations for consumer '{consumer}'")
    release(session, consumer)
    session.execute(delete(Consumer).where(Consumer.uuid == consumer))


def reshape(
    session: Session,
    inventories: Mapping[str, tuple[Mapping[str, Mapping[str, Any]], int]],
    writes: list[AllocationWrite],
) -> None:
    """POST /reshaper: new inventories (per provider uuid, with its generation) and new
    allocations, atomically. Inventory that still has allocations after the move is in use."""
    providers = providers_by_uuid(session, inventories)
    for uuid in inventories:
        if uuid not in providers:
            raise BadRequest(f"Resource provider '{uuid}' in inventories does not exist.")
    for uuid, (data, seen) in inventories.items():
        set_inventories(session, providers[uuid], data, seen, check_in_use=False)
    replace_allocations(session, writes)
    orphan = session.execute(
        select(ResourceProvider.uuid, Allocation.resource_class)
        .join(ResourceProvider, ResourceProvider.id == Allocation.provider_id)
        .where(
            Allocation.provider_id.in_([p.id for p in providers.values()]),
            ~exists().where(
                Inventory.provider_id == Allocation.provider_id,
                Inventory.resource_class == Allocation.resource_class,
            ),
        )
        .limit(1)
    ).first()
    if orphan is not None:
        raise InventoryInUse(
            f"update conflict: Inventory for '{orphan.resource_class}' on resource provider "
            f"'{orphan.uuid}' in use."
        )


# ---------------------------------------------------------------------------- usages


def provider_usages(session: Session, provider_id: int) -> dict[str, int]:
    """Usage of every class the provider has inventory of (0 when unallocated)."""
    inv = Inventory.__table__.alias("inv")
    rows = session.execute(
        select(inv.c.resource_class, usage_of(inv.c.provider_id, inv.c.resource_class))
        .where(inv.c.provider_id == provider_id)
        .order_by(inv.c.resource_class)
    )
    return {rc: int(used) for rc, used in rows}


def total_usages(session: Session, project_id: str, user_id: str | None = None) -> dict[str, int]:
    """Usage by the project's (and user's) consumers, per class."""
    project = func.coalesce(Consumer.project_id, Instance.project_id, INCOMPLETE)
    user = func.coalesce(Consumer.user_id, Instance.user_id, INCOMPLETE)
    query = (
        select(Allocation.resource_class, func.sum(Allocation.used))
        .outerjoin(Consumer, Consumer.uuid == Allocation.consumer_id)
        .outerjoin(Instance, Instance.uuid == Allocation.consumer_id)
        .where(project == project_id)
        .group_by(Allocation.resource_class)
        .order_by(Allocation.resource_class)
    )
    if user_id is not None:
        query = query.where(user == user_id)
    return {rc: int(used) for rc, used in session.execute(query)}
