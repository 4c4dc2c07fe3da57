"""What a write of consumers' allocations must respect, whatever database carries it out.

The types of a write (`AllocationWrite`) and of a consumer's state before it, the order of its
checks (every provider named exists, then every consumer generation matches) and their
messages, Placement's consumer rows after a write (`consumer_rows`), the capacity rule over
the new rows as one query (`check_capacity`: kumo.placement.capacity's rule over
kumo.placement.candidates.usage_of) and the Conflict that names a row breaking it. The
database-specific executions of a write live behind the store seam (kumo.store): each one
applies these rules, none restates them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, literal, null, or_, select, union_all
from sqlalchemy.orm import Session

from kumo.compute.models import Instance
from kumo.errors import BadRequest, Conflict
from kumo.placement import capacity as capacity_sql
from kumo.placement.allocation_write import AllocationWrite
from kumo.placement.api.exceptions import ConcurrentUpdate
from kumo.placement.api_models import Consumer
from kumo.placement.candidates import usage_of
from kumo.placement.models import Allocation, Inventory, ResourceProvider
from kumo.scheduler import capacity as capacity_rule

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


CONSUMERS = cast(Table, Consumer.__table__)
INSTANCES = cast(Table, Instance.__table__)
ALLOCATIONS = cast(Table, Allocation.__table__)
PROVIDERS = cast(Table, ResourceProvider.__table__)
INVENTORIES = cast(Table, Inventory.__table__)

# The sources of a consumer's state, as consumer_states and the writes read them.
ROW, INSTANCE, HAS_ALLOCATIONS = "row", "instance", "allocations"
Sources = dict[str, tuple[int, str, str]]


def _states_query() -> Any:
    """Every source of a consumer's state, for many consumers in one round trip: its row, the
    instance with its uuid (kumo's scheduler claims without a consumer row), and whether it has
    allocations. Built once: per request only the parameters change."""
    uuids: Any = bindparam("uuids", expanding=True)
    return union_all(
        select(
            CONSUMERS.c.uuid,
            literal(ROW),
            CONSUMERS.c.generation,
            CONSUMERS.c.project_id,
            CONSUMERS.c.user_id,
        ).where(CONSUMERS.c.uuid.in_(uuids)),
        select(
            INSTANCES.c.uuid, literal(INSTANCE), literal(0), INSTANCES.c.project_id, INSTANCES.c.user_id
        ).where(INSTANCES.c.uuid.in_(uuids)),
        select(ALLOCATIONS.c.consumer_id, literal(HAS_ALLOCATIONS), literal(0), null(), null())
        .where(ALLOCATIONS.c.consumer_id.in_(uuids))
        .distinct(),
    )


_STATES = _states_query()


def consumer_states(session: Session, consumers: Iterable[str]) -> dict[str, ConsumerState]:
    """Whether each consumer has allocations, its row, and its instance's owner: one query."""
    wanted = sorted(set(consumers))
    found: dict[str, Sources] = {c: {} for c in wanted}
    if wanted:
        for uuid, source, generation, project, user in session.execute(_STATES, {"uuids": wanted}):
            found[uuid][source] = (generation, project, user)
    return {consumer: state_of(consumer, sources) for consumer, sources in found.items()}


def state_of(consumer: str, sources: Sources) -> ConsumerState:
    """A consumer's state from what was found of it (ROW, INSTANCE, HAS_ALLOCATIONS)."""
    has_allocations = HAS_ALLOCATIONS in sources
    if ROW in sources:
        generation, project, user = sources[ROW]
        return ConsumerState(consumer, has_allocations, generation, project, user, True)
    _, project, user = sources.get(INSTANCE, (0, INCOMPLETE, INCOMPLETE))
    return ConsumerState(consumer, has_allocations, 0, project, user, False)


def check_writes(
    writes: Sequence[AllocationWrite], ids: Mapping[str, int], states: Mapping[str, ConsumerState]
) -> None:
    """Every provider named exists (`ids`: uuid -> id), then every consumer generation matches:
    Placement's order of checks, and its messages."""
    for write in writes:
        for uuid in write.allocations:
            if uuid not in ids:
                raise BadRequest(f"Allocation for resource provider '{uuid}' that does not exist.")
    for write in writes:
        _check_generation(write, states[write.consumer])


def _check_generation(write: AllocationWrite, state: ConsumerState) -> None:
    if not write.check_generation:
        return
    expected = state.generation if state.exists else None
    if write.generation != expected:
        shown = "null" if expected is None else expected
        got = "None" if write.generation is None else write.generation
        raise ConcurrentUpdate(f"consumer generation conflict - expected {shown} but got {got}")


@dataclass(frozen=True)
class ConsumerRows:
    """Consumer rows after a write: deleted (no allocations left), compare-and-swapped
    (uuid, generation seen, whether it had allocations, project, user: generation + 1 when it
    had, 1 when it had a row but no allocations), or created at generation 1 (uuid, project, user)."""

    gone: list[str]
    updates: list[tuple[str, int, bool, str, str]]
    creates: list[tuple[str, str, str]]


def consumer_rows(writes: Sequence[AllocationWrite], states: Mapping[str, ConsumerState]) -> ConsumerRows:
    rows = ConsumerRows([], [], [])
    for write in writes:
        state = states[write.consumer]
        project = write.project_id or state.project_id
        user = write.user_id or state.user_id
        if not any(write.allocations.values()):
            rows.gone.append(write.consumer)
        elif state.has_row:
            rows.updates.append((write.consumer, state.generation, state.exists, project, user))
        else:
            rows.creates.append((write.consumer, project, user))
    return rows


def new_allocation_rows(
    writes: Sequence[AllocationWrite], ids: Mapping[str, int]
) -> list[tuple[int, str, str, int]]:
    """(provider id, consumer, resource class, amount) of every row the writes leave."""
    return [
        (ids[uuid], w.consumer, rc, amount)
        for w in writes
        for uuid, resources in w.allocations.items()
        for rc, amount in resources.items()
    ]


def _capacity_query() -> Any:
    inv, a = INVENTORIES.alias("inv"), ALLOCATIONS.alias("a")
    return (
        select(
            PROVIDERS.c.uuid,
            a.c.resource_class,
            a.c.used,
            inv.c.provider_id.label("has_inventory"),
            inv.c.min_unit,
            inv.c.max_unit,
            inv.c.step_size,
        )
        .select_from(
            a.join(PROVIDERS, PROVIDERS.c.id == a.c.provider_id).outerjoin(
                inv, (inv.c.provider_id == a.c.provider_id) & (inv.c.resource_class == a.c.resource_class)
            )
        )
        .where(
            a.c.consumer_id.in_(bindparam("consumers", expanding=True)),
            or_(
                inv.c.provider_id.is_(None),
                ~capacity_sql.within_units(inv, a.c.used),
                ~capacity_sql.has_room(inv, usage_of(a.c.provider_id, a.c.resource_class)),
            ),
        )
        .limit(1)
    )


_CAPACITY = _capacity_query()


def check_capacity(session: Session, consumers: list[str]) -> None:
    """The capacity rule (kumo.placement.capacity) over the consumers' new rows, in one query:
    an inventory of the class exists, the amount is within its units, and the provider's total
    usage leaves room."""
    row = session.execute(_CAPACITY, {"consumers": consumers}).first()
    if row is not None:
        capacity_conflict(
            row.uuid,
            row.resource_class,
            row.used,
            row.has_inventory,
            row.min_unit,
            row.max_unit,
            row.step_size,
        )


def capacity_conflict(
    uuid: str,
    rc: str,
    used: int,
    has_inventory: int | None,
    min_unit: int | None,
    max_unit: int | None,
    step_size: int | None,
) -> None:
    """Raise the Conflict for a new allocation row that breaks the capacity rule."""
    if has_inventory is None or min_unit is None or max_unit is None or step_size is None:
        raise Conflict(
            f"Unable to allocate inventory: Inventory for '{rc}' on resource provider '{uuid}' invalid."
        )
    if not capacity_rule.within_units(used, max_unit, min_unit, step_size):
        raise Conflict(
            f"Unable to allocate inventory: Allocation for {rc} on resource provider {uuid} violates "
            f"min_unit, max_unit, or step_size. Requested: {used}, min_unit: {min_unit}, "
            f"max_unit: {max_unit}, step_size: {step_size}"
        )
    raise Conflict(
        f"Unable to allocate inventory: Unable to create allocation for '{rc}' on resource provider "
        f"'{uuid}'. The requested amount would exceed the capacity."
    )
