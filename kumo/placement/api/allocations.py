"""Allocations of consumers, usages, and the reshaper.

A write replaces the allocations of one or more consumers in one transaction: it bumps the
generation of every provider it touches first (in id order: the row locks serialise
concurrent writers of a provider), rewrites the rows, then checks the capacity rule over the
new rows in one query. Any violation raises, and the transaction rolls back whole.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Integer,
    Table,
    bindparam,
    column,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    table,
    union,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.compute.models import Instance
from kumo.db import utcnow
from kumo.errors import BadRequest, Conflict, NotFound
from kumo.placement import capacity as capacity_sql
from kumo.placement.api.exceptions import ConcurrentUpdate, InventoryInUse
from kumo.placement.api.inventories import set_inventories
from kumo.placement.api.providers import Provider, providers_by_uuid
from kumo.placement.api_models import Consumer
from kumo.placement.candidates import usage_of
from kumo.placement.claims import release
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


@dataclass
class AllocationWrite:
    consumer: str
    allocations: Mapping[str, Mapping[str, int]]  # provider uuid -> resource class -> amount
    project_id: str | None = None
    user_id: str | None = None
    generation: int | None = None
    check_generation: bool = False  # microversion >= 1.28


_CONSUMERS = cast(Table, Consumer.__table__)
_INSTANCES = cast(Table, Instance.__table__)
_ALLOCS = cast(Table, Allocation.__table__)
_PROVIDERS = cast(Table, ResourceProvider.__table__)
_INVENTORIES = cast(Table, Inventory.__table__)


def _states_query() -> Any:
    """Every source of a consumer's state, for many consumers in one round trip: its row, the
    instance with its uuid (kumo's scheduler claims without a consumer row), and whether it has
    allocations. Built once: per request only the parameters change."""
    uuids: Any = bindparam("uuids", expanding=True)
    return union_all(
        select(
            _CONSUMERS.c.uuid,
            literal("row"),
            _CONSUMERS.c.generation,
            _CONSUMERS.c.project_id,
            _CONSUMERS.c.user_id,
        ).where(_CONSUMERS.c.uuid.in_(uuids)),
        select(
            _INSTANCES.c.uuid, literal("instance"), literal(0), _INSTANCES.c.project_id, _INSTANCES.c.user_id
        ).where(_INSTANCES.c.uuid.in_(uuids)),
        select(_ALLOCS.c.consumer_id, literal("allocations"), literal(0), null(), null())
        .where(_ALLOCS.c.consumer_id.in_(uuids))
        .distinct(),
    )


_STATES = _states_query()


def consumer_states(session: Session, consumers: Iterable[str]) -> dict[str, ConsumerState]:
    """Whether each consumer has allocations, its row, and its instance's owner: one query."""
    wanted = sorted(set(consumers))
    found: dict[str, dict[str, tuple[int, str, str]]] = {c: {} for c in wanted}
    if wanted:
        for uuid, source, generation, project, user in session.execute(_STATES, {"uuids": wanted}):
            found[uuid][source] = (generation, project, user)
    return {consumer: _state(consumer, sources) for consumer, sources in found.items()}


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


def _check_writes(
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


def _capacity_query() -> Any:
    inv, a = _INVENTORIES.alias("inv"), _ALLOCS.alias("a")
    return (
        select(
            _PROVIDERS.c.uuid,
            a.c.resource_class,
            a.c.used,
            inv.c.provider_id.label("has_inventory"),
            inv.c.min_unit,
            inv.c.max_unit,
            inv.c.step_size,
        )
        .select_from(
            a.join(_PROVIDERS, _PROVIDERS.c.id == a.c.provider_id).outerjoin(
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


def _check_capacity(session: Session, consumers: list[str]) -> None:
    """The capacity rule over the consumers' new rows, in one query: an inventory of the
    class exists, the amount respects min_unit/max_unit/step_size, and the provider's total
    usage fits (total - reserved) * allocation_ratio."""
    row = session.execute(_CAPACITY, {"consumers": consumers}).first()
    if row is not None:
        _capacity_conflict(
            row.uuid,
            row.resource_class,
            row.used,
            row.has_inventory,
            row.min_unit,
            row.max_unit,
            row.step_size,
        )


def _capacity_conflict(
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


def _bump_query() -> Any:
    """generation += 1 on the providers named (by uuid) and on those the replaced consumers
    had allocations on, locked in id order (concurrent writers of overlapping providers queue
    instead of deadlocking): (id, uuid) of each. One statement where a lookup and an UPDATE per
    provider were."""
    rp, named = _PROVIDERS.alias("locked"), _PROVIDERS.alias("named")
    # A UNION, not an OR: each side reads its own index (an OR read all providers).
    wanted = union(
        select(named.c.id).where(named.c.uuid.in_(bindparam("uuids", expanding=True))),
        select(_ALLOCS.c.provider_id).where(
            _ALLOCS.c.consumer_id.in_(bindparam("replacing", expanding=True))
        ),
    )
    locked = select(rp.c.id).where(rp.c.id.in_(wanted)).order_by(rp.c.id).with_for_update()
    return (
        update(_PROVIDERS)
        .where(_PROVIDERS.c.id.in_(locked))
        .values(generation=_PROVIDERS.c.generation + 1)
        .returning(_PROVIDERS.c.id, _PROVIDERS.c.uuid)
    )


_BUMP = _bump_query()
_INSERT_ALLOCATIONS = insert(_ALLOCS)
_INSERT_CONSUMERS = insert(_CONSUMERS)


def _save_consumers(
    session: Session, writes: list[AllocationWrite], states: dict[str, ConsumerState]
) -> None:
    """Consumer rows after the write: gone when it has no allocations left, generation + 1
    (compare-and-swap) when it had a row, created at generation 1 otherwise (one INSERT for all)."""
    created = []
    now = utcnow()
    for write in writes:
        state = states[write.consumer]
        if not any(write.allocations.values()):
            session.execute(delete(_CONSUMERS).where(_CONSUMERS.c.uuid == write.consumer))
            continue
        project = write.project_id or state.project_id
        user = write.user_id or state.user_id
        if not state.has_row:
            created.append(
                {"uuid": write.consumer, "project_id": project, "user_id": user, "generation": 1,
                 "created_at": now, "updated_at": now}
            )  # fmt: skip
            continue
        # A row without allocations: the consumer starts over at generation 1.
        generation = _CONSUMERS.c.generation + 1 if state.exists else 1
        result = session.execute(
            update(_CONSUMERS)
            .where(_CONSUMERS.c.uuid == write.consumer, _CONSUMERS.c.generation == state.generation)
            .values(generation=generation, project_id=project, user_id=user, updated_at=now)
        )
        if cast(CursorResult[Any], result).rowcount != 1:
            raise ConcurrentUpdate(f"consumer generation conflict for {write.consumer}")
    if created:
        try:
            # No savepoint: a concurrent creator's row fails this INSERT, and the whole
            # transaction rolls back with the ConcurrentUpdate anyway.
            session.execute(_INSERT_CONSUMERS, created)
        except IntegrityError as exc:
            raise ConcurrentUpdate(f"consumer generation conflict for {created[0]['uuid']}") from exc


def replace_allocations(session: Session, writes: list[AllocationWrite]) -> None:
    """Set the allocations of every consumer in `writes` (an empty mapping removes them).

    A new consumer costs five statements, whatever the number of consumers and providers:
    consumer states, generation bump (which also resolves provider uuids), insert, capacity
    check, consumer rows; replacing adds the delete of the old rows. On PostgreSQL the same
    steps take two statements (_replace_postgresql)."""
    if session.get_bind().dialect.name == "postgresql":
        _replace_postgresql(session, writes)
        return
    consumers = [w.consumer for w in writes]
    states = consumer_states(session, consumers)
    replacing = [c for c in consumers if states[c].exists]  # new consumers have nothing to drop
    wanted = sorted({u for w in writes for u in w.allocations})
    ids: dict[str, int] = {}
    if wanted or replacing:
        ids = {uuid: pid for pid, uuid in session.execute(_BUMP, {"uuids": wanted, "replacing": replacing})}
    _check_writes(writes, ids, states)

    if replacing:
        session.execute(delete(_ALLOCS).where(_ALLOCS.c.consumer_id.in_(replacing)))
    now = utcnow()
    rows = [
        {"provider_id": ids[uuid], "consumer_id": w.consumer, "resource_class": rc, "used": amount,
         "created_at": now}
        for w in writes
        for uuid, resources in w.allocations.items()
        for rc, amount in resources.items()
    ]  # fmt: skip
    if rows:
        session.execute(_INSERT_ALLOCATIONS, rows)  # executemany: compiled once
    _check_capacity(session, consumers)
    _save_consumers(session, writes, states)


# PostgreSQL: the steps of replace_allocations in two statements (a claim's CPU, in the API and
# in the database, is mostly per statement and round trip). Constant text: psycopg prepares each
# once per connection.
_PG_LOCK_AND_READ = f"""
WITH wanted AS (
    SELECT id FROM {_PROVIDERS.name} WHERE uuid = ANY(%(uuids)s::text[])
    UNION
    SELECT provider_id FROM {_ALLOCS.name} WHERE consumer_id = ANY(%(consumers)s::text[])
), locked AS (
    SELECT id FROM {_PROVIDERS.name} WHERE id IN (SELECT id FROM wanted) ORDER BY id FOR UPDATE
), bumped AS (
    UPDATE {_PROVIDERS.name} SET generation = generation + 1
    WHERE id IN (SELECT id FROM locked)
    RETURNING id, uuid
)
SELECT 'provider', uuid, id, NULL, NULL FROM bumped
UNION ALL
SELECT 'row', uuid, generation, project_id, user_id
FROM {_CONSUMERS.name} WHERE uuid = ANY(%(consumers)s::text[])
UNION ALL
SELECT 'instance', uuid, 0, project_id, user_id
FROM {_INSTANCES.name} WHERE uuid = ANY(%(consumers)s::text[])
UNION ALL
SELECT DISTINCT 'allocations', consumer_id, 0, NULL, NULL
FROM {_ALLOCS.name} WHERE consumer_id = ANY(%(consumers)s::text[])
"""

# The capacity rule (kumo.placement.capacity) over a new row `n` of an inventory `inv`, as text.
_PG_BREAKS_UNITS = capacity_sql.postgresql_text(
    ~capacity_sql.within_units(_INVENTORIES.alias("inv"), table("n", column("used", Integer)).c.used)
)
_PG_CAPACITY = capacity_sql.postgresql_text(capacity_sql.capacity(_INVENTORIES.alias("inv")))

_PG_WRITE_AND_CHECK = f"""
WITH new AS (
    SELECT * FROM unnest(%(providers)s::integer[], %(owners)s::text[], %(classes)s::text[],
                         %(amounts)s::integer[]) AS n(provider_id, consumer_id, resource_class, used)
), dropped AS (
    DELETE FROM {_ALLOCS.name} WHERE consumer_id = ANY(%(replacing)s::text[])
), inserted AS (
    INSERT INTO {_ALLOCS.name} (provider_id, consumer_id, resource_class, used, created_at)
    SELECT provider_id, consumer_id, resource_class, used, %(now)s FROM new
), gone AS (
    DELETE FROM {_CONSUMERS.name} WHERE uuid = ANY(%(gone)s::text[])
), updated AS (
    UPDATE {_CONSUMERS.name} c
    SET generation = CASE WHEN v.had THEN c.generation + 1 ELSE 1 END,
        project_id = v.project, user_id = v.owner, updated_at = %(now)s
    FROM unnest(%(update_uuids)s::text[], %(update_seen)s::integer[], %(update_had)s::boolean[],
                %(update_projects)s::text[], %(update_users)s::text[]) AS v(uuid, seen, had, project, owner)
    WHERE c.uuid = v.uuid AND c.generation = v.seen
    RETURNING c.uuid
), created AS (
    INSERT INTO {_CONSUMERS.name} (uuid, project_id, user_id, generation, created_at, updated_at)
    SELECT uuid, project, owner, 1, %(now)s, %(now)s
    FROM unnest(%(create_uuids)s::text[], %(create_projects)s::text[], %(create_users)s::text[])
         AS v(uuid, project, owner)
    ON CONFLICT DO NOTHING
    RETURNING uuid
), bad AS (
    -- The capacity rule over the new rows, against the usage the write leaves: the providers'
    -- rows of other consumers (this statement's snapshot is taken after the first statement
    -- locked the providers, so it holds every committed write to them) plus the new rows.
    SELECT n.provider_id, n.resource_class, n.used, inv.provider_id AS has_inventory,
           inv.min_unit, inv.max_unit, inv.step_size
    FROM new n LEFT JOIN {_INVENTORIES.name} inv
        ON inv.provider_id = n.provider_id AND inv.resource_class = n.resource_class
    WHERE inv.provider_id IS NULL OR {_PG_BREAKS_UNITS}
        OR (SELECT coalesce(sum(a.used), 0) FROM {_ALLOCS.name} a
            WHERE a.provider_id = n.provider_id AND a.resource_class = n.resource_class
              AND a.consumer_id <> ALL(%(consumers)s::text[]))
           + (SELECT sum(m.used) FROM new m
              WHERE m.provider_id = n.provider_id AND m.resource_class = n.resource_class)
           > {_PG_CAPACITY}
    LIMIT 1
)
SELECT (SELECT array_agg(uuid) FROM updated), (SELECT count(*) FROM created),
       bad.provider_id, bad.resource_class, bad.used, bad.has_inventory,
       bad.min_unit, bad.max_unit, bad.step_size
FROM (SELECT 1) AS one LEFT JOIN bad ON true
"""


# Both statements are prepared (psycopg, from their fifth run on a connection), but PostgreSQL
# kept planning them anew for every claim (custom plans: ~0.7 ms of its CPU per claim, more than
# running them); their generic plans are the same index walks.
PG_GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"

# One step of a PostgreSQL write: a statement and its parameters; the driver sends back its rows.
PgStatement = tuple[str, dict[str, Any] | None]
PgSteps = Generator[PgStatement, list[tuple[Any, ...]], None]


def postgresql_steps(writes: list[AllocationWrite]) -> PgSteps:
    """replace_allocations on PostgreSQL, with the same checks in the same order and the same
    errors, as the statements to run in one transaction (a generator the caller drives, with a
    session here or an asyncio connection in kumo.placement.api.fast): (1) one statement reads
    the consumers' states and bumps (and locks, in id order) the providers named and those the
    consumers had allocations on; (2) after the missing provider and consumer generation
    checks, one statement drops the old rows, inserts the new ones, writes the consumer rows
    and finds a row breaking the capacity rule, if any. Any error raised here must roll the
    whole transaction back."""
    consumers = sorted({w.consumer for w in writes})
    wanted = sorted({u for w in writes for u in w.allocations})
    yield PG_GENERIC_PLANS, None
    ids: dict[str, int] = {}
    found: dict[str, dict[str, tuple[int, str, str]]] = {c: {} for c in consumers}
    for source, key, number, project, user in (
        yield _PG_LOCK_AND_READ, {"uuids": wanted, "consumers": consumers}
    ):
        if source == "provider":
            ids[key] = number
        else:
            found[key][source] = (number, project, user)
    states = {c: _state(c, sources) for c, sources in found.items()}
    _check_writes(writes, ids, states)

    rows = [
        (ids[uuid], w.consumer, rc, amount)
        for w in writes
        for uuid, resources in w.allocations.items()
        for rc, amount in resources.items()
    ]
    gone, updates, creates = [], [], []
    for write in writes:
        state = states[write.consumer]
        project = write.project_id or state.project_id
        user = write.user_id or state.user_id
        if not any(write.allocations.values()):
            gone.append(write.consumer)
        elif state.has_row:
            updates.append((write.consumer, state.generation, state.exists, project, user))
        else:
            creates.append((write.consumer, project, user))
    result = yield (
        _PG_WRITE_AND_CHECK,
        {
            "providers": [r[0] for r in rows],
            "owners": [r[1] for r in rows],
            "classes": [r[2] for r in rows],
            "amounts": [r[3] for r in rows],
            "consumers": consumers,
            "replacing": [c for c in consumers if states[c].exists],
            "now": utcnow(),
            "gone": gone,
            "update_uuids": [u[0] for u in updates],
            "update_seen": [u[1] for u in updates],
            "update_had": [u[2] for u in updates],
            "update_projects": [u[3] for u in updates],
            "update_users": [u[4] for u in updates],
            "create_uuids": [c[0] for c in creates],
            "create_projects": [c[1] for c in creates],
            "create_users": [c[2] for c in creates],
        },
    )
    updated, created, provider_id, rc, used, has_inventory, min_unit, max_unit, step_size = result[0]
    if provider_id is not None:
        uuid = next(u for u, pid in ids.items() if pid == provider_id)
        _capacity_conflict(uuid, rc, used, has_inventory, min_unit, max_unit, step_size)
    stale = [u[0] for u in updates if u[0] not in (updated or ())]
    if stale:
        raise ConcurrentUpdate(f"consumer generation conflict for {stale[0]}")
    if created != len(creates):
        raise ConcurrentUpdate(f"consumer generation conflict for {creates[0][0]}")


def _replace_postgresql(session: Session, writes: list[AllocationWrite]) -> None:
    conn = session.connection()
    steps = postgresql_steps(writes)
    rows: list[tuple[Any, ...]] | None = None
    try:
        while True:
            sql, params = steps.send(rows) if rows is not None else next(steps)
            result = conn.exec_driver_sql(sql, params) if params is not None else conn.exec_driver_sql(sql)
            rows = [tuple(r) for r in result] if result.returns_rows else []
    except StopIteration:
        return


def _state(consumer: str, sources: dict[str, tuple[int, str, str]]) -> ConsumerState:
    has_allocations = "allocations" in sources
    if "row" in sources:
        generation, project, user = sources["row"]
        return ConsumerState(consumer, has_allocations, generation, project, user, True)
    _, project, user = sources.get("instance", (0, INCOMPLETE, INCOMPLETE))
    return ConsumerState(consumer, has_allocations, 0, project, user, False)


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
