"""Several API workers run the rebalancer loop on one database: each step is safe to run twice at
once. Two executors on the same database interleave (the second runs inside the first's hook
call): an ended action gets one post-migrate hook call and one move record; an action another
worker failed as interrupted while its pre-migrate hook ran is not migrated after all; a PENDING
plan is promoted once; a cancelled plan is never revived by a start."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from kumo.compute import hosts
from kumo.compute.models import Instance
from kumo.config import Settings
from kumo.db import Database
from kumo.deploy import init_cloud
from kumo.errors import Conflict
from kumo.rebalance import hooks
from kumo.rebalance import service as svc
from kumo.rebalance.executor import AWAITING_HOOK, MIGRATING, Executor
from kumo.rebalance.models import Action, ActionPlan, RebalanceMove
from tests.conftest import ADMIN_PASSWORD

T0 = dt.datetime(2026, 12, 7, 12, 0, 0)


class Recorder(hooks.DrainHooks):
    """Records every hook call; `during` runs once, inside the first call (the other worker)."""

    def __init__(self) -> None:
        super().__init__("", "", 1.0)
        self.calls: list[tuple[str, str]] = []
        self.during: Callable[[], None] | None = None

    def call(self, event: str, body: dict[str, Any]) -> hooks.Verdict:
        self.calls.append((event, str(body["action"])))
        other, self.during = self.during, None
        if other is not None:
            other()
        return hooks.Verdict(True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """A migrated database with no API running (SQLite, then PostgreSQL for its row locks)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_database_url")
        database = init_cloud(Settings(state_dir=tmp_path / "state", database_url=url), ADMIN_PASSWORD)
    else:
        shutil.copyfile(sqlite_template, tmp_path / "kumo.db")
        database = Database(f"sqlite:///{tmp_path / 'kumo.db'}")
    yield database
    database.dispose()


def _plan(db: Database, plan_state: str, actions: list[tuple[str, str, str | None]]) -> str:
    """A plan with actions (uuid, state, status_message) moving server s-<uuid> from a to b."""
    with db.transaction() as s:
        s.add(ActionPlan(uuid="plan-1", audit_uuid="audit-1", strategy="s", state=plan_state, efficacy={}))
        for seq, (uuid, state, message) in enumerate(actions):
            s.add(
                Action(
                    uuid=uuid,
                    action_plan_uuid="plan-1",
                    seq=seq,
                    state=state,
                    status_message=message,
                    parents=[],
                    input_parameters={
                        "resource_id": f"s-{uuid}",
                        "source_node": "a",
                        "destination_node": "b",
                    },
                    created_at=T0,
                    updated_at=T0,
                )
            )
    return "plan-1"


def _moves(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(RebalanceMove)) or 0)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # a plain UPDATE: no dialect difference
def test_an_ended_action_is_finished_by_one_worker(db: Database, tmp_path: Path) -> None:
    _plan(db, svc.ONGOING, [("x1", svc.ONGOING, MIGRATING)])  # its server is gone: FAILED
    hook_a, hook_b = Recorder(), Recorder()
    settings = Settings(state_dir=tmp_path)
    worker_a = Executor(db, settings, hook_a, clock=lambda: T0)
    worker_b = Executor(db, settings, hook_b, clock=lambda: T0)
    hook_a.during = worker_b.finish  # B finishes while A's post hook runs
    worker_a.finish()
    worker_b.finish()
    assert hook_a.calls + hook_b.calls == [(hooks.POST, "x1")]
    assert _moves(db) == 1
    with db.read() as s:
        assert svc.get_action(s, "x1").state == svc.FAILED


def test_an_action_failed_by_another_worker_during_its_hook_is_not_migrated(
    db: Database, tmp_path: Path
) -> None:
    with db.transaction() as s:
        for name in ("a", "b"):
            hosts.register_host(s, name, vcpus=8, memory_mb=16384, disk_gb=100)
            hosts.heartbeat(s, name)
        s.add(
            Instance(
                uuid="s-x1",
                project_id="p",
                user_id="u",
                name="vm",
                host="a",
                flavor={"id": "f", "name": "f", "vcpus": 1, "ram": 512, "disk": 1},
                vcpus=1,
                memory_mb=512,
                vm_state="active",
                task_state=None,
                locked=False,
                metadata_={},
            )
        )
    with db.transaction() as s:  # (a None at insert takes the column's default)
        s.execute(update(Instance).where(Instance.uuid == "s-x1").values(task_state=None))
    _plan(db, svc.ONGOING, [("x1", svc.PENDING, None)])
    hook_a, hook_b = Recorder(), Recorder()
    settings = Settings(state_dir=tmp_path)
    worker_a = Executor(db, settings, hook_a, clock=lambda: T0)
    later = T0 + dt.timedelta(hours=1)  # B sees A's claim as stale: "interrupted"
    worker_b = Executor(db, settings, hook_b, clock=lambda: later)
    hook_a.during = worker_b.finish
    worker_a.start_actions()
    assert hook_a.calls == [(hooks.PRE, "x1")] and hook_b.calls == [(hooks.POST, "x1")]
    with db.read() as s:
        action = svc.get_action(s, "x1")
        assert (action.state, action.status_message) == (svc.FAILED, "Interrupted before its migration.")
        instance = s.scalar(select(Instance).where(Instance.uuid == "s-x1"))
        assert instance is not None and instance.task_state is None and instance.host == "a"
    assert _moves(db) == 1
    assert AWAITING_HOOK not in (action.status_message or "")


def test_a_plan_is_promoted_once_and_a_cancelled_plan_never_revives(db: Database, tmp_path: Path) -> None:
    plan = _plan(db, svc.PENDING, [("x1", svc.PENDING, None)])
    settings = Settings(state_dir=tmp_path)
    worker_a = Executor(db, settings, Recorder(), clock=lambda: T0)
    worker_b = Executor(db, settings, Recorder(), clock=lambda: T0)
    worker_a.promote()
    worker_b.promote()
    with db.read() as s:
        assert svc.get_plan(s, plan).state == svc.ONGOING
    with db.transaction() as s:
        assert svc.cancel_plan(s, plan, svc.CANCELLING).state == svc.CANCELLING
        assert svc.get_action(s, "x1").state == svc.CANCELLED
    with db.transaction() as s, pytest.raises(Conflict):
        svc.start_plan(s, plan)
    with db.transaction() as s:
        s.add(
            ActionPlan(uuid="plan-2", audit_uuid="audit-1", strategy="s", state=svc.RECOMMENDED, efficacy={})
        )
    with db.transaction() as s, pytest.raises(Conflict, match="plan-1 is already running"):
        svc.start_plan(s, "plan-2")  # plan-1 is still CANCELLING
    worker_a.close_plans()
    with db.transaction() as s:
        assert svc.get_plan(s, plan).state == svc.CANCELLED
        assert svc.start_plan(s, "plan-2").state == svc.PENDING
    with db.transaction() as s, pytest.raises(Conflict):
        svc.skip_action(s, "x1", None)  # cancelled: not PENDING any more
