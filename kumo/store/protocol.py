"""The `Store` protocol (see the package docstring), the plan of a placement it commits, and
the typed accessors to the store of a session or database."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, Insert
from sqlalchemy.orm import InstrumentedAttribute, Session

from kumo.db import Database
from kumo.placement.store_protocol import PlacementStore

Column = ColumnElement[Any] | InstrumentedAttribute[Any]


@dataclass(frozen=True)
class PlacementPlan:
    """Every write that hands one instance to one host, decided by the scheduler before any is
    made. Committed whole or not at all: nothing is written unless the provider's generation
    is still `generation` (compare-and-swap, bumped by one).

    The writes: allocation rows of `instance_uuid` on `provider_id` (`allocations`: resource
    class -> amount, each positive); the instance row `instance_id` gets `host`,
    `availability_zone` and `task_state`; the newest unfinished event named `end_event` of the
    instance's actions is finished with result Success and its action touched, and an event
    `start_event` on `host` is started in that action; a pending task row (`task_id`,
    `task_kind`, on `host`, for the instance) whose payload is `task_payload` plus "event_id",
    the started event's id (None when no event was open), and whose request id is that of the
    event's action ("-" when no event was open)."""

    provider_id: int
    generation: int
    allocations: Mapping[str, int]
    instance_id: int
    instance_uuid: str
    host: str
    availability_zone: str | None
    task_state: str
    end_event: str
    start_event: str
    task_id: str
    task_kind: str
    task_payload: Mapping[str, Any]


class Store(PlacementStore, Protocol):
    """What differs between databases, each with one observable result on all of them
    (with what placement calls, declared by kumo.placement.store_protocol)."""

    @property
    def name(self) -> str:
        """The database's name ("sqlite", "postgresql"), for logs and messages only."""
        ...

    @property
    def skip_locked(self) -> bool:
        """Whether rows can be locked skipping those others hold (SELECT … FOR UPDATE SKIP
        LOCKED): several schedulers then share pending instances. Without it one writer at a
        time holds the whole database, and a plain read is as good."""
        ...

    @property
    def shared_by_processes(self) -> bool:
        """Whether several kumo processes may share the database and wake each other through it
        (LISTEN/NOTIFY): scheduler processes of their own, API workers' wake-ups."""
        ...

    def one_of(self, column: Column, values: Iterable[Any]) -> ColumnElement[bool]:
        """`column IN values`, its statement's text the same for any number of values."""
        ...

    def one_of_param(self, column: Column, name: str) -> ColumnElement[bool]:
        """one_of with the values left to the parameter `name` (a list), for a statement built
        once and run many times."""
        ...

    def insert(self, model: Any) -> Insert:
        """An INSERT into `model` that takes ON CONFLICT clauses (on_conflict_do_nothing,
        on_conflict_do_update) and RETURNING."""
        ...

    def insert_if_absent(self, session: Session, model: Any, values: dict[str, Any], keys: list[str]) -> None:
        """INSERT … ON CONFLICT (keys) DO NOTHING: two transactions creating the same row both
        succeed."""
        ...

    def lock_for_transaction(self, session: Session, space: int, key: int) -> None:
        """Serialise, until this transaction ends, the transactions that take the same (space,
        key): once this returns, what they committed is visible to the next statement, and
        what they would write waits for this transaction's end."""
        ...

    def commit_placement(self, session: Session, plan: PlacementPlan) -> str | None:
        """Write `plan` (see PlacementPlan) in the session's transaction: the request id of the
        ended event's action ("-" when the instance had no such open event), or None, with
        nothing written, when the provider's generation moved. The session's copy of the
        instance is not updated: the caller does that."""
        ...


def store_of(session: Session) -> Store:
    """The store of the database the session belongs to (kumo.db.Database's sessions)."""
    return database_store(session.info["database"])


def database_store(db: Database) -> Store:
    """The store `db` was given or chose once (see kumo.store.choice)."""
    return cast(Store, db.store)
