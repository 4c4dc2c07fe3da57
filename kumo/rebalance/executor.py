"""The rebalancer's loop: runs due audits, and executes started action plans through the normal
live-migration path (kumo.compute.moves.migrate: the destination claimed with the scheduler's
filters, group rules included, on the current database; an instance action per move).

One step (`Executor.step`): run the audits that are due; move a PENDING plan to ONGOING (one
plan runs at a time, compare-and-set); finish the actions whose migration ended (each claimed
ONGOING → outcome by compare-and-set, then by that worker alone the post-migrate hook and the
move recorded for cooldown); start PENDING actions of the ONGOING plan while the
caps allow (per host out and in, per cloud, counting every running action): each is claimed
(PENDING → ONGOING, compare-and-set, so one API worker runs it), re-checked against the current
database, shown to the pre-migrate hook (a veto skips it), then, if its row (locked) is still
ONGOING and awaiting the hook, migrated; a plan whose actions
are all done ends SUCCEEDED, or FAILED when one failed.

Hooks are called outside any transaction. Every failure of an action is recorded on it
(status_message) and never stops the loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, delete, exists, select, update
from sqlalchemy.orm import Session

from kumo import metrics
from kumo.api.context import RequestContext
from kumo.compute import moves
from kumo.compute.hosts import is_up
from kumo.compute.models import ComputeHost, Instance
from kumo.config import Settings
from kumo.db import Database
from kumo.db.base import utcnow
from kumo.errors import KumoError
from kumo.rebalance import core, hooks
from kumo.rebalance import service as svc
from kumo.rebalance.models import Action, ActionPlan, Audit, RebalanceMove
from kumo.rebalance.snapshot import policy_from
from kumo.runtime import Runtime, Waker

log = logging.getLogger(__name__)
REBALANCER = RequestContext(user_id="kumo-rebalancer", project_id=None, roles=("admin",), request_id="-")
AWAITING_HOOK = "awaiting the pre-migrate hook"
MIGRATING = "live migration running"
AUDIT_RETRY_SECONDS = 60  # an audit whose run broke (not refused) is tried again after this


@dataclass(frozen=True)
class Outcome:
    state: str
    message: str


def precondition(
    instance: Instance | None, dest: ComputeHost | None, params: dict[str, Any]
) -> Outcome | None:
    """Why an action may not run now (Watcher's pre-conditions), or None. Pure over the rows."""
    source, destination = params.get("source_node"), params.get("destination_node")
    if instance is None or instance.deleted:
        return Outcome(svc.SKIPPED, "The server no longer exists.")
    if instance.host != source:
        return Outcome(svc.SKIPPED, f"The server is no longer on {source}.")
    if instance.vm_state != "active" or instance.task_state is not None or instance.locked:
        return Outcome(svc.SKIPPED, "The server is not ACTIVE, is locked or has a task in flight.")
    meta = instance.metadata_ or {}
    if str(meta.get(core.EXCLUDE_KEY, "")).strip().lower() == core.EXCLUDE_VALUE:
        return Outcome(svc.SKIPPED, core.EXCLUDED)
    if dest is None:
        return Outcome(svc.FAILED, f"The destination {destination} no longer exists.")
    if dest.disabled or not is_up(dest):
        return Outcome(svc.FAILED, f"The destination {destination} is disabled or down.")
    return None


def migration_outcome(instance: Instance | None, params: dict[str, Any]) -> Outcome | None:
    """The result of a running live migration, or None while it runs. Pure over the row."""
    if instance is None or instance.deleted:
        return Outcome(svc.FAILED, "The server was deleted during its migration.")
    if instance.task_state is not None:
        return None
    if instance.host == params.get("destination_node") and instance.vm_state == "active":
        return Outcome(svc.SUCCEEDED, "")
    fault = (instance.fault or {}).get("message") if instance.fault else None
    return Outcome(svc.FAILED, f"The live migration failed: {fault or 'the server stayed on its source'}")


class Executor:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        drain: hooks.DrainHooks,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db, self.settings, self.drain, self.clock = db, settings, drain, clock

    def step(self) -> None:
        """One round; an idle cloud (no audit due, no plan started) costs one read."""
        if not self.busy():
            return
        self.run_audits()
        self.promote()
        self.finish()
        self.start_actions()
        self.close_plans()

    def busy(self) -> bool:
        now = self.clock()
        with self.db.read() as session:
            due = session.scalar(
                select(Audit.id).where(Audit.state.in_(svc.AUDIT_ACTIVE), Audit.next_run_time <= now).limit(1)
            )
            running = session.scalar(
                select(ActionPlan.id).where(ActionPlan.state.in_(svc.RUNNING_PLAN)).limit(1)
            )
        return due is not None or running is not None

    # -- audits and plans ----------------------------------------------------------------
    def run_audits(self) -> None:
        """Run each due audit; one that fails never stops the others nor wedges the loop: a
        refused audit (KumoError: bad parameters, scope) is FAILED, any other error is logged
        and the audit tried again after max(its interval, AUDIT_RETRY_SECONDS)."""
        now = self.clock()
        with self.db.read() as session:
            due = [a.uuid for a in svc.due_audits(session, now)]
        for audit_uuid in due:
            try:
                with self.db.transaction() as session:
                    audit = session.scalar(select(Audit).where(Audit.uuid == audit_uuid).with_for_update())
                    if audit is not None and audit.state in svc.AUDIT_ACTIVE:
                        if audit.next_run_time is None or audit.next_run_time <= now:
                            svc.run_audit(session, self.settings, audit, now)
            except KumoError as exc:
                log.warning("audit %s failed: %s", audit_uuid, exc)
                self._audit_failed(audit_uuid, now, retry=False)
            except Exception:
                log.exception("audit %s failed; it runs again later", audit_uuid)
                self._audit_failed(audit_uuid, now, retry=True)

    def _audit_failed(self, audit_uuid: str, now: dt.datetime, retry: bool) -> None:
        try:
            with self.db.transaction() as session:
                failed = session.scalar(select(Audit).where(Audit.uuid == audit_uuid))
                if failed is None:
                    return
                if retry:
                    wait = max(failed.interval or 0, AUDIT_RETRY_SECONDS)
                    failed.next_run_time = now + dt.timedelta(seconds=wait)
                else:
                    failed.state = svc.FAILED
        except Exception:
            log.exception("audit %s: its failure could not be recorded", audit_uuid)

    def promote(self) -> None:
        """The oldest PENDING plan → ONGOING in one compare-and-set UPDATE (none while another
        is ONGOING or CANCELLING): of several workers, one promotes it."""
        busy = select(ActionPlan.id).where(ActionPlan.state.in_(svc.EXECUTING_PLAN))
        oldest = (
            select(ActionPlan.id)
            .where(ActionPlan.state == svc.PENDING)
            .order_by(ActionPlan.id)
            .limit(1)
            .scalar_subquery()
        )
        with self.db.transaction() as session:
            session.execute(
                update(ActionPlan)
                .where(ActionPlan.id == oldest, ActionPlan.state == svc.PENDING, ~exists(busy))
                .values(state=svc.ONGOING)
                .execution_options(synchronize_session=False)
            )

    def close_plans(self) -> None:
        with self.db.transaction() as session:
            for plan in session.scalars(select(ActionPlan).where(ActionPlan.state.in_(svc.EXECUTING_PLAN))):
                states = [a.state for a in svc.actions_of(session, plan.uuid)]
                if any(s in (svc.PENDING, svc.ONGOING) for s in states) and plan.state == svc.ONGOING:
                    continue
                if svc.ONGOING in states:
                    continue
                if plan.state == svc.CANCELLING:
                    plan.state = svc.CANCELLED
                else:
                    plan.state = svc.FAILED if svc.FAILED in states else svc.SUCCEEDED

    # -- actions ---------------------------------------------------------------------------
    def finish(self) -> None:
        now = self.clock()
        timeout = dt.timedelta(seconds=self.settings.rebalance_migration_timeout_seconds)
        stale_hook = dt.timedelta(seconds=3 * self.settings.rebalance_hook_timeout_seconds + 30)
        done: list[tuple[str, Outcome, dict[str, Any]]] = []
        with self.db.read() as session:
            for action in session.scalars(select(Action).where(Action.state == svc.ONGOING)):
                params = dict(action.input_parameters)
                started = action.updated_at or action.created_at
                if action.status_message == AWAITING_HOOK:
                    if now - started > stale_hook:  # its worker died between claim and migration
                        done.append(
                            (action.uuid, Outcome(svc.FAILED, "Interrupted before its migration."), params)
                        )
                    continue
                instance = _instance(session, str(params.get("resource_id")))
                outcome = migration_outcome(instance, params)
                if outcome is None and now - started > timeout:
                    outcome = Outcome(svc.FAILED, "The live migration did not end within its timeout.")
                if outcome is not None:
                    done.append((action.uuid, outcome, {**params, "server": _server(instance)}))
        for action_uuid, outcome, params in done:
            if self._claim(action_uuid, outcome):  # one worker ends each action
                self._post_hook(action_uuid, params, outcome.state)
                self._record(action_uuid, outcome, moved=True)

    def start_actions(self) -> None:
        for action_uuid in self._startable():
            self._run(action_uuid)

    def _startable(self) -> list[str]:
        """PENDING actions of the ONGOING plan, in order, that the caps let start now."""
        with self.db.read() as session:
            plan = session.scalar(select(ActionPlan).where(ActionPlan.state == svc.ONGOING).limit(1))
            if plan is None:
                return []
            audit = session.scalar(select(Audit).where(Audit.uuid == plan.audit_uuid))
            policy = policy_from(audit.parameters if audit is not None else {})
            running = list(session.scalars(select(Action).where(Action.state == svc.ONGOING)))
            out: dict[str, int] = {}
            into: dict[str, int] = {}
            for a in running:
                p = a.input_parameters
                out[p["source_node"]] = out.get(p["source_node"], 0) + 1
                into[p["destination_node"]] = into.get(p["destination_node"], 0) + 1
            slots = policy.per_cloud - len(running)
            chosen = []
            for action in svc.actions_of(session, plan.uuid):
                if action.state != svc.PENDING or slots <= 0:
                    continue
                src, dst = action.input_parameters["source_node"], action.input_parameters["destination_node"]
                if out.get(src, 0) >= policy.per_host_out or into.get(dst, 0) >= policy.per_host_in:
                    continue
                out[src] = out.get(src, 0) + 1
                into[dst] = into.get(dst, 0) + 1
                slots -= 1
                chosen.append(action.uuid)
            return chosen

    def _run(self, action_uuid: str) -> None:
        with self.db.transaction() as session:  # claim it: one worker runs each action
            claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                update(Action)
                .where(Action.uuid == action_uuid, Action.state == svc.PENDING)
                .values(state=svc.ONGOING, status_message=AWAITING_HOOK, updated_at=self.clock())
            )
            if claimed.rowcount != 1:
                return
            action = session.scalar(select(Action).where(Action.uuid == action_uuid))
            assert action is not None
            params = dict(action.input_parameters)
            params["action_plan"] = action.action_plan_uuid
            instance = _instance(session, str(params["resource_id"]))
            dest = session.scalar(select(ComputeHost).where(ComputeHost.name == params["destination_node"]))
            blocked = precondition(instance, dest, params)
            params["server"] = _server(instance)
        if blocked is not None:
            if self._claim(action_uuid, blocked):
                self._record(action_uuid, blocked, moved=False)
            return
        verdict = self.drain.call(hooks.PRE, _hook_body(action_uuid, params))
        if not verdict.proceed:
            metrics.REBALANCE_VETOES.inc()
            vetoed = Outcome(svc.SKIPPED, verdict.reason)
            if self._claim(action_uuid, vetoed):
                self._record(action_uuid, vetoed, moved=False)
            return
        try:
            with self.db.transaction() as session:
                # Still ours? Another worker may have failed it as interrupted (a slow hook), or
                # the plan's cancel may have ended it: the lock holds it until the migrate commits.
                mine = session.scalar(select(Action).where(Action.uuid == action_uuid).with_for_update())
                if mine is None or mine.state != svc.ONGOING or mine.status_message != AWAITING_HOOK:
                    return
                instance = _instance(session, str(params["resource_id"]))
                dest = session.scalar(
                    select(ComputeHost).where(ComputeHost.name == params["destination_node"])
                )
                blocked = precondition(instance, dest, params)  # again: the hook took its time
                if blocked is None:
                    ctx = RequestContext(
                        user_id=REBALANCER.user_id,
                        project_id=None,
                        roles=REBALANCER.roles,
                        request_id=f"req-rebalance-{action_uuid}"[:64],
                    )
                    moves.migrate(
                        session, ctx, str(params["resource_id"]), True, str(params["destination_node"])
                    )
                    row = session.scalar(select(Action).where(Action.uuid == action_uuid))
                    assert row is not None
                    row.status_message = MIGRATING
                    row.updated_at = self.clock()
        except KumoError as exc:
            blocked = Outcome(svc.FAILED, str(exc))
        if blocked is not None and self._claim(action_uuid, blocked):
            self._post_hook(action_uuid, params, blocked.state)
            self._record(action_uuid, blocked, moved=blocked.state == svc.FAILED)

    def _claim(self, action_uuid: str, outcome: Outcome) -> bool:
        """ONGOING → the outcome, compare-and-set: True for the one worker whose UPDATE ended it
        (that worker alone calls the post hook and records the move)."""
        with self.db.transaction() as session:
            claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                update(Action)
                .where(Action.uuid == action_uuid, Action.state == svc.ONGOING)
                .values(state=outcome.state, status_message=outcome.message or None)
                .execution_options(synchronize_session=False)
            )
            return claimed.rowcount == 1

    def _post_hook(self, action_uuid: str, params: dict[str, Any], state: str) -> None:
        self.drain.call(hooks.POST, {**_hook_body(action_uuid, params), "outcome": state})

    def _record(self, action_uuid: str, outcome: Outcome, moved: bool) -> None:
        """The end of an action this worker claimed (see _claim); a move tried (succeeded or
        failed) starts the server's cooldown."""
        now = self.clock()
        with self.db.transaction() as session:
            action = session.scalar(select(Action).where(Action.uuid == action_uuid))
            if action is None:
                return
            params = action.input_parameters
            if moved:
                left = params["source_node"] if outcome.state == svc.SUCCEEDED else ""
                session.add(
                    RebalanceMove(
                        instance_uuid=params["resource_id"],
                        source=left,
                        destination=params["destination_node"],
                        at=now,
                    )
                )
                session.execute(delete(RebalanceMove).where(RebalanceMove.at < now - dt.timedelta(days=1)))
        metrics.REBALANCE_MOVES.labels(outcome.state).inc()


def _instance(session: Session, uuid: str) -> Instance | None:
    return session.scalar(select(Instance).where(Instance.uuid == uuid))


def _server(instance: Instance | None) -> dict[str, Any]:
    if instance is None:
        return {}
    return {
        "id": instance.uuid,
        "name": instance.name,
        "project_id": instance.project_id,
        "metadata": dict(instance.metadata_ or {}),
    }


def _hook_body(action_uuid: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "action_plan": params.get("action_plan"),
        "action": action_uuid,
        "server": params.get("server") or {"id": params.get("resource_id")},
        "source": params.get("source_node"),
        "destination": params.get("destination_node"),
    }


def executor_of(db: Database, settings: Settings) -> Executor:
    drain = hooks.DrainHooks(
        settings.rebalance_hook_url,
        settings.secret("rebalance_hook_secret") if settings.rebalance_hook_url else "",
        settings.rebalance_hook_timeout_seconds,
    )
    return Executor(db, settings, drain)


def rebalance_loop(executor: Executor, waker: Waker, stop: threading.Event) -> None:
    """Step every rebalance_loop_seconds, and when an audit or a plan's start commits."""
    while not stop.is_set():
        seen = waker.seq(svc.WAKE_KEY)
        try:
            executor.step()
        except Exception:
            log.exception("rebalancer step failed; retrying")
        waker.wait(svc.WAKE_KEY, seen, executor.settings.rebalance_loop_seconds)


@dataclass
class Rebalancer:
    """The loop's thread in an API worker (see start_rebalancer)."""

    thread: threading.Thread
    stop_event: threading.Event

    def stop(self, waker: Waker) -> None:
        self.stop_event.set()
        waker.wake(svc.WAKE_KEY)
        self.thread.join(timeout=5)


def start_rebalancer(rt: Runtime) -> Rebalancer:
    stop = threading.Event()
    executor = executor_of(rt.db, rt.settings)
    thread = threading.Thread(
        target=rebalance_loop, args=(executor, rt.waker, stop), name="kumo-rebalancer", daemon=True
    )
    thread.start()
    return Rebalancer(thread, stop)
