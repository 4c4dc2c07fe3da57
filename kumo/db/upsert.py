"""Insert-if-absent in one statement, for rows that concurrent requests may both create."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_if_absent(session: Session, model: Any, values: dict[str, Any], keys: list[str]) -> None:
    """INSERT … ON CONFLICT (keys) DO NOTHING: two transactions creating the same row both
    succeed, where a read-then-add lets the slower one fail on the unique key."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(model).values(values).on_conflict_do_nothing(index_elements=keys))
