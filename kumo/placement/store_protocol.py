"""What placement needs of its database's store (kumo.store), declared here so that placement
never imports the store package, which sits above it (the stores carry out placement's rules,
kumo.placement.allocation_rules). `kumo.store.protocol.Store` extends `PlacementStore`; each
Database is handed its store by the chooser that kumo.store.choice registers at start-up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from kumo.placement.allocation_write import AllocationWrite


class PlacementStore(Protocol):
    """The part of a store (kumo.store.protocol.Store) placement calls."""

    def __hash__(self) -> int:
        """Stores are hashable: statements built once are cached per store."""
        ...

    @property
    def candidates_in_sql(self) -> bool:
        """Whether allocation candidates' inventories and whole JSON bodies are assembled by
        the database (`joined_in_order`); otherwise they are built from rows in Python."""
        ...

    def without_jit(self, session: Session) -> None:
        """Run the rest of this transaction without JIT compilation of queries, where the
        database has one."""
        ...

    def joined_in_order(self, value: ColumnElement[Any], separator: str, order_by: Any) -> ColumnElement[str]:
        """An aggregate: the group's `value`s joined by `separator` (SQL text of a string
        literal), in `order_by` order. Only where `candidates_in_sql`."""
        ...

    def replace_allocations(self, session: Session, writes: Sequence[AllocationWrite]) -> None:
        """Set the allocations of every consumer in `writes` (an empty mapping removes them),
        with the checks of kumo.placement.allocation_rules in their order: providers named
        exist, consumer generations match, the capacity rule over the new rows; and the
        consumer rows after the write. Any violation raises; the caller's transaction must then
        roll back whole. Every provider touched (named, or holding the consumers' old rows) has
        its generation bumped, locked in id order."""
        ...


def store_of(session: Session) -> PlacementStore:
    """The store of the database the session belongs to (kumo.db.Database's sessions)."""
    return cast(PlacementStore, session.info["database"].store)
