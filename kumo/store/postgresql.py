"""The store of a PostgreSQL database (see kumo.store): array parameters (one statement text
for any number of values), SELECT … FOR UPDATE SKIP LOCKED, transaction-level advisory locks,
and the hot writes as few statements as they can be.

A placement (commit_placement) is one statement that finds the instance's open event itself:
data-modifying CTEs, each conditional on the provider's compare-and-swap, so when the swap
matches no row nothing at all is written (the caller may try its next candidate in the same
transaction). A write of allocations (replace_allocations) is two statements: (1) read the
consumers' states and bump (and lock, in id order) the providers named and those the consumers
had allocations on; (2) after the checks of kumo.placement.allocation_rules on what (1) read,
drop the old rows, insert the new ones, write the consumer rows and find a row breaking the
capacity rule, if any. Constant text: psycopg prepares each once per connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Integer,
    any_,
    bindparam,
    column,
    func,
    literal_column,
    table,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, psycopg
from sqlalchemy.orm import Session

from kumo.db import utcnow
from kumo.placement import allocation_rules as rules
from kumo.placement import capacity as capacity_sql
from kumo.placement.allocation_write import AllocationWrite
from kumo.placement.api.exceptions import ConcurrentUpdate
from kumo.store.protocol import Column, PlacementPlan

_PLACE = """
WITH event AS (
    SELECT e.id, e.action_id, a.request_id
    FROM instance_action_events AS e JOIN instance_actions AS a ON a.id = e.action_id
    WHERE a.instance_uuid = %(instance_uuid)s AND e.event = %(schedule_event)s AND e.finish_time IS NULL
    ORDER BY e.id DESC
    LIMIT 1
), swap AS (
    UPDATE resource_providers
    SET generation = generation + 1, updated_at = %(now)s
    WHERE id = %(provider_id)s AND generation = %(generation)s
    RETURNING id
), allocation AS (
    INSERT INTO allocations (provider_id, consumer_id, resource_class, used, created_at)
    SELECT swap.id, %(instance_uuid)s, wanted.resource_class, wanted.used, %(now)s
    FROM swap, unnest(CAST(%(classes)s AS varchar[]), CAST(%(amounts)s AS integer[]))
        AS wanted(resource_class, used)
), placed AS (
    UPDATE instances
    SET host = %(host)s, availability_zone = %(availability_zone)s, task_state = %(task_state)s,
        updated_at = %(now)s
    WHERE id = %(instance_id)s AND EXISTS (SELECT FROM swap)
), scheduled AS (
    UPDATE instance_action_events SET finish_time = %(now)s, result = 'Success'
    WHERE id IN (SELECT id FROM event) AND finish_time IS NULL AND EXISTS (SELECT FROM swap)
    RETURNING action_id
), touched AS (
    UPDATE instance_actions SET updated_at = %(now)s WHERE id IN (SELECT action_id FROM scheduled)
), spawn AS (
    INSERT INTO instance_action_events (action_id, event, host, start_time)
    SELECT event.action_id, %(spawn_event)s, %(host)s, %(now)s FROM swap, event
    RETURNING id
)
INSERT INTO tasks (id, host, instance_uuid, kind, payload, state, request_id, attempts,
                   created_at, updated_at)
SELECT %(task_id)s, %(host)s, %(instance_uuid)s, %(task_kind)s,
       CAST(jsonb_build_object('event_id', (SELECT id FROM spawn)) || CAST(%(payload)s AS jsonb) AS json),
       'pending', COALESCE((SELECT request_id FROM event), '-'), 0, %(now)s, %(now)s
FROM swap
RETURNING request_id
"""


_PG_LOCK_AND_READ = f"""
WITH wanted AS (
    SELECT id FROM {rules.PROVIDERS.name} WHERE uuid = ANY(%(uuids)s::text[])
    UNION
    SELECT provider_id FROM {rules.ALLOCATIONS.name} WHERE consumer_id = ANY(%(consumers)s::text[])
), locked AS (
    SELECT id FROM {rules.PROVIDERS.name} WHERE id IN (SELECT id FROM wanted) ORDER BY id FOR UPDATE
), bumped AS (
    UPDATE {rules.PROVIDERS.name} SET generation = generation + 1
    WHERE id IN (SELECT id FROM locked)
    RETURNING id, uuid
)
SELECT 'provider', uuid, id, NULL, NULL FROM bumped
UNION ALL
SELECT 'row', uuid, generation, project_id, user_id
FROM {rules.CONSUMERS.name} WHERE uuid = ANY(%(consumers)s::text[])
UNION ALL
SELECT 'instance', uuid, 0, project_id, user_id
FROM {rules.INSTANCES.name} WHERE uuid = ANY(%(consumers)s::text[])
UNION ALL
SELECT DISTINCT 'allocations', consumer_id, 0, NULL, NULL
FROM {rules.ALLOCATIONS.name} WHERE consumer_id = ANY(%(consumers)s::text[])
"""


def sql_text(expression: ColumnElement[Any]) -> str:
    """An SQLAlchemy expression as text for a statement written by hand here (psycopg's
    paramstyle: "%" doubled), integers inlined."""
    return str(expression.compile(dialect=_PSYCOPG, compile_kwargs={"literal_binds": True}))


_PSYCOPG = psycopg.dialect()

# The capacity rule (kumo.placement.capacity) over a new row `n` of an inventory `inv`, as text.
_INV = rules.INVENTORIES.alias("inv")
_BREAKS_UNITS = sql_text(~capacity_sql.within_units(_INV, table("n", column("used", Integer)).c.used))
_CAPACITY = sql_text(capacity_sql.capacity(_INV))

_PG_WRITE_AND_CHECK = f"""
WITH new AS (
    SELECT * FROM unnest(%(providers)s::integer[], %(owners)s::text[], %(classes)s::text[],
                         %(amounts)s::integer[]) AS n(provider_id, consumer_id, resource_class, used)
), dropped AS (
    DELETE FROM {rules.ALLOCATIONS.name} WHERE consumer_id = ANY(%(replacing)s::text[])
), inserted AS (
    INSERT INTO {rules.ALLOCATIONS.name} (provider_id, consumer_id, resource_class, used, created_at)
    SELECT provider_id, consumer_id, resource_class, used, %(now)s FROM new
), gone AS (
    DELETE FROM {rules.CONSUMERS.name} WHERE uuid = ANY(%(gone)s::text[])
), updated AS (
    UPDATE {rules.CONSUMERS.name} c
    SET generation = CASE WHEN v.had THEN c.generation + 1 ELSE 1 END,
        project_id = v.project, user_id = v.owner, updated_at = %(now)s
    FROM unnest(%(update_uuids)s::text[], %(update_seen)s::integer[], %(update_had)s::boolean[],
                %(update_projects)s::text[], %(update_users)s::text[]) AS v(uuid, seen, had, project, owner)
    WHERE c.uuid = v.uuid AND c.generation = v.seen
    RETURNING c.uuid
), created AS (
    INSERT INTO {rules.CONSUMERS.name} (uuid, project_id, user_id, generation, created_at, updated_at)
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
    FROM new n LEFT JOIN {rules.INVENTORIES.name} inv
        ON inv.provider_id = n.provider_id AND inv.resource_class = n.resource_class
    WHERE inv.provider_id IS NULL OR {_BREAKS_UNITS}
        OR (SELECT coalesce(sum(a.used), 0) FROM {rules.ALLOCATIONS.name} a
            WHERE a.provider_id = n.provider_id AND a.resource_class = n.resource_class
              AND a.consumer_id <> ALL(%(consumers)s::text[]))
           + (SELECT sum(m.used) FROM new m
              WHERE m.provider_id = n.provider_id AND m.resource_class = n.resource_class)
           > {_CAPACITY}
    LIMIT 1
)
SELECT (SELECT array_agg(uuid) FROM updated), (SELECT count(*) FROM created),
       bad.provider_id, bad.resource_class, bad.used, bad.has_inventory,
       bad.min_unit, bad.max_unit, bad.step_size
FROM (SELECT 1) AS one LEFT JOIN bad ON true
"""


# Both statements are prepared (psycopg, from their fifth run on a connection), but PostgreSQL
# would plan them anew for every claim (custom plans, costing more than running them); their
# generic plans are the same index walks.
_GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"
_NO_JIT = text("SET LOCAL jit = off")
_LOCK = text("SELECT pg_advisory_xact_lock(:space, :key)")


class PostgresStore:
    name = "postgresql"
    skip_locked = True
    shared_by_processes = True
    candidates_in_sql = True

    def one_of(self, column: Column, values: Iterable[Any]) -> ColumnElement[bool]:
        """`column = ANY(:values)`: one array parameter, so the statement's text (and its
        compiled form, psycopg's parse and the server's plan) is the same for any number of
        values, where an expanding IN renders one placeholder per value on every execution."""
        return column == any_(bindparam(None, sorted(values), type_=ARRAY(column.type)))

    def one_of_param(self, column: Column, name: str) -> ColumnElement[bool]:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))

    def insert(self, model: Any) -> Insert:
        return postgresql.insert(model)

    def insert_if_absent(self, session: Session, model: Any, values: dict[str, Any], keys: list[str]) -> None:
        session.execute(postgresql.insert(model).values(values).on_conflict_do_nothing(index_elements=keys))

    def lock_for_transaction(self, session: Session, space: int, key: int) -> None:
        """A transaction-level advisory lock (released at commit or rollback, after the commit
        is visible; the next holder's statements, under READ COMMITTED, see it)."""
        session.execute(_LOCK, {"space": space, "key": key})

    def without_jit(self, session: Session) -> None:
        # The planner prices correlated subplans high enough to JIT-compile a query, which
        # costs more than running it.
        session.execute(_NO_JIT)

    def joined_in_order(self, value: ColumnElement[Any], separator: str, order_by: Any) -> ColumnElement[str]:
        return func.string_agg(value, aggregate_order_by(literal_column(separator), order_by))

    def commit_placement(self, session: Session, plan: PlacementPlan) -> str | None:
        wanted = sorted((rc, amount) for rc, amount in plan.allocations.items() if amount > 0)
        row = (
            session.connection()
            .exec_driver_sql(
                _PLACE,
                {
                    "now": utcnow(),
                    "provider_id": plan.provider_id,
                    "generation": plan.generation,
                    "instance_uuid": plan.instance_uuid,
                    "classes": [rc for rc, _ in wanted],
                    "amounts": [amount for _, amount in wanted],
                    "host": plan.host,
                    "availability_zone": plan.availability_zone,
                    "task_state": plan.task_state,
                    "instance_id": plan.instance_id,
                    "schedule_event": plan.end_event,
                    "spawn_event": plan.start_event,
                    "task_id": plan.task_id,
                    "task_kind": plan.task_kind,
                    "payload": json.dumps(plan.task_payload),
                },
            )
            .first()
        )
        return None if row is None else str(row[0])

    def replace_allocations(self, session: Session, writes: Sequence[AllocationWrite]) -> None:
        conn = session.connection()
        conn.exec_driver_sql(_GENERIC_PLANS)
        consumers = sorted({w.consumer for w in writes})
        wanted = sorted({u for w in writes for u in w.allocations})
        ids: dict[str, int] = {}
        found: dict[str, rules.Sources] = {c: {} for c in consumers}
        for source, key, number, project, user in conn.exec_driver_sql(
            _PG_LOCK_AND_READ, {"uuids": wanted, "consumers": consumers}
        ):
            if source == "provider":
                ids[key] = number
            else:
                found[key][source] = (number, project, user)
        states = {c: rules.state_of(c, sources) for c, sources in found.items()}
        rules.check_writes(writes, ids, states)

        rows = rules.new_allocation_rows(writes, ids)
        consumer_rows = rules.consumer_rows(writes, states)
        updates, creates = consumer_rows.updates, consumer_rows.creates
        result = conn.exec_driver_sql(
            _PG_WRITE_AND_CHECK,
            {
                "providers": [r[0] for r in rows],
                "owners": [r[1] for r in rows],
                "classes": [r[2] for r in rows],
                "amounts": [r[3] for r in rows],
                "consumers": consumers,
                "replacing": [c for c in consumers if states[c].exists],
                "now": utcnow(),
                "gone": consumer_rows.gone,
                "update_uuids": [u[0] for u in updates],
                "update_seen": [u[1] for u in updates],
                "update_had": [u[2] for u in updates],
                "update_projects": [u[3] for u in updates],
                "update_users": [u[4] for u in updates],
                "create_uuids": [c[0] for c in creates],
                "create_projects": [c[1] for c in creates],
                "create_users": [c[2] for c in creates],
            },
        ).one()
        updated, created, provider_id, rc, used, has_inventory, min_unit, max_unit, step_size = result
        if provider_id is not None:
            uuid = next(u for u, pid in ids.items() if pid == provider_id)
            rules.capacity_conflict(uuid, rc, used, has_inventory, min_unit, max_unit, step_size)
        stale = [u[0] for u in updates if u[0] not in (updated or ())]
        if stale:
            raise ConcurrentUpdate(f"consumer generation conflict for {stale[0]}")
        if created != len(creates):
            raise ConcurrentUpdate(f"consumer generation conflict for {creates[0][0]}")
