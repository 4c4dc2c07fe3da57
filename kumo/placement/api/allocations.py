"""Allocations of consumers, usages, and the reshaper.

A write replaces the allocations of one or more consumers in one transaction: it bumps the
generation of every provider it touches first (in id order: the row locks serialise
concurrent writers of a provider), rewrites the rows, then checks the capacity rule over the
new rows. Any violation raises, and the transaction rolls back whole. The rules live in
kumo.placement.allocation_rules; the store of the session carries the write out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from kumo.compute.models import Instance
from kumo.errors import BadRequest, NotFound
from kumo.placement import allocation_rules as rules
from kumo.placement.allocation_rules import INCOMPLETE, ConsumerState
from kumo.placement.allocation_write import AllocationWrite
from kumo.placement.api.exceptions import InventoryInUse
from kumo.placement.api.inventories import set_inventories
from kumo.placement.api.providers import Provider, providers_by_uuid
from kumo.placement.api_models import Consumer
from kumo.placement.candidates import usage_of
from kumo.placement.claims import release
from kumo.placement.models import Allocation, Inventory, ResourceProvider
from kumo.placement.store_protocol import store_of

__all__ = [  # the names Placement's routes and views import from here
    "INCOMPLETE",
    "AllocationWrite",
    "ConsumerAllocations",
    "ConsumerState",
    "consumer_state",
    "consumer_states",
    "replace_allocations",
]


def consumer_states(session: Session, consumers: Iterable[str]) -> dict[str, ConsumerState]:
    """Whether each consumer has allocations, its row, and its instance's owner: one query."""
    return rules.consumer_states(session, consumers)


def consumer_state(session: Session, consumer: str) -> ConsumerState:
    return consumer_states(session, [consumer])[consumer]


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


def replace_allocations(session: Session, writes: list[AllocationWrite]) -> None:
    """Set the allocations of every consumer in `writes` (an empty mapping removes them), in
    the session's transaction, through its store (PlacementStore.replace_allocations: the checks and
    consumer rows of kumo.placement.allocation_rules, in as few statements as the database
    allows). Any violation raises, and the transaction must roll back whole."""
    store_of(session).replace_allocations(session, writes)


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
