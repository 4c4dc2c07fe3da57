"""Watcher's objects over the rebalancer: goals and strategies (fixed), audit templates, audits,
action plans and actions, and the state rules between them.

Action plan states (Watcher's): RECOMMENDED (the dry run: nothing moves until started) →
PENDING (started) → ONGOING (the executor runs its actions) → SUCCEEDED | FAILED; RECOMMENDED
or PENDING → CANCELLED; ONGOING → CANCELLING → CANCELLED once its running actions end; a
RECOMMENDED plan becomes SUPERSEDED when a newer audit run recommends another. Action states:
PENDING → ONGOING → SUCCEEDED | FAILED; PENDING → SKIPPED (an admin before the start, a failed
pre-condition or a drain hook's veto) | CANCELLED.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo import metrics
from kumo.config import Settings
from kumo.db.base import wake_after_commit
from kumo.errors import BadRequest, Conflict, NotFound
from kumo.rebalance import core
from kumo.rebalance import snapshot as snap
from kumo.rebalance.models import RUNNING_PLAN_STATES, Action, ActionPlan, Audit, AuditTemplate
from kumo.validation import int_text

# Plan and action states
RECOMMENDED, PENDING, ONGOING = "RECOMMENDED", "PENDING", "ONGOING"
SUCCEEDED, FAILED, CANCELLED, CANCELLING, SUPERSEDED = (
    "SUCCEEDED",
    "FAILED",
    "CANCELLED",
    "CANCELLING",
    "SUPERSEDED",
)
SKIPPED = "SKIPPED"
RUNNING_PLAN = RUNNING_PLAN_STATES  # (PENDING, ONGOING, CANCELLING): one plan at most (its index)
NAME_MAX = 63  # audit and template names (their columns)
# Audit types and states
ONESHOT, CONTINUOUS = "ONESHOT", "CONTINUOUS"
AUDIT_DONE = (SUCCEEDED, FAILED, CANCELLED)
PLAN_DONE = (SUCCEEDED, FAILED, CANCELLED, SUPERSEDED)
ACTION_DONE = (SUCCEEDED, FAILED, SKIPPED, CANCELLED)
WAKE_KEY = "rebalance"  # the executor's loop: an audit created or a plan started


@dataclass(frozen=True)
class Goal:
    uuid: str
    name: str
    display_name: str
    efficacy_specification: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class Strategy:
    uuid: str
    name: str
    display_name: str
    goal: Goal
    parameters_spec: dict[str, Any]


EFFICACY = (
    {"name": "lost_cores_before", "description": "CPU cores lost to steal before the plan", "unit": "cores"},
    {
        "name": "lost_cores_after",
        "description": "CPU cores lost to steal after the plan (predicted)",
        "unit": "cores",
    },
    {"name": "live_migrations", "description": "Live migrations in the plan", "unit": "migrations"},
)
NOISY_NEIGHBOR = Goal("5b1c7a3e-7d2f-4c8e-9a61-3f1e2d4c5b60", "noisy_neighbor", "Noisy Neighbor", EFFICACY)
STEAL = Strategy(
    "8e2d6f4a-1c3b-4e5d-8f7a-9b0c1d2e3f40",
    "kumo_cpu_steal",
    "kumo CPU steal rebalancer",
    NOISY_NEIGHBOR,
    {
        "properties": {
            f.name: {"type": _t, "default": f.default}
            for f in dataclasses.fields(core.Policy)
            if f.name not in snap.SIGNAL_ONLY  # not an audit's to set
            for _t in [
                "string"
                if isinstance(f.default, str)
                else "boolean"
                if isinstance(f.default, bool)
                else "integer"
                if isinstance(f.default, int)
                else "number"
            ]
        }
    },
)
GOALS = (NOISY_NEIGHBOR,)
STRATEGIES = (STEAL,)


def find_goal(ref: str) -> Goal:
    for goal in GOALS:
        if ref in (goal.uuid, goal.name):
            return goal
    raise NotFound(f"Goal {ref} could not be found")


def find_strategy(ref: str) -> Strategy:
    for strategy in STRATEGIES:
        if ref in (strategy.uuid, strategy.name):
            return strategy
    raise NotFound(f"Strategy {ref} could not be found")


def _goal_and_strategy(goal_ref: str | None, strategy_ref: str | None) -> tuple[Goal, Strategy]:
    if not goal_ref and not strategy_ref:
        raise BadRequest("A goal or a strategy is required")
    strategy = find_strategy(strategy_ref) if strategy_ref and strategy_ref != "auto" else STEAL
    goal = find_goal(goal_ref) if goal_ref else strategy.goal
    if strategy.goal != goal:
        raise BadRequest(f"Strategy {strategy.name} does not achieve goal {goal.name}")
    return goal, strategy


# -- audit templates -------------------------------------------------------------------------
def create_template(
    session: Session,
    name: str,
    goal: str | None,
    strategy: str | None,
    description: str | None,
    scope: list[Any],
) -> AuditTemplate:
    g, s = _goal_and_strategy(goal, strategy)
    _check_name(name)
    if session.scalar(select(AuditTemplate.id).where(AuditTemplate.name == name)) is not None:
        raise Conflict(f"An audit_template with name {name} already exists")
    row = AuditTemplate(
        uuid=str(uuid.uuid4()), name=name, description=description, goal=g.name, strategy=s.name, scope=scope
    )
    try:
        with session.begin_nested():  # a concurrent create of the same name: the unique index
            session.add(row)
    except IntegrityError:
        raise Conflict(f"An audit_template with name {name} already exists (created meanwhile)") from None
    return row


def _check_name(name: str | None) -> None:
    if name is not None and len(name) > NAME_MAX:
        raise BadRequest(f"Invalid input for field/attribute name: longer than {NAME_MAX} characters")


def get_template(session: Session, ref: str) -> AuditTemplate:
    row = session.scalar(
        select(AuditTemplate).where((AuditTemplate.uuid == ref) | (AuditTemplate.name == ref))
    )
    if row is None:
        raise NotFound(f"AuditTemplate {ref} could not be found")
    return row


def list_templates(session: Session) -> list[AuditTemplate]:
    return list(session.scalars(select(AuditTemplate).order_by(AuditTemplate.id)))


def delete_template(session: Session, ref: str) -> None:
    session.delete(get_template(session, ref))


# -- audits ----------------------------------------------------------------------------------
def create_audit(
    session: Session,
    *,
    name: str | None,
    audit_type: str,
    goal: str | None,
    strategy: str | None,
    template: str | None,
    parameters: dict[str, Any],
    interval: int | None,
    auto_trigger: bool,
    now: dt.datetime,
    scope_given: list[Any] | None = None,
) -> Audit:
    scope: list[Any] = []
    if template:
        t = get_template(session, template)
        goal, strategy, scope = goal or t.goal, strategy or t.strategy, list(t.scope or [])
    g, s = _goal_and_strategy(goal, strategy)
    _check_name(name)
    if audit_type not in (ONESHOT, CONTINUOUS):
        raise BadRequest(f"Audit type {audit_type} is not supported (ONESHOT or CONTINUOUS)")
    if audit_type == CONTINUOUS and not interval:
        raise BadRequest("Interval of audit must be specified for CONTINUOUS.")
    if audit_type == ONESHOT and interval:
        raise BadRequest("Interval of audit must not be set for ONESHOT.")
    snap.policy_from(parameters)  # refuse bad parameters and scopes now, not at the first run
    scope = scope_given if scope_given is not None else scope
    snap.scope_from(scope)
    row = Audit(
        uuid=str(uuid.uuid4()),
        name=name or f"{g.name}-{now.isoformat(timespec='seconds')}",
        audit_type=audit_type,
        state=PENDING,
        goal=g.name,
        strategy=s.name,
        audit_template_uuid=get_template(session, template).uuid if template else None,
        parameters=parameters,
        scope=scope,
        interval=interval,
        auto_trigger=auto_trigger,
        next_run_time=now,
    )
    session.add(row)
    session.flush()
    wake_after_commit(session, WAKE_KEY)
    return row


def get_audit(session: Session, ref: str) -> Audit:
    row = session.scalar(select(Audit).where((Audit.uuid == ref) | (Audit.name == ref)))
    if row is None:
        raise NotFound(f"Audit {ref} could not be found")
    return row


def list_audits(session: Session) -> list[Audit]:
    return list(session.scalars(select(Audit).order_by(Audit.id)))


def update_audit_state(session: Session, ref: str, state: str) -> Audit:
    """Watcher's PATCH of /state: an audit not yet done may be CANCELLED (or SUSPENDED/ONGOING)."""
    audit = get_audit(session, ref)
    if state not in (CANCELLED, "SUSPENDED", ONGOING):
        raise BadRequest(f"Audit state {state} cannot be set")
    if audit.state in AUDIT_DONE:
        raise Conflict(f"Audit {audit.uuid} is {audit.state}")
    audit.state = state
    return audit


def delete_audit(session: Session, ref: str) -> None:
    audit = get_audit(session, ref)
    if audit.state in (PENDING, ONGOING):
        raise Conflict(f"Audit {audit.uuid} is {audit.state}: cancel it first")
    session.delete(audit)


def due_audits(session: Session, now: dt.datetime) -> list[Audit]:
    """Audits to run now (the executor runs each under its row lock, re-checked: one API
    worker runs each round)."""
    return list(
        session.scalars(
            select(Audit)
            .where(Audit.state.in_([PENDING, ONGOING]), Audit.next_run_time <= now)
            .order_by(Audit.next_run_time, Audit.id)
        )
    )


def run_audit(session: Session, settings: Settings, audit: Audit, now: dt.datetime) -> ActionPlan:
    """One run: plan over a fresh snapshot, store it as a RECOMMENDED plan with its actions
    (superseding the audit's earlier RECOMMENDED ones), started at once with auto_trigger."""
    policy = snap.policy_from(audit.parameters or {})
    scope = snap.scope_from(audit.scope or [])
    result = core.plan(snap.build(session, settings, now, scope), policy)
    for old in session.scalars(select(ActionPlan).where(ActionPlan.state == RECOMMENDED)):
        old.state = SUPERSEDED
    plan_row = ActionPlan(
        uuid=str(uuid.uuid4()),
        audit_uuid=audit.uuid,
        strategy=audit.strategy or STEAL.name,
        state=RECOMMENDED,
        efficacy={
            "lost_cores_before": round(result.effect.lost_cores_before, 3),
            "lost_cores_after": round(result.effect.lost_cores_after, 3),
            "live_migrations": len(result.moves),
            "hot_hosts": list(result.effect.hot_hosts),
            "victims": list(result.effect.victims),
        },
        skipped=[
            {"server": s.server, "host": s.host, "reason": s.reason, "detail": s.detail}
            for s in result.skipped
        ],
    )
    session.add(plan_row)
    for seq, move in enumerate(result.moves):
        action = Action(
            uuid=str(uuid.uuid4()),
            action_plan_uuid=plan_row.uuid,
            seq=seq,
            action_type="migrate",
            state=PENDING,
            parents=[],  # no order between them: the executor runs them within the caps
            input_parameters={
                "resource_id": move.server,
                "migration_type": "live",
                "source_node": move.source,
                "destination_node": move.destination,
                "victims": list(move.victims),
                "steal_pct": round(move.steal_pct, 2),
                "gain_cores": round(move.gain_cores, 3),
                "demand_cores": round(move.dest_demand_after, 3),
                "est_seconds": round(move.est_seconds, 1),
            },
        )
        session.add(action)
    metrics.REBALANCE_PLANS.inc()
    for skip in result.skipped:
        metrics.REBALANCE_SKIPPED.labels(skip.reason).inc()
    session.flush()
    if audit.auto_trigger and not result.moves:
        plan_row.state = SUCCEEDED
    elif audit.auto_trigger:  # started, unless another plan runs: then it stays RECOMMENDED
        _start_if_none_runs(session, plan_row.uuid)
        session.refresh(plan_row)
    if audit.audit_type == ONESHOT:
        audit.state = SUCCEEDED
    else:
        audit.state = ONGOING
        audit.next_run_time = now + dt.timedelta(seconds=audit.interval or 60)
    session.flush()
    return plan_row


# -- action plans ----------------------------------------------------------------------------
def get_plan(session: Session, ref: str) -> ActionPlan:
    row = session.scalar(select(ActionPlan).where(ActionPlan.uuid == ref))
    if row is None:
        raise NotFound(f"ActionPlan {ref} could not be found")
    return row


def list_plans(session: Session, audit_uuid: str | None = None) -> list[ActionPlan]:
    query = select(ActionPlan).order_by(ActionPlan.id)
    if audit_uuid:
        query = query.where(ActionPlan.audit_uuid == audit_uuid)
    return list(session.scalars(query))


def start_plan(session: Session, ref: str) -> ActionPlan:
    """RECOMMENDED → PENDING in one compare-and-set UPDATE: a plan changed meanwhile (cancelled,
    started by another request) is not revived, and none starts while another runs."""
    plan = get_plan(session, ref)
    if plan.state != RECOMMENDED:
        raise Conflict(f"Action plan {plan.uuid} is {plan.state}: only a RECOMMENDED plan can start")
    if not _start_if_none_runs(session, plan.uuid):
        other = session.scalar(select(ActionPlan.uuid).where(ActionPlan.state.in_(RUNNING_PLAN)))
        session.refresh(plan)
        if other is not None and other != plan.uuid:
            raise Conflict(f"Action plan {other} is already running")
        raise Conflict(f"Action plan {plan.uuid} is {plan.state}: only a RECOMMENDED plan can start")
    session.refresh(plan)
    wake_after_commit(session, WAKE_KEY)
    return plan


def _start_if_none_runs(session: Session, plan_uuid: str) -> bool:
    """RECOMMENDED → PENDING when no plan runs; False when the plan is not RECOMMENDED any more or
    another runs. On PostgreSQL two transactions may both see none running (READ COMMITTED): the
    partial unique index on running plans (models.ActionPlan) then fails the second one's UPDATE
    once the first commits, inside a savepoint here, so the loser answers like any other."""
    running = select(ActionPlan.id).where(ActionPlan.state.in_(RUNNING_PLAN)).scalar_subquery()
    try:
        with session.begin_nested():
            return _cas(
                session,
                update(ActionPlan)
                .where(ActionPlan.uuid == plan_uuid, ActionPlan.state == RECOMMENDED, ~exists(running))
                .values(state=PENDING),
            )
    except IntegrityError:
        return False


def _cas(session: Session, statement: Any) -> bool:
    """Run a compare-and-set UPDATE; True when it changed exactly one row."""
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        statement.execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def cancel_plan(session: Session, ref: str, state: str) -> ActionPlan:
    """Watcher's PATCH of /state to CANCELLED (a plan not started or PENDING) or CANCELLING (an
    ONGOING plan: its PENDING actions are cancelled, its running ones finish). Compare-and-set:
    a plan whose state changed since it was read (promoted by the rebalancer) is a 409, and only
    actions still PENDING are cancelled (never one a worker just claimed)."""
    plan = get_plan(session, ref)
    if state not in (CANCELLED, CANCELLING):
        raise BadRequest(f"Action plan state {state} cannot be set (CANCELLED or CANCELLING)")
    seen = plan.state
    if seen in (RECOMMENDED, PENDING):
        new = CANCELLED
    elif seen == ONGOING:
        new = CANCELLING
    else:
        raise Conflict(f"Action plan {plan.uuid} is {seen}")
    if not _cas(
        session,
        update(ActionPlan).where(ActionPlan.uuid == plan.uuid, ActionPlan.state == seen).values(state=new),
    ):
        session.refresh(plan)
        raise Conflict(f"Action plan {plan.uuid} is {plan.state}")
    session.execute(
        update(Action)
        .where(Action.action_plan_uuid == plan.uuid, Action.state == PENDING)
        .values(state=CANCELLED)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return get_plan(session, plan.uuid)


def delete_plan(session: Session, ref: str) -> None:
    plan = get_plan(session, ref)
    if plan.state in (PENDING, ONGOING, CANCELLING):
        raise Conflict(f"Action plan {plan.uuid} is {plan.state}")
    for action in actions_of(session, plan.uuid):
        session.delete(action)
    session.delete(plan)


# -- actions ---------------------------------------------------------------------------------
def actions_of(session: Session, plan_uuid: str) -> list[Action]:
    return list(
        session.scalars(select(Action).where(Action.action_plan_uuid == plan_uuid).order_by(Action.seq))
    )


def list_actions(
    session: Session, plan_uuid: str | None = None, audit_uuid: str | None = None
) -> list[Action]:
    query = select(Action).order_by(Action.id)
    if plan_uuid:
        query = query.where(Action.action_plan_uuid == plan_uuid)
    if audit_uuid:
        plans = select(ActionPlan.uuid).where(ActionPlan.audit_uuid == audit_uuid)
        query = query.where(Action.action_plan_uuid.in_(plans))
    return list(session.scalars(query))


def get_action(session: Session, ref: str) -> Action:
    row = session.scalar(select(Action).where(Action.uuid == ref))
    if row is None:
        raise NotFound(f"Action {ref} could not be found")
    return row


def skip_action(session: Session, ref: str, message: str | None) -> Action:
    """Watcher 1.5: an admin skips a PENDING action of a plan not yet started (compare-and-set:
    an action a worker claimed meanwhile is a 409)."""
    action = get_action(session, ref)
    plan = get_plan(session, action.action_plan_uuid)
    if action.state != PENDING or plan.state not in (RECOMMENDED, PENDING):
        raise Conflict(f"Action {action.uuid} is {action.state} in a {plan.state} plan: it cannot be skipped")
    if not _cas(
        session,
        update(Action)
        .where(Action.uuid == action.uuid, Action.state == PENDING)
        .values(state=SKIPPED, status_message=message or "Action skipped by user."),
    ):
        session.refresh(action)
        raise Conflict(f"Action {action.uuid} is {action.state}: it cannot be skipped")
    session.refresh(action)
    return action


# -- request bodies --------------------------------------------------------------------------
def _obj(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    return body


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"Invalid input for field/attribute {key}: {value!r} is not a string")
    return value


def create_template_from(session: Session, body: Any) -> AuditTemplate:
    data = _obj(body)
    name = _opt_str(data, "name")
    if not name:
        raise BadRequest("Invalid input for field/attribute name: a name is required")
    scope = _scope(data.get("scope")) or []
    snap.scope_from(scope)
    return create_template(
        session,
        name,
        _opt_str(data, "goal"),
        _opt_str(data, "strategy"),
        _opt_str(data, "description"),
        scope,
    )


def create_audit_from(session: Session, body: Any, now: dt.datetime) -> Audit:
    data = _obj(body)
    parameters = data.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest("Invalid input for field/attribute parameters: an object is expected")
    auto_trigger = data.get("auto_trigger", False)
    if not isinstance(auto_trigger, bool):
        raise BadRequest("Invalid input for field/attribute auto_trigger: a boolean is expected")
    return create_audit(
        session,
        name=_opt_str(data, "name"),
        audit_type=_opt_str(data, "audit_type") or ONESHOT,
        goal=_opt_str(data, "goal"),
        strategy=_opt_str(data, "strategy"),
        template=_opt_str(data, "audit_template_uuid"),
        parameters=parameters,
        interval=_interval(data.get("interval")),
        auto_trigger=auto_trigger,
        now=now,
        scope_given=_scope(data.get("scope")),
    )


def _scope(value: Any) -> list[Any] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequest("Invalid input for field/attribute scope: a list is expected")
    return value


def _interval(value: Any) -> int | None:
    """Seconds, as a number or its text; Watcher's cron form is not supported here."""
    if value is None:
        return None
    seconds = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        seconds = int_text(value.strip())
    if seconds is None or not 1 <= seconds <= 7 * 86400:
        raise BadRequest(
            f"Invalid interval {value!r}: seconds from 1 to 604800 (cron intervals are not supported)"
        )
    return seconds


def state_from_patch(body: Any) -> tuple[str, str | None]:
    """The new /state (and /status_message) of a Watcher RFC 6902 patch; nothing else may change."""
    if not isinstance(body, list) or not body:
        raise BadRequest("The patch must be a non-empty JSON list of operations")
    state, message = None, None
    for op in body:
        if not isinstance(op, dict) or op.get("op") not in ("replace", "add"):
            raise BadRequest("Only 'replace' operations of /state (and /status_message) are supported")
        path, value = op.get("path"), op.get("value")
        if path == "/state" and isinstance(value, str):
            state = value.upper()
        elif path == "/status_message" and isinstance(value, str | None):
            message = value
        else:
            raise BadRequest(f"Patching {path!r} is not supported")
    if state is None:
        raise BadRequest("The patch must set /state")
    return state, message
