"""The capacity rule's two forms agree: kumo.scheduler.capacity (Python) and
kumo.placement.capacity (SQL), on one table of cases, each with the verdict expected."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import Integer, insert, literal, select

from kumo.db import Database
from kumo.placement import capacity as capacity_sql
from kumo.placement.models import Inventory, ResourceProvider
from kumo.scheduler import capacity as capacity_rule
from kumo.store.postgresql import sql_text


@dataclass(frozen=True)
class Case:
    name: str
    total: int
    used: int
    asked: int
    fits: bool
    reserved: int = 0
    ratio: float = 1.0
    min_unit: int = 1
    max_unit: int = 1_000_000
    step_size: int = 1
    amounts: tuple[int, ...] = ()  # the request groups' amounts making up `asked`


CASES = [
    Case("exact fit", total=8, used=6, asked=2, fits=True),
    Case("one over", total=8, used=7, asked=2, fits=False),
    Case("empty, all of it", total=8, used=0, asked=8, fits=True),
    Case("reserved, exact fit", total=8, reserved=2, used=4, asked=2, fits=True),
    Case("reserved, one over", total=8, reserved=2, used=4, asked=3, fits=False),
    Case("all reserved", total=4, reserved=4, used=0, asked=1, fits=False),
    Case("zero total", total=0, used=0, asked=1, fits=False),
    Case("ratio > 1, exact fit", total=4, ratio=16.0, used=63, asked=1, fits=True),
    Case("ratio > 1, one over", total=4, ratio=16.0, used=64, asked=1, fits=False),
    Case("ratio < 1, exact fit", total=10, ratio=0.5, used=4, asked=1, fits=True),
    Case("ratio < 1, one over", total=10, ratio=0.5, used=4, asked=2, fits=False),
    Case("fractional capacity, below", total=3, ratio=1.5, used=3, asked=1, fits=True),
    Case("fractional capacity, above", total=3, ratio=1.5, used=3, asked=2, fits=False),
    Case("inexact ratio 1.1", total=10, ratio=1.1, used=10, asked=1, fits=True),
    Case("inexact ratio 1.1, over", total=10, ratio=1.1, used=10, asked=2, fits=False),
    Case("inexact ratio 0.7", total=10, ratio=0.7, used=6, asked=1, fits=True),
    Case("inexact ratio 0.1", total=30, ratio=0.1, used=2, asked=1, fits=True),
    Case("reserved and ratio", total=16, reserved=4, ratio=1.5, used=17, asked=1, fits=True),
    Case("reserved and ratio, over", total=16, reserved=4, ratio=1.5, used=18, asked=1, fits=False),
    Case("below min_unit", total=8, min_unit=2, used=0, asked=1, fits=False),
    Case("at min_unit", total=8, min_unit=2, used=0, asked=2, fits=True),
    Case("above max_unit", total=8, max_unit=4, used=0, asked=5, fits=False),
    Case("at max_unit", total=8, max_unit=4, used=0, asked=4, fits=True),
    Case("off step", total=8, step_size=2, used=0, asked=3, fits=False),
    Case("on step", total=8, step_size=2, used=0, asked=4, fits=True),
    Case("groups on step", total=8, step_size=2, used=0, asked=6, amounts=(2, 4), fits=True),
    Case("a group off step", total=8, step_size=2, used=0, asked=5, amounts=(2, 3), fits=False),
    Case("a group below min_unit", total=8, min_unit=2, used=0, asked=3, amounts=(1, 2), fits=False),
    Case("groups over max_unit together", total=8, max_unit=4, used=0, asked=5, amounts=(2, 3), fits=False),
    Case("room but no units", total=8, max_unit=2, step_size=2, used=6, asked=2, fits=True),
]


def _python(case: Case) -> tuple[bool, int, bool, bool]:
    held = capacity_rule.capacity(case.total, case.reserved, case.ratio)
    return (
        capacity_rule.fits(
            held, case.used, case.asked, case.max_unit, case.min_unit, case.step_size, case.amounts
        ),
        held,
        capacity_rule.has_room(held, case.used, case.asked),
        capacity_rule.within_units(case.asked, case.max_unit, case.min_unit, case.step_size, case.amounts),
    )


def _sql(db: Database) -> dict[str, tuple[bool, int, bool, bool]]:
    with db.transaction() as s:
        for number, case in enumerate(CASES, start=1):
            s.execute(insert(ResourceProvider).values(id=number, uuid=f"rp-{number}", name=case.name))
            s.execute(
                insert(Inventory).values(
                    provider_id=number, resource_class="VCPU", total=case.total, reserved=case.reserved,
                    min_unit=case.min_unit, max_unit=case.max_unit, step_size=case.step_size,
                    allocation_ratio=case.ratio,
                )
            )  # fmt: skip
    found: dict[str, tuple[bool, int, bool, bool]] = {}
    inv = Inventory.__table__.alias("inv")
    with db.read() as s:
        for number, case in enumerate(CASES, start=1):
            used = literal(case.used, Integer)
            row = s.execute(
                select(
                    capacity_sql.fits(inv, used, case.asked, case.amounts),
                    capacity_sql.capacity_held(inv),
                    capacity_sql.has_room(inv, used, case.asked),
                    capacity_sql.has_room(inv, literal(case.used + case.asked, Integer)),
                    capacity_sql.within_units(inv, case.asked, case.amounts),
                ).where(inv.c.provider_id == number)
            ).one()
            assert bool(row[2]) == bool(row[3]), f"{case.name}: has_room with and without an amount"
            found[case.name] = (bool(row[0]), int(row[1]), bool(row[2]), bool(row[4]))
    return found


def test_the_python_rule_gives_the_expected_verdicts() -> None:
    wrong = [case.name for case in CASES if _python(case)[0] != case.fits]
    assert wrong == []


def test_python_and_sql_agree_on_every_case(db: Database) -> None:
    in_sql = _sql(db)
    disagree = {
        case.name: (_python(case), in_sql[case.name]) for case in CASES if _python(case) != in_sql[case.name]
    }
    assert disagree == {}
    assert [case.name for case in CASES if in_sql[case.name][0] != case.fits] == []


@pytest.mark.parametrize(
    ("total", "reserved", "ratio", "held"),
    [(8, 0, 1.0, 8), (8, 2, 1.0, 6), (3, 0, 1.5, 4), (10, 0, 0.5, 5), (0, 0, 16.0, 0), (4, 4, 2.0, 0)],
)
def test_capacity_truncates_the_product(total: int, reserved: int, ratio: float, held: int) -> None:
    assert capacity_rule.capacity(total, reserved, ratio) == held


def test_postgresql_sql_text_doubles_the_modulo_for_psycopg() -> None:
    inv = Inventory.__table__.alias("inv")
    text = sql_text(~capacity_sql.within_units(inv, 3))
    assert "%%" in text and "3" in text
