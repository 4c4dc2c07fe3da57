"""Watcher v1 bodies of goals, strategies, audit templates, audits, action plans and actions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kumo.rebalance import service as svc
from kumo.rebalance.models import Action, ActionPlan, Audit, AuditTemplate


def _time(value: dt.datetime | None) -> str | None:
    return value.replace(tzinfo=dt.UTC).isoformat() if value is not None else None


def _links(base: str, kind: str, uuid: str) -> list[dict[str, str]]:
    return [
        {"href": f"{base}/v1/{kind}/{uuid}", "rel": "self"},
        {"href": f"{base}/{kind}/{uuid}", "rel": "bookmark"},
    ]


def goal(g: svc.Goal, base: str) -> dict[str, Any]:
    return {
        "uuid": g.uuid,
        "name": g.name,
        "display_name": g.display_name,
        "efficacy_specification": list(g.efficacy_specification),
        "links": _links(base, "goals", g.uuid),
        "created_at": None,
        "updated_at": None,
        "deleted_at": None,
    }


def strategy(s: svc.Strategy, base: str) -> dict[str, Any]:
    return {
        "uuid": s.uuid,
        "name": s.name,
        "display_name": s.display_name,
        "goal_uuid": s.goal.uuid,
        "goal_name": s.goal.name,
        "parameters_spec": s.parameters_spec,
        "links": _links(base, "strategies", s.uuid),
        "created_at": None,
        "updated_at": None,
        "deleted_at": None,
    }


def _goal_strategy(goal_name: str, strategy_name: str | None) -> dict[str, Any]:
    g = svc.find_goal(goal_name)
    s = svc.find_strategy(strategy_name) if strategy_name else None
    return {
        "goal_uuid": g.uuid,
        "goal_name": g.name,
        "strategy_uuid": s.uuid if s else None,
        "strategy_name": s.name if s else None,
    }


def audit_template(t: AuditTemplate, base: str) -> dict[str, Any]:
    return {
        "uuid": t.uuid,
        "name": t.name,
        "description": t.description,
        **_goal_strategy(t.goal, t.strategy),
        "scope": t.scope or [],
        "links": _links(base, "audit_templates", t.uuid),
        "created_at": _time(t.created_at),
        "updated_at": _time(t.updated_at),
        "deleted_at": None,
    }


def audit(a: Audit, base: str) -> dict[str, Any]:
    return {
        "uuid": a.uuid,
        "name": a.name,
        "audit_type": a.audit_type,
        "state": a.state,
        **_goal_strategy(a.goal, a.strategy),
        "parameters": a.parameters or {},
        "interval": str(a.interval) if a.interval else None,
        "scope": a.scope or [],
        "auto_trigger": a.auto_trigger,
        "next_run_time": _time(a.next_run_time) if a.audit_type == svc.CONTINUOUS else None,
        "hostname": None,
        "start_time": None,
        "end_time": None,
        "force": False,
        "status_message": None,
        "links": _links(base, "audits", a.uuid),
        "created_at": _time(a.created_at),
        "updated_at": _time(a.updated_at),
        "deleted_at": None,
    }


def action_plan(p: ActionPlan, base: str) -> dict[str, Any]:
    efficacy = p.efficacy or {}
    indicators = [{**spec, "value": efficacy.get(spec["name"])} for spec in svc.EFFICACY]
    before, after = efficacy.get("lost_cores_before") or 0.0, efficacy.get("lost_cores_after") or 0.0
    reduction = 100.0 * (before - after) / before if before else 0.0
    return {
        "uuid": p.uuid,
        "audit_uuid": p.audit_uuid,
        "strategy_uuid": svc.find_strategy(p.strategy).uuid,
        "strategy_name": p.strategy,
        "state": p.state,
        "efficacy_indicators": indicators,
        "global_efficacy": [
            {
                "name": "steal_reduction",
                "description": "Stolen CPU removed (predicted)",
                "unit": "%",
                "value": round(reduction, 1),
            }
        ],
        # kumo: why each server of a hot host stays where it is (kumo.rebalance.core reasons)
        "skipped": p.skipped or [],
        "hostname": None,
        "status_message": None,
        "links": _links(base, "action_plans", p.uuid),
        "created_at": _time(p.created_at),
        "updated_at": _time(p.updated_at),
        "deleted_at": None,
    }


def action(a: Action, base: str) -> dict[str, Any]:
    params = a.input_parameters or {}
    return {
        "uuid": a.uuid,
        "action_plan_uuid": a.action_plan_uuid,
        "action_type": a.action_type,
        "input_parameters": params,
        "state": a.state,
        "parents": a.parents or [],
        "status_message": a.status_message,
        "description": (
            f"Live-migrate server {params.get('resource_id')} from {params.get('source_node')} "
            f"to {params.get('destination_node')}"
        ),
        "links": _links(base, "actions", a.uuid),
        "created_at": _time(a.created_at),
        "updated_at": _time(a.updated_at),
        "deleted_at": None,
    }


def root(base: str) -> dict[str, Any]:
    v1 = {
        "id": "v1",
        "status": "CURRENT",
        "min_version": "1.0",
        "max_version": "1.5",
        "links": [{"href": f"{base}/v1/", "rel": "self"}],
    }
    return {
        "versions": [v1],
        "default_version": v1,
        "name": "OpenStack Watcher API",
        "description": "kumo's subset",
    }
