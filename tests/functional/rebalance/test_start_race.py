"""Starting action plans from two API workers at once, on PostgreSQL for real: two transactions
interleaved so that the second's "is another plan running?" check runs before the first commits
(READ COMMITTED lets both see none). One plan runs, never two, never the same twice: the partial
unique index on running plans (migration 5e1f0c7a9b2d) holds the second writer until the first
commits, then fails it, and the service answers it as a conflict (409). Without the index the
same interleaving starts both: the race the index closes is real."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from kumo.config import Settings
from kumo.db import Database
from kumo.deploy import init_cloud
from kumo.errors import Conflict
from kumo.rebalance import service as svc
from kumo.rebalance.models import ActionPlan
from tests.conftest import ADMIN_PASSWORD, wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(tmp_path: Path, pg_database_url: str) -> Iterator[Database]:
    db = init_cloud(Settings(state_dir=tmp_path / "state", database_url=pg_database_url), ADMIN_PASSWORD)
    with db.transaction() as s:
        for name in ("plan-1", "plan-2"):
            s.add(
                ActionPlan(uuid=name, audit_uuid="audit-1", strategy="s", state=svc.RECOMMENDED, efficacy={})
            )
    yield db
    db.dispose()


def _blocked_on_a_lock(db: Database) -> bool:
    with db.engine.connect() as conn:
        waiting = conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


def _interleaved(db: Database, first: str, second: str) -> BaseException | str:
    """Start `first` in one transaction, then `second` in another while the first is not yet
    committed; commit the first once the second waits (or has ended). What the second got."""
    outcome: list[BaseException | str] = []

    def other_worker() -> None:
        try:
            with db.transaction() as s:
                outcome.append(svc.start_plan(s, second).state)
        except BaseException as exc:  # noqa: BLE001 — the outcome under test
            outcome.append(exc)

    with db.transaction() as s:
        assert svc.start_plan(s, first).state == svc.PENDING
        worker = threading.Thread(target=other_worker)
        worker.start()
        wait_for(lambda: _blocked_on_a_lock(db) or outcome, timeout=10)
        assert not outcome  # it waits for this transaction: its check already saw no plan running
    worker.join(timeout=10)
    assert not worker.is_alive() and len(outcome) == 1
    return outcome[0]


def _running(db: Database) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(ActionPlan.uuid).where(ActionPlan.state.in_(svc.RUNNING_PLAN))))


def test_two_plans_started_at_once_run_one_and_the_other_is_a_conflict(pg: Database) -> None:
    lost = _interleaved(pg, "plan-1", "plan-2")
    assert isinstance(lost, Conflict) and "plan-1 is already running" in str(lost)
    assert _running(pg) == ["plan-1"]
    with pg.read() as s:
        assert svc.get_plan(s, "plan-2").state == svc.RECOMMENDED  # it can be started later


def test_the_same_plan_started_twice_at_once_starts_once(pg: Database) -> None:
    lost = _interleaved(pg, "plan-1", "plan-1")
    assert isinstance(lost, Conflict) and "only a RECOMMENDED plan can start" in str(lost)
    assert _running(pg) == ["plan-1"]


def test_without_the_index_the_same_interleaving_starts_both(pg: Database) -> None:
    with pg.transaction() as s:
        s.execute(text("DROP INDEX uq_watcher_action_plans_one_running"))
    outcome: list[str] = []
    with pg.transaction() as s:
        svc.start_plan(s, "plan-1")
        worker = threading.Thread(
            target=lambda: outcome.append(_start_in_own_transaction(pg, "plan-2")), daemon=True
        )
        worker.start()
        worker.join(timeout=10)  # nothing holds it back: it commits before the first does
    assert outcome == [svc.PENDING]
    assert sorted(_running(pg)) == ["plan-1", "plan-2"]


def _start_in_own_transaction(db: Database, plan: str) -> str:
    with db.transaction() as s:
        return svc.start_plan(s, plan).state
