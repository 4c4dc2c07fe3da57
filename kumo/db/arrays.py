"""`column IN (values)` that costs the same whatever the number of values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session


def one_of(
    session: Session, column: ColumnElement[Any] | InstrumentedAttribute[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """On PostgreSQL `column = ANY(:values)`: one array parameter, so the statement's text (and
    its compiled form, psycopg's parse and the server's plan) is the same for any number of
    values, where an expanding IN renders one placeholder per value on every execution.
    Elsewhere a plain IN."""
    wanted = sorted(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, wanted, type_=ARRAY(column.type)))
    return column.in_(wanted)


def one_of_param(
    dialect: str, column: ColumnElement[Any] | InstrumentedAttribute[Any], name: str
) -> ColumnElement[bool]:
    """one_of with its values left to a named parameter, for a statement built once and run
    many times (its values: a list): the statement's construction and cache key, some hundred
    microseconds of SQLAlchemy per execution, are paid once."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))
