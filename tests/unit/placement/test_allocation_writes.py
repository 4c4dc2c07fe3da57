"""PUT /allocations for a new consumer in few statements (claims per second are bounded by
round trips): provider lookup, consumer state, generation bump, insert, capacity check,
consumer row. Replacing a consumer's allocations adds the read and delete of the old ones."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select

import kumo.placement.api_models  # noqa: F401  (create_all needs the Placement API tables)
from kumo.db import Database
from kumo.placement.api.allocations import AllocationWrite, consumer_state, replace_allocations
from kumo.placement.models import Allocation

from .fleet import add_host

NEW = "00000000-0000-0000-0000-0000000000c1"


def _statements(db: Database, write: AllocationWrite) -> list[str]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        if not args[2].startswith("BEGIN"):  # SQLite's writer lock, not a round trip of the write
            seen.append(args[2])

    with db.transaction() as s:
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            replace_allocations(s, [write])
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    return seen


def test_a_new_consumer_costs_six_statements_and_a_replacement_eight(db: Database) -> None:
    with db.transaction() as s:
        rp = add_host(s, "h1", {"VCPU": 8, "MEMORY_MB": 8192}).uuid
    first = AllocationWrite(NEW, {rp: {"VCPU": 2}}, project_id="p", user_id="u")
    assert len(_statements(db, first)) == 6
    again = AllocationWrite(NEW, {rp: {"VCPU": 3, "MEMORY_MB": 512}}, generation=1, check_generation=True)
    assert len(_statements(db, again)) == 8
    with db.read() as s:
        rows = dict(s.execute(select(Allocation.resource_class, Allocation.used)).all())
        state = consumer_state(s, NEW)
    assert rows == {"VCPU": 3, "MEMORY_MB": 512}
    assert (state.exists, state.generation, state.project_id, state.user_id) == (True, 2, "p", "u")
