"""Placement's capacity rule, in Python: the one place it is written for checks made in memory.

An inventory of a resource class (total, reserved, min_unit, max_unit, step_size,
allocation_ratio) with `used` already allocated takes `total_asked` more when

* used + total_asked <= (total - reserved) * allocation_ratio  (`has_room`), and
* total_asked <= max_unit, and every amount it is made of (one per request group asking for the
  class; total_asked alone when there is one) is >= min_unit and a multiple of step_size
  (`within_units`).

`capacity` is what an inventory can hold, int((total - reserved) * allocation_ratio): the IEEE
double product, truncated. Comparing an integer usage with the truncated product gives the same
verdict as comparing it with the product itself (n <= x exactly when n <= floor(x), and the
product is never negative), which is how the SQL form compares.

The same rule as SQL expressions is kumo.placement.capacity (beside placement's tables; this
module stays free of SQLAlchemy so that the scheduler's pure core can use it), and
tests/unit/placement/test_capacity_rule.py checks the two agree on a table of cases.
"""

from __future__ import annotations

from collections.abc import Collection


def capacity(total: int, reserved: int, allocation_ratio: float) -> int:
    """What an inventory can hold in all: int((total - reserved) * allocation_ratio)."""
    return int((total - reserved) * allocation_ratio)


def has_room(capacity: int, used: int, amount: int) -> bool:
    """`amount` more fits on top of `used` within `capacity` (see `capacity`)."""
    return used + amount <= capacity


def within_units(
    total_asked: int, max_unit: int, min_unit: int = 1, step_size: int = 1, amounts: Collection[int] = ()
) -> bool:
    """total_asked <= max_unit, and each of `amounts` (total_asked alone when none) is >= min_unit
    and a multiple of step_size."""
    if not amounts:
        return min_unit <= total_asked <= max_unit and total_asked % step_size == 0
    return total_asked <= max_unit and all(
        min_unit <= amount and amount % step_size == 0 for amount in amounts
    )


def fits(
    capacity: int,
    used: int,
    total_asked: int,
    max_unit: int,
    min_unit: int = 1,
    step_size: int = 1,
    amounts: Collection[int] = (),
) -> bool:
    """The whole rule: `has_room` and `within_units` (has_room written out: walks of the whole
    fleet call this once per provider)."""
    return used + total_asked <= capacity and within_units(
        total_asked, max_unit, min_unit, step_size, amounts
    )
