"""Placement's capacity rule as SQL expressions: the one place it is written for the database.

The rule, stated once (kumo.scheduler.capacity writes the same rule in Python, for checks made
in memory; tests/unit/placement/test_capacity_rule.py checks the two agree): an inventory row
with `used` already allocated takes `total_asked` more when

* used + total_asked <= (total - reserved) * allocation_ratio  (`has_room`), and
* total_asked <= max_unit, and every amount it is made of (one per request group asking for the
  class; total_asked alone when there is one) is >= min_unit and a multiple of step_size
  (`within_units`).

Each builder takes the inventory columns as a table or an alias of `inventories` (anything
with `.c.total`, `.c.reserved`, ...), and usage and amounts as SQL expressions or integers, and
returns a ColumnElement that renders on every dialect kumo runs on. `has_room` compares with
the untruncated product, which gives the same verdict as Python's comparison with the truncated
one (usage is an integer and the product is never negative); `capacity_held` is the truncated
value itself, for reporting it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, and_, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

# An integer, or an SQL expression of one (a column, a correlated sum).
Amount = int | ColumnElement[Any]


def capacity(inv: Any) -> ColumnElement[float]:
    """(total - reserved) * allocation_ratio of the inventory row: a double, not truncated."""
    return (inv.c.total - inv.c.reserved) * inv.c.allocation_ratio


class _Truncated(FunctionElement[int]):
    """A non-negative double truncated to an integer: what Python's int() makes of it."""

    type = BigInteger()
    inherit_cache = True


@compiles(_Truncated)
def _truncated_default(element: _Truncated, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's CAST to INTEGER truncates toward zero.
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


@compiles(_Truncated, "postgresql")
def _truncated_postgresql(element: _Truncated, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL's CAST of a double rounds; trunc() first.
    return f"CAST(trunc({compiler.process(element.clauses, **kw)}) AS BIGINT)"


def capacity_held(inv: Any) -> ColumnElement[int]:
    """kumo.scheduler.capacity.capacity of the row: int((total - reserved) * allocation_ratio)."""
    return _Truncated(capacity(inv))


def has_room(inv: Any, used: Amount, amount: Amount | None = None) -> ColumnElement[bool]:
    """used + amount <= capacity(inv); with no amount, `used` (the usage a write leaves) alone."""
    usage = used if amount is None else used + _sql(amount)
    return usage <= capacity(inv)


def within_units(inv: Any, total_asked: Amount, amounts: Iterable[int] = ()) -> ColumnElement[bool]:
    """max_unit >= total_asked, and each of `amounts` (total_asked alone when none) is >= min_unit
    and a multiple of step_size."""
    conditions: list[ColumnElement[bool]] = [inv.c.max_unit >= total_asked]
    parts: list[Amount] = [*sorted(set(amounts))] or [total_asked]
    for amount in parts:
        conditions += [inv.c.min_unit <= amount, _sql(amount) % inv.c.step_size == 0]
    return and_(*conditions)


def fits(inv: Any, used: Amount, total_asked: int, amounts: Iterable[int] = ()) -> ColumnElement[bool]:
    """The whole rule: `within_units` and `has_room` for `total_asked` more on top of `used`."""
    return and_(within_units(inv, total_asked, amounts), has_room(inv, used, total_asked))


def _sql(amount: Amount) -> ColumnElement[Any]:
    return literal(amount, Integer) if isinstance(amount, int) else amount
