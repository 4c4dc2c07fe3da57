"""PUT /allocations for a new consumer in few statements (claims per second are bounded by
round trips): consumer state, generation bump (which resolves the provider uuids), insert,
capacity check, consumer row. Replacing a consumer's allocations adds the delete of the old
ones."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, func, select

import kumo.placement.api_models  # noqa: F401  (create_all needs the Placement API tables)
from kumo.db import Database
from kumo.errors import Conflict
from kumo.placement.api.allocations import AllocationWrite, consumer_state, replace_allocations
from kumo.placement.models import Allocation

from .fleet import add_host

NEW = "00000000-0000-0000-0000-0000000000c1"


def _statements(db: Database, *writes: AllocationWrite) -> list[str]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        if not args[2].startswith("BEGIN"):  # SQLite's writer lock, not a round trip of the write
            seen.append(args[2])

    with db.transaction() as s:
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            replace_allocations(s, list(writes))
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    return seen


def test_a_new_consumer_costs_five_statements_and_a_replacement_six(db: Database) -> None:
    with db.transaction() as s:
        rp = add_host(s, "h1", {"VCPU": 8, "MEMORY_MB": 8192}).uuid
    first = AllocationWrite(NEW, {rp: {"VCPU": 2}}, project_id="p", user_id="u")
    assert len(_statements(db, first)) == 5
    again = AllocationWrite(NEW, {rp: {"VCPU": 3, "MEMORY_MB": 512}}, generation=1, check_generation=True)
    assert len(_statements(db, again)) == 6
    with db.read() as s:
        rows = dict(s.execute(select(Allocation.resource_class, Allocation.used)).all())
        state = consumer_state(s, NEW)
    assert rows == {"VCPU": 3, "MEMORY_MB": 512}
    assert (state.exists, state.generation, state.project_id, state.user_id) == (True, 2, "p", "u")


def test_many_consumers_cost_the_statements_of_one(db: Database) -> None:
    """POST /allocations with several consumers: one statement per step, not per consumer; the
    capacity rule counts every new row of the write together."""
    with db.transaction() as s:
        rp = add_host(s, "h1", {"VCPU": 8, "MEMORY_MB": 8192}).uuid
        other = add_host(s, "h2", {"VCPU": 8, "MEMORY_MB": 8192}).uuid
    consumers = [f"00000000-0000-0000-0000-0000000001{n:02d}" for n in range(4)]
    writes = [
        AllocationWrite(c, {rp if n % 2 else other: {"VCPU": 2}}, project_id="p", user_id="u")
        for n, c in enumerate(consumers)
    ]
    assert len(_statements(db, writes[0])) == 5
    first = AllocationWrite(consumers[0], {rp: {"VCPU": 1}}, generation=1, check_generation=True)
    # One of them replaces: plus the delete, and its row is updated beside the INSERT of the new rows.
    assert len(_statements(db, first, *writes[1:])) == 7
    too_much = [
        AllocationWrite(c, {rp: {"VCPU": 3}}, project_id="p", user_id="u")
        for c in ("00000000-0000-0000-0000-0000000002a1", "00000000-0000-0000-0000-0000000002a2")
    ]  # 8 on rp: 1 + 2 (consumers 0, 1 and 3) = 5 in use, 3 + 3 more does not fit, either alone does
    with pytest.raises(Conflict), db.transaction() as s:
        replace_allocations(s, too_much)
    with db.read() as s:
        used = dict(
            s.execute(
                select(Allocation.consumer_id, func.sum(Allocation.used)).group_by(Allocation.consumer_id)
            ).all()
        )
        states = [consumer_state(s, c) for c in consumers]
    assert used == {consumers[0]: 1, consumers[1]: 2, consumers[2]: 2, consumers[3]: 2}
    assert [(st.exists, st.generation) for st in states] == [(True, 2), (True, 1), (True, 1), (True, 1)]
