"""Keyset paging over one sort column and a unique tie-breaker, in one direction (Ironic's
`sort_key`/`sort_dir` with `id` appended, as its paginate_query does).

Invariants:
- `order_by` and `after` describe the same total order, on SQLite and PostgreSQL alike: the sort
  column (NULL lowest: first ascending, last descending), then the tie-breaker, both in the
  sort's direction. So the page after a marker row starts at the next row of that order, and
  paging with any limit visits every row exactly once.
- The tie-breaker is unique and never NULL (a primary key).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_
from sqlalchemy.sql.elements import UnaryExpression


def _beyond(column: Any, value: Any, descending: bool) -> ColumnElement[bool]:
    """Rows whose `column` comes strictly after `value` (NULL lowest)."""
    if value is None:
        return false() if descending else column.is_not(None)
    if descending:
        return or_(column < value, column.is_(None))
    return and_(column > value)


def _equal(column: Any, value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else and_(column == value)


def order_by(column: Any, tie: Any, descending: bool) -> list[UnaryExpression[Any]]:
    """The ORDER BY of the paging order."""
    if descending:
        return [column.desc().nulls_last(), tie.desc()]
    return [column.asc().nulls_first(), tie.asc()]


def after(column: Any, tie: Any, marker: tuple[Any, Any], descending: bool) -> ColumnElement[bool]:
    """Rows strictly after the marker row, whose (column, tie) values are `marker`."""
    value, tie_value = marker
    tie_beyond = tie < tie_value if descending else tie > tie_value
    return or_(_beyond(column, value, descending), and_(_equal(column, value), tie_beyond))
