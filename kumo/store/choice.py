"""Which store a database gets, chosen once per Database (see kumo.store). Importing this
module registers `store_for` as kumo.db's chooser; the process start-up (kumo.wiring) does."""

from __future__ import annotations

from kumo.db.base import choose_stores_with
from kumo.store.postgresql import PostgresStore
from kumo.store.protocol import Store
from kumo.store.sqlite import SqliteStore

# Stores hold no state: one of each serves every database of its kind (and keys the
# statements built once per store, kumo.compute.fleet_snapshot and others).
_STORES: dict[str, Store] = {"sqlite": SqliteStore(), "postgresql": PostgresStore()}


def store_for(dialect_name: str) -> Store:
    """The store of a database whose SQLAlchemy dialect is `dialect_name`."""
    try:
        return _STORES[dialect_name]
    except KeyError:
        raise RuntimeError(f"kumo has no store for {dialect_name} databases") from None


choose_stores_with(store_for)
