"""PUT /allocations for a new consumer in few statements (claims per second are bounded by
round trips): consumer state, generation bump (which resolves the provider uuids), insert,
capacity check, consumer row. Replacing a consumer's allocations adds the delete of the old
ones. On PostgreSQL the same steps take two statements whatever the write (and a SET LOCAL)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

import kumo.placement.api_models  # noqa: F401  (create_all needs the Placement API tables)
from kumo.db import Database
from kumo.errors import BadRequest, Conflict
from kumo.placement import allocation_rules
from kumo.placement.api import allocations
from kumo.placement.api.allocations import AllocationWrite, consumer_state, replace_allocations
from kumo.placement.api.exceptions import ConcurrentUpdate
from kumo.placement.api_models import Consumer
from kumo.placement.models import Allocation, Inventory, ResourceProvider

from .fleet import add_host

NEW = "00000000-0000-0000-0000-0000000000c1"
OTHER = "00000000-0000-0000-0000-0000000000c2"


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


def _expect(db: Database, sqlite: int) -> int:
    """PostgreSQL: SET LOCAL plan_cache_mode (generic plans), lock and read, write and check."""
    return sqlite if db.is_sqlite else 3


def test_a_new_consumer_costs_five_statements_and_a_replacement_six(db: Database) -> None:
    with db.transaction() as s:
        rp = add_host(s, "h1", {"VCPU": 8, "MEMORY_MB": 8192}).uuid
    first = AllocationWrite(NEW, {rp: {"VCPU": 2}}, project_id="p", user_id="u")
    assert len(_statements(db, first)) == _expect(db, 5)
    again = AllocationWrite(NEW, {rp: {"VCPU": 3, "MEMORY_MB": 512}}, generation=1, check_generation=True)
    assert len(_statements(db, again)) == _expect(db, 6)
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
    assert len(_statements(db, writes[0])) == _expect(db, 5)
    first = AllocationWrite(consumers[0], {rp: {"VCPU": 1}}, generation=1, check_generation=True)
    # One of them replaces: plus the delete, and its row is updated beside the INSERT of the new rows.
    assert len(_statements(db, first, *writes[1:])) == _expect(db, 7)
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


def _usage(db: Database) -> dict[str, int]:
    with db.read() as s:
        return dict(
            s.execute(
                select(Allocation.resource_class, func.sum(Allocation.used)).group_by(
                    Allocation.resource_class
                )
            ).all()
        )


def test_every_error_rolls_the_write_back_with_placements_message(db: Database) -> None:
    """The same checks, messages and order on both backends (PostgreSQL checks capacity in the
    statement that writes)."""
    with db.transaction() as s:
        host = add_host(s, "h1", {"VCPU": 4, "MEMORY_MB": 4096}, max_unit=100)
        rp = host.uuid
        with_steps = add_host(s, "h2", {"VCPU": 8})
        s.execute(
            update(Inventory).where(Inventory.provider_id == with_steps.id).values(step_size=2, min_unit=2)
        )
    cases: list[tuple[list[AllocationWrite], type[Exception], str]] = [
        (
            [AllocationWrite(NEW, {str(uuid.uuid4()): {"VCPU": 1}}, project_id="p", user_id="u")],
            BadRequest,
            "that does not exist",
        ),
        (
            [AllocationWrite(NEW, {rp: {"VCPU": 5}}, project_id="p", user_id="u")],
            Conflict,
            "would exceed the capacity",
        ),
        (
            [AllocationWrite(NEW, {rp: {"CUSTOM_GPU": 1}}, project_id="p", user_id="u")],
            Conflict,
            "Inventory for 'CUSTOM_GPU' on resource provider",
        ),
        (
            [AllocationWrite(NEW, {with_steps.uuid: {"VCPU": 3}}, project_id="p", user_id="u")],
            Conflict,
            "min_unit: 2, max_unit: 8, step_size: 2",
        ),
        (  # two consumers together over capacity, each alone within it
            [
                AllocationWrite(NEW, {rp: {"VCPU": 3}}, project_id="p", user_id="u"),
                AllocationWrite(OTHER, {rp: {"VCPU": 2}}, project_id="p", user_id="u"),
            ],
            Conflict,
            "would exceed the capacity",
        ),
        (
            [
                AllocationWrite(
                    NEW, {rp: {"VCPU": 1}}, project_id="p", user_id="u", generation=3, check_generation=True
                )
            ],
            ConcurrentUpdate,
            "expected null but got 3",
        ),
    ]
    for writes, error, message in cases:
        with pytest.raises(error, match=message), db.transaction() as s:
            replace_allocations(s, writes)
        assert _usage(db) == {}
        with db.read() as s:
            assert not consumer_state(s, NEW).has_row
            assert s.scalar(select(ResourceProvider.generation).where(ResourceProvider.uuid == rp)) == 0


def test_replacing_frees_the_old_usage_and_moves_consumer_generations(db: Database) -> None:
    """Replacing counts the consumer's old rows out (4 of 4 VCPU in use, replaced by 4 more on
    the same provider fits); a stale generation is refused; emptying removes the consumer."""
    with db.transaction() as s:
        rp = add_host(s, "h1", {"VCPU": 4, "MEMORY_MB": 4096}).uuid
        other = add_host(s, "h2", {"VCPU": 4, "MEMORY_MB": 4096}).uuid
    with db.transaction() as s:
        replace_allocations(s, [AllocationWrite(NEW, {rp: {"VCPU": 4}}, "p", "u", None, True)])
    with db.transaction() as s:
        replace_allocations(
            s, [AllocationWrite(NEW, {rp: {"VCPU": 4}, other: {"MEMORY_MB": 1}}, "p", "u", 1, True)]
        )
    with db.read() as s:
        state = consumer_state(s, NEW)
        generations = dict(s.execute(select(ResourceProvider.uuid, ResourceProvider.generation)).all())
    assert (state.exists, state.generation) == (True, 2)
    assert generations == {rp: 2, other: 1}
    assert _usage(db) == {"VCPU": 4, "MEMORY_MB": 1}
    with pytest.raises(ConcurrentUpdate, match="expected 2 but got 1"), db.transaction() as s:
        replace_allocations(s, [AllocationWrite(NEW, {rp: {"VCPU": 1}}, "p", "u", 1, True)])
    # Without a generation check (before 1.28) the owner stays when the body names none.
    with db.transaction() as s:
        replace_allocations(s, [AllocationWrite(NEW, {other: {"VCPU": 1}})])
    with db.read() as s:
        state = consumer_state(s, NEW)
    assert (state.generation, state.project_id, state.user_id) == (3, "p", "u")
    with db.transaction() as s:
        replace_allocations(s, [AllocationWrite(NEW, {}, "p", "u", 3, True)])
    with db.read() as s:
        state = consumer_state(s, NEW)
        generations = dict(s.execute(select(ResourceProvider.uuid, ResourceProvider.generation)).all())
    assert (state.exists, state.has_row) == (False, False)
    assert _usage(db) == {}
    assert generations == {rp: 3, other: 3}  # every provider the consumer left was bumped


def test_a_consumer_row_changed_since_it_was_read_is_a_concurrent_update(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer row is compare-and-swapped on the generation read at the start of the
    write: a writer that moved it in between makes this one fail (and roll back)."""
    with db.transaction() as s:
        rp = add_host(s, "h1", {"VCPU": 4}).uuid
    with db.transaction() as s:
        replace_allocations(s, [AllocationWrite(NEW, {rp: {"VCPU": 1}}, "p", "u", None, True)])
    with db.transaction() as s:
        s.execute(update(Consumer).where(Consumer.uuid == NEW).values(generation=Consumer.generation + 5))
        states = allocations.consumer_states(s, [NEW])

    real = allocation_rules.state_of

    def stale(consumer: str, sources: Any) -> Any:
        # What a writer that read before the other one's commit saw (both backends read
        # consumer states through allocation_rules.state_of).
        return replace(real(consumer, sources), generation=states[NEW].generation - 5)

    monkeypatch.setattr(allocation_rules, "state_of", stale)
    with (
        pytest.raises(ConcurrentUpdate, match=f"consumer generation conflict for {NEW}"),
        db.transaction() as s,
    ):
        replace_allocations(s, [AllocationWrite(NEW, {rp: {"VCPU": 2}}, "p", "u")])
    assert _usage(db) == {"VCPU": 1}
