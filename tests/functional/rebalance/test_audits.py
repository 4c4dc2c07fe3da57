"""Audits and plans over a database with no loop running (the executor stepped by hand, its
clock given): a continuous audit runs again each interval and its newer plan supersedes the
RECOMMENDED one; a plan cancels; an action is skipped only before its plan starts; auto_trigger
on a plan with nothing to move ends it at once, and leaves a plan RECOMMENDED while another
runs; a cancelled audit runs no more; names are at most 63 characters and a duplicate template
name is a 409 even when it races; an audit whose run breaks is tried again later while the
other due audits run."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kumo.config import Settings
from kumo.db import Database
from kumo.errors import BadRequest, Conflict
from kumo.rebalance import core, hooks
from kumo.rebalance import service as svc
from kumo.rebalance.executor import AUDIT_RETRY_SECONDS, Executor
from kumo.rebalance.models import Action, ActionPlan, AuditTemplate

T0 = dt.datetime(2026, 12, 7, 12, 0, 0)


@pytest.fixture
def db(tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    shutil.copyfile(sqlite_template, tmp_path / "kumo.db")
    database = Database(f"sqlite:///{tmp_path / 'kumo.db'}")
    yield database
    database.dispose()


def test_continuous_audit_supersedes_and_plans_cancel(db: Database, tmp_path: Path) -> None:
    now = [T0]
    executor = Executor(db, Settings(state_dir=tmp_path), hooks.DrainHooks("", "", 1.0), clock=lambda: now[0])
    with db.transaction() as s:
        audit = svc.create_audit_from(
            s, {"audit_type": "CONTINUOUS", "interval": "60", "goal": "noisy_neighbor"}, now[0]
        )
        uuid = audit.uuid
    executor.step()
    with db.read() as s:
        (first,) = svc.list_plans(s, uuid)
        assert first.state == svc.RECOMMENDED and first.efficacy["live_migrations"] == 0
        audit = svc.get_audit(s, uuid)
        assert audit.state == svc.ONGOING and audit.next_run_time == T0 + dt.timedelta(seconds=60)
    now[0] = T0 + dt.timedelta(seconds=30)
    executor.step()  # not due yet
    with db.read() as s:
        assert len(svc.list_plans(s, uuid)) == 1
    now[0] = T0 + dt.timedelta(seconds=61)
    executor.step()
    with db.read() as s:
        old, new = svc.list_plans(s, uuid)
        assert (old.state, new.state) == (svc.SUPERSEDED, svc.RECOMMENDED)
    with db.transaction() as s, pytest.raises(Conflict):
        svc.start_plan(s, old.uuid)  # a superseded plan never starts

    # An action of a RECOMMENDED plan may be skipped; once its plan is cancelled, not any more.
    with db.transaction() as s:
        s.add(
            Action(
                uuid="a-1",
                action_plan_uuid=new.uuid,
                seq=0,
                state=svc.PENDING,
                parents=[],
                input_parameters={"resource_id": "x", "source_node": "a", "destination_node": "b"},
            )
        )
        s.add(
            Action(
                uuid="a-2",
                action_plan_uuid=new.uuid,
                seq=1,
                state=svc.PENDING,
                parents=[],
                input_parameters={"resource_id": "y", "source_node": "c", "destination_node": "b"},
            )
        )
    with db.transaction() as s:
        assert svc.skip_action(s, "a-1", "not this one").state == svc.SKIPPED
        assert svc.cancel_plan(s, new.uuid, svc.CANCELLED).state == svc.CANCELLED
    with db.read() as s:
        states = {a.uuid: (a.state, a.status_message) for a in svc.actions_of(s, new.uuid)}
        assert states == {"a-1": (svc.SKIPPED, "not this one"), "a-2": (svc.CANCELLED, None)}
    with db.transaction() as s, pytest.raises(Conflict):
        svc.skip_action(s, "a-2", None)

    # The audit cancelled: it runs no more.
    with db.transaction() as s:
        svc.update_audit_state(s, uuid, svc.CANCELLED)
    now[0] = T0 + dt.timedelta(seconds=300)
    executor.step()
    with db.read() as s:
        assert len(svc.list_plans(s, uuid)) == 2


def test_auto_trigger_with_nothing_to_move_ends_at_once(db: Database, tmp_path: Path) -> None:
    executor = Executor(db, Settings(state_dir=tmp_path), hooks.DrainHooks("", "", 1.0), clock=lambda: T0)
    with db.transaction() as s:
        uuid = svc.create_audit_from(s, {"goal": "noisy_neighbor", "auto_trigger": True}, T0).uuid
    executor.step()
    with db.read() as s:
        (plan,) = svc.list_plans(s, uuid)
        assert plan.state == svc.SUCCEEDED and svc.get_audit(s, uuid).state == svc.SUCCEEDED


def test_an_auto_triggered_plan_waits_recommended_while_another_runs(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One running plan per cloud (its partial unique index): an auto-triggered plan found while
    another runs is left RECOMMENDED, never queued as a second running plan; once none runs, the
    audit's next run starts its plan."""
    move = core.Move("srv", "a", "b", ("srv",), 40.0, 1.0, 20.0, 2.0, 1.0, 1.0)
    one_move = core.Plan((move,), (), core.Effect(2.0, 1.0, ("a",), ("srv",)))
    monkeypatch.setattr(svc.core, "plan", lambda snapshot, policy: one_move)
    now = [T0]
    executor = Executor(db, Settings(state_dir=tmp_path), hooks.DrainHooks("", "", 1.0), clock=lambda: now[0])
    with db.transaction() as s:
        s.add(ActionPlan(uuid="running", audit_uuid="other", strategy="s", state=svc.ONGOING, efficacy={}))
        body = {"audit_type": "CONTINUOUS", "interval": 60, "goal": "noisy_neighbor", "auto_trigger": True}
        uuid = svc.create_audit_from(s, body, T0).uuid
    executor.run_audits()
    with db.read() as s:
        (waiting,) = svc.list_plans(s, uuid)
        assert waiting.state == svc.RECOMMENDED
    with db.transaction() as s:
        svc.get_plan(s, "running").state = svc.SUCCEEDED
    now[0] = T0 + dt.timedelta(seconds=61)
    executor.run_audits()
    with db.read() as s:
        old, new = svc.list_plans(s, uuid)
        assert (old.state, new.state) == (svc.SUPERSEDED, svc.PENDING)


def test_executor_starts_only_what_the_caps_allow(db: Database, tmp_path: Path) -> None:
    """1 out and 1 in per host, per_cloud running at once (running actions count), in order."""
    executor = Executor(db, Settings(state_dir=tmp_path), hooks.DrainHooks("", "", 1.0), clock=lambda: T0)
    with db.transaction() as s:
        uuid = svc.create_audit_from(s, {"goal": "noisy_neighbor", "parameters": {"per_cloud": 3}}, T0).uuid
    executor.run_audits()
    with db.transaction() as s:
        (plan,) = svc.list_plans(s, uuid)
        plan.state = svc.ONGOING
        moves = [
            ("run", "g", "h", svc.ONGOING),
            ("a1", "a", "b", svc.PENDING),
            ("a2", "a", "c", svc.PENDING),
            ("a3", "d", "b", svc.PENDING),
            ("a4", "e", "f", svc.PENDING),
            ("a5", "i", "j", svc.PENDING),
        ]
        for seq, (name, src, dst, state) in enumerate(moves):
            s.add(
                Action(
                    uuid=name,
                    action_plan_uuid=plan.uuid,
                    seq=seq,
                    state=state,
                    parents=[],
                    input_parameters={"resource_id": name, "source_node": src, "destination_node": dst},
                )
            )
    # a2: a's outbound slot taken by a1; a3: b's inbound by a1; a5: the cloud's 3 slots full.
    assert executor._startable() == ["a1", "a4"]


def test_names_are_bounded_and_a_duplicate_template_is_a_conflict(db: Database) -> None:
    with db.transaction() as s, pytest.raises(BadRequest, match="longer than 63"):
        svc.create_audit_from(s, {"goal": "noisy_neighbor", "name": "a" * 64}, T0)
    with db.transaction() as s, pytest.raises(BadRequest, match="longer than 63"):
        svc.create_template_from(s, {"goal": "noisy_neighbor", "name": "t" * 64})
    with db.transaction() as s:
        assert svc.create_template_from(s, {"goal": "noisy_neighbor", "name": "t" * 63}).name == "t" * 63
    # The same name created meanwhile by another request (unflushed here, so the look-up misses
    # it): the unique index refuses the second, a 409, not a 500.
    with db.transaction() as s, s.no_autoflush, pytest.raises(Conflict, match="created meanwhile"):
        s.add(AuditTemplate(uuid="t-0", name="dup", goal="noisy_neighbor", strategy="s", scope=[]))
        svc.create_template(s, "dup", "noisy_neighbor", None, None, [])
    with db.transaction() as s, pytest.raises(Conflict, match="already exists"):
        svc.create_template_from(s, {"goal": "noisy_neighbor", "name": "t" * 63})


def test_an_audit_whose_run_breaks_is_retried_later_and_the_others_run(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor = Executor(db, Settings(state_dir=tmp_path), hooks.DrainHooks("", "", 1.0), clock=lambda: T0)
    with db.transaction() as s:
        broken = svc.create_audit_from(s, {"goal": "noisy_neighbor", "name": "broken"}, T0).uuid
        fine = svc.create_audit_from(s, {"goal": "noisy_neighbor", "name": "fine"}, T0).uuid
    real = svc.run_audit

    def run_audit(session: Any, settings: Settings, audit: Any, now: dt.datetime) -> Any:
        if audit.uuid == broken:
            raise RuntimeError("a bug")
        return real(session, settings, audit, now)

    monkeypatch.setattr(svc, "run_audit", run_audit)
    executor.run_audits()
    with db.read() as s:
        again = svc.get_audit(s, broken)
        assert again.state == svc.PENDING
        assert again.next_run_time == T0 + dt.timedelta(seconds=AUDIT_RETRY_SECONDS)
        assert svc.get_audit(s, fine).state == svc.SUCCEEDED
    executor.run_audits()  # not due again yet: nothing runs, nothing raises
    with db.read() as s:
        assert svc.get_audit(s, broken).next_run_time == T0 + dt.timedelta(seconds=AUDIT_RETRY_SECONDS)
