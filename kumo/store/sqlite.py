"""The store of a SQLite database (see kumo.store): one writer at a time holds the whole
database (BEGIN IMMEDIATE, kumo.db.base), so there is nothing to skip, lock or share; every
write is a few ordinary statements."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    DateTime,
    Insert,
    Integer,
    String,
    bindparam,
    column,
    delete,
    insert,
    select,
    table,
    union,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.db import utcnow
from kumo.placement import allocation_rules as rules
from kumo.placement.allocation_write import AllocationWrite
from kumo.placement.api.exceptions import ConcurrentUpdate
from kumo.placement.models import Allocation, ResourceProvider
from kumo.store.protocol import Column, PlacementPlan
from kumo.work.models import Task


def _bump_query() -> Any:
    """generation += 1 on the providers named (by uuid) and on those the replaced consumers
    had allocations on: (id, uuid) of each. One statement where a lookup and an UPDATE per
    provider were."""
    named = rules.PROVIDERS.alias("named")
    # A UNION, not an OR: each side reads its own index (an OR read all providers).
    wanted = union(
        select(named.c.id).where(named.c.uuid.in_(bindparam("uuids", expanding=True))),
        select(rules.ALLOCATIONS.c.provider_id).where(
            rules.ALLOCATIONS.c.consumer_id.in_(bindparam("replacing", expanding=True))
        ),
    )
    return (
        update(rules.PROVIDERS)
        .where(rules.PROVIDERS.c.id.in_(wanted))
        .values(generation=rules.PROVIDERS.c.generation + 1)
        .returning(rules.PROVIDERS.c.id, rules.PROVIDERS.c.uuid)
    )


# The rows of compute's tables a placement writes (kumo.compute.models; see PlacementPlan), by
# name as the PostgreSQL store's statement writes them: the store sits below compute.
_INSTANCES = table(
    "instances",
    column("id", Integer),
    column("host", String),
    column("availability_zone", String),
    column("task_state", String),
    column("updated_at", DateTime),
)
_ACTIONS = table(
    "instance_actions",
    column("id", Integer),
    column("instance_uuid", String),
    column("request_id", String),
    column("updated_at", DateTime),
)
_EVENTS = table(
    "instance_action_events",
    column("id", Integer),
    column("action_id", Integer),
    column("event", String),
    column("host", String),
    column("result", String),
    column("start_time", DateTime),
    column("finish_time", DateTime),
)

_BUMP = _bump_query()
_INSERT_ALLOCATIONS = insert(rules.ALLOCATIONS)
_INSERT_CONSUMERS = insert(rules.CONSUMERS)

# A placement's open event: the newest unfinished event of that name of the instance's actions.
_OPEN_EVENT = (
    select(_EVENTS.c.id, _EVENTS.c.action_id, _ACTIONS.c.request_id)
    .join(_ACTIONS, _ACTIONS.c.id == _EVENTS.c.action_id)
    .where(
        _ACTIONS.c.instance_uuid == bindparam("instance_uuid"),
        _EVENTS.c.event == bindparam("event"),
        _EVENTS.c.finish_time.is_(None),
    )
    .order_by(_EVENTS.c.id.desc())
    .limit(1)
)


class SqliteStore:
    name = "sqlite"
    skip_locked = False
    shared_by_processes = False
    candidates_in_sql = False

    def one_of(self, column: Column, values: Iterable[Any]) -> ColumnElement[bool]:
        return column.in_(sorted(values))

    def one_of_param(self, column: Column, name: str) -> ColumnElement[bool]:
        return column.in_(bindparam(name, expanding=True))

    def insert(self, model: Any) -> Insert:
        return sqlite.insert(model)

    def insert_if_absent(self, session: Session, model: Any, values: dict[str, Any], keys: list[str]) -> None:
        session.execute(sqlite.insert(model).values(values).on_conflict_do_nothing(index_elements=keys))

    def lock_for_transaction(self, session: Session, space: int, key: int) -> None:
        """Nothing to do: a writing transaction already holds the database's one write lock."""

    def without_jit(self, session: Session) -> None:
        """SQLite compiles no query."""

    def joined_in_order(self, value: ColumnElement[Any], separator: str, order_by: Any) -> ColumnElement[str]:
        raise NotImplementedError("SQLite assembles no candidates in SQL (candidates_in_sql is False)")

    def commit_placement(self, session: Session, plan: PlacementPlan) -> str | None:
        now = utcnow()
        swapped = session.execute(
            update(ResourceProvider)
            .where(ResourceProvider.id == plan.provider_id, ResourceProvider.generation == plan.generation)
            .values(generation=ResourceProvider.generation + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], swapped).rowcount != 1:
            return None
        rows = [
            {"provider_id": plan.provider_id, "consumer_id": plan.instance_uuid, "resource_class": rc,
             "used": amount, "created_at": now}
            for rc, amount in sorted(plan.allocations.items())
        ]  # fmt: skip
        if rows:
            session.execute(insert(Allocation), rows)
        session.execute(
            update(_INSTANCES)
            .where(_INSTANCES.c.id == plan.instance_id)
            .values(
                host=plan.host,
                availability_zone=plan.availability_zone,
                task_state=plan.task_state,
                updated_at=now,
            )
        )
        event = session.execute(
            _OPEN_EVENT, {"instance_uuid": plan.instance_uuid, "event": plan.end_event}
        ).first()
        started: int | None = None
        request_id = "-"
        if event is not None:
            event_id, action_id, request_id = event[0], event[1], event[2] or "-"
            session.execute(
                update(_EVENTS).where(_EVENTS.c.id == event_id).values(finish_time=now, result="Success")
            )
            session.execute(update(_ACTIONS).where(_ACTIONS.c.id == action_id).values(updated_at=now))
            started = session.execute(
                insert(_EVENTS)
                .values(action_id=action_id, event=plan.start_event, host=plan.host, start_time=now)
                .returning(_EVENTS.c.id)
            ).scalar_one()
        session.execute(
            insert(Task).values(
                id=plan.task_id,
                host=plan.host,
                instance_uuid=plan.instance_uuid,
                kind=plan.task_kind,
                payload={"event_id": started, **plan.task_payload},
                state="pending",
                request_id=request_id,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
        return request_id

    def replace_allocations(self, session: Session, writes: Sequence[AllocationWrite]) -> None:
        """A new consumer costs five statements, whatever the number of consumers and
        providers: consumer states, generation bump (which also resolves provider uuids),
        insert, capacity check, consumer rows; replacing adds the delete of the old rows."""
        consumers = [w.consumer for w in writes]
        states = rules.consumer_states(session, consumers)
        replacing = [c for c in consumers if states[c].exists]  # new consumers have nothing to drop
        wanted = sorted({u for w in writes for u in w.allocations})
        ids: dict[str, int] = {}
        if wanted or replacing:
            ids = {
                uuid: pid for pid, uuid in session.execute(_BUMP, {"uuids": wanted, "replacing": replacing})
            }
        rules.check_writes(writes, ids, states)

        if replacing:
            session.execute(delete(rules.ALLOCATIONS).where(rules.ALLOCATIONS.c.consumer_id.in_(replacing)))
        now = utcnow()
        rows = [
            {
                "provider_id": pid,
                "consumer_id": consumer,
                "resource_class": rc,
                "used": amount,
                "created_at": now,
            }
            for pid, consumer, rc, amount in rules.new_allocation_rows(writes, ids)
        ]
        if rows:
            session.execute(_INSERT_ALLOCATIONS, rows)  # executemany: compiled once
        rules.check_capacity(session, consumers)
        _save_consumers(session, rules.consumer_rows(writes, states))


def _save_consumers(session: Session, rows: rules.ConsumerRows) -> None:
    consumers = rules.CONSUMERS
    now = utcnow()
    for uuid in rows.gone:
        session.execute(delete(consumers).where(consumers.c.uuid == uuid))
    for uuid, seen, had, project, user in rows.updates:
        # A row without allocations: the consumer starts over at generation 1.
        generation = consumers.c.generation + 1 if had else 1
        result = session.execute(
            update(consumers)
            .where(consumers.c.uuid == uuid, consumers.c.generation == seen)
            .values(generation=generation, project_id=project, user_id=user, updated_at=now)
        )
        if cast(CursorResult[Any], result).rowcount != 1:
            raise ConcurrentUpdate(f"consumer generation conflict for {uuid}")
    if rows.creates:
        created = [
            {"uuid": uuid, "project_id": project, "user_id": user, "generation": 1,
             "created_at": now, "updated_at": now}
            for uuid, project, user in rows.creates
        ]  # fmt: skip
        try:
            # No savepoint: a concurrent creator's row fails this INSERT, and the whole
            # transaction rolls back with the ConcurrentUpdate anyway.
            session.execute(_INSERT_CONSUMERS, created)
        except IntegrityError as exc:
            raise ConcurrentUpdate(f"consumer generation conflict for {created[0]['uuid']}") from exc
