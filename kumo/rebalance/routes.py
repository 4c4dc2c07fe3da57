"""Watcher's v1 API subset under /infra-optim (catalog type `infra-optim`): goals, strategies,
audit templates, audits, action plans (start, cancel) and actions (skip). Admin only, as
Watcher's default policy. Domain: kumo/rebalance/service.py; bodies: views.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.db.base import utcnow
from kumo.errors import BadRequest
from kumo.rebalance import microversion, schemas, views
from kumo.rebalance import service as svc
from kumo.runtime import Runtime

router = APIRouter(prefix="/infra-optim")


async def version(request: Request, response: Response) -> tuple[int, int]:
    found = microversion.parse({k.lower(): v for k, v in request.headers.items()})
    response.headers.update(microversion.headers(found))
    return found


async def admin(ctx: RequestContext = Depends(context)) -> RequestContext:
    ctx.require_admin()
    return ctx


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/infra-optim"


@router.get("")
@router.get("/")
def root(request: Request, response: Response) -> dict[str, Any]:
    response.headers.update(microversion.headers(None))
    return views.root(_base(request))


# -- goals and strategies --------------------------------------------------------------------
@router.get("/v1/goals")
@router.get("/v1/goals/detail")
def list_goals(
    request: Request, v: Any = Depends(version), ctx: RequestContext = Depends(admin)
) -> dict[str, Any]:
    return {"goals": [views.goal(g, _base(request)) for g in svc.GOALS], "next": None}


@router.get("/v1/goals/{ref}")
def show_goal(
    ref: str, request: Request, v: Any = Depends(version), ctx: RequestContext = Depends(admin)
) -> dict[str, Any]:
    return views.goal(svc.find_goal(ref), _base(request))


@router.get("/v1/strategies")
@router.get("/v1/strategies/detail")
def list_strategies(
    request: Request,
    goal: str | None = Query(default=None),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    found = [s for s in svc.STRATEGIES if goal is None or goal in (s.goal.uuid, s.goal.name)]
    return {"strategies": [views.strategy(s, _base(request)) for s in found], "next": None}


@router.get("/v1/strategies/{ref}")
def show_strategy(
    ref: str, request: Request, v: Any = Depends(version), ctx: RequestContext = Depends(admin)
) -> dict[str, Any]:
    return views.strategy(svc.find_strategy(ref), _base(request))


# -- audit templates -------------------------------------------------------------------------
@router.get("/v1/audit_templates")
@router.get("/v1/audit_templates/detail")
def list_audit_templates(
    request: Request,
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    with rt.db.read() as session:
        rows = svc.list_templates(session)
        return {"audit_templates": [views.audit_template(t, _base(request)) for t in rows], "next": None}


@router.post("/v1/audit_templates", status_code=201, openapi_extra=json_body(schemas.AUDIT_TEMPLATE_CREATE))
def create_audit_template(
    request: Request,
    body: Any = Body(default=None),
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return views.audit_template(svc.create_template_from(session, body), _base(request))


@router.get("/v1/audit_templates/{ref}")
def show_audit_template(
    ref: str,
    request: Request,
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.audit_template(svc.get_template(session, ref), _base(request))


@router.delete("/v1/audit_templates/{ref}", status_code=204)
def delete_audit_template(
    ref: str, rt: Runtime = Depends(runtime), v: Any = Depends(version), ctx: RequestContext = Depends(admin)
) -> Response:
    with rt.db.transaction() as session:
        svc.delete_template(session, ref)
    return Response(status_code=204)


# -- audits ----------------------------------------------------------------------------------
@router.get("/v1/audits")
@router.get("/v1/audits/detail")
def list_audits(
    request: Request,
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return {"audits": [views.audit(a, _base(request)) for a in svc.list_audits(session)], "next": None}


@router.post("/v1/audits", status_code=201, openapi_extra=json_body(schemas.AUDIT_CREATE))
def create_audit(
    request: Request,
    body: Any = Body(default=None),
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return views.audit(svc.create_audit_from(session, body, utcnow()), _base(request))


@router.get("/v1/audits/{ref}")
def show_audit(
    ref: str,
    request: Request,
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.audit(svc.get_audit(session, ref), _base(request))


@router.patch("/v1/audits/{ref}", openapi_extra=json_body(schemas.STATE_PATCH))
def update_audit(
    ref: str,
    request: Request,
    body: Any = Body(default=None),
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    state, _ = svc.state_from_patch(body)
    with rt.db.transaction() as session:
        return views.audit(svc.update_audit_state(session, ref, state), _base(request))


@router.delete("/v1/audits/{ref}", status_code=204)
def delete_audit(
    ref: str, rt: Runtime = Depends(runtime), v: Any = Depends(version), ctx: RequestContext = Depends(admin)
) -> Response:
    with rt.db.transaction() as session:
        svc.delete_audit(session, ref)
    return Response(status_code=204)


# -- action plans ----------------------------------------------------------------------------
@router.get("/v1/action_plans")
@router.get("/v1/action_plans/detail")
def list_action_plans(
    request: Request,
    audit_uuid: str | None = Query(default=None),
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    with rt.db.read() as session:
        plans = svc.list_plans(session, audit_uuid)
        return {"action_plans": [views.action_plan(p, _base(request)) for p in plans], "next": None}


@router.get("/v1/action_plans/{ref}")
def show_action_plan(
    ref: str,
    request: Request,
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.action_plan(svc.get_plan(session, ref), _base(request))


@router.post("/v1/action_plans/{ref}/start", status_code=202)
def start_action_plan(
    ref: str,
    request: Request,
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return views.action_plan(svc.start_plan(session, ref), _base(request))


@router.patch("/v1/action_plans/{ref}", openapi_extra=json_body(schemas.STATE_PATCH))
def update_action_plan(
    ref: str,
    request: Request,
    body: Any = Body(default=None),
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    state, _ = svc.state_from_patch(body)
    with rt.db.transaction() as session:
        if state == svc.PENDING:  # Watcher's older way to start a plan
            return views.action_plan(svc.start_plan(session, ref), _base(request))
        return views.action_plan(svc.cancel_plan(session, ref, state), _base(request))


@router.delete("/v1/action_plans/{ref}", status_code=204)
def delete_action_plan(
    ref: str, rt: Runtime = Depends(runtime), v: Any = Depends(version), ctx: RequestContext = Depends(admin)
) -> Response:
    with rt.db.transaction() as session:
        svc.delete_plan(session, ref)
    return Response(status_code=204)


# -- actions ---------------------------------------------------------------------------------
@router.get("/v1/actions")
@router.get("/v1/actions/detail")
def list_actions(
    request: Request,
    action_plan_uuid: str | None = Query(default=None),
    audit_uuid: str | None = Query(default=None),
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    with rt.db.read() as session:
        rows = svc.list_actions(session, action_plan_uuid, audit_uuid)
        return {"actions": [views.action(a, _base(request)) for a in rows], "next": None}


@router.get("/v1/actions/{ref}")
def show_action(
    ref: str,
    request: Request,
    rt: Runtime = Depends(runtime),
    v: Any = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.action(svc.get_action(session, ref), _base(request))


@router.patch("/v1/actions/{ref}", openapi_extra=json_body(schemas.STATE_PATCH))
def update_action(
    ref: str,
    request: Request,
    body: Any = Body(default=None),
    rt: Runtime = Depends(runtime),
    v: tuple[int, int] = Depends(version),
    ctx: RequestContext = Depends(admin),
) -> dict[str, Any]:
    """Watcher 1.5: set a PENDING action of a plan not yet started to SKIPPED."""
    if v < microversion.ACTION_UPDATE:
        raise BadRequest("Updating an action needs API version 1.5 or later")
    state, message = svc.state_from_patch(body)
    if state != svc.SKIPPED:
        raise BadRequest(f"An action's state can only be set to SKIPPED, not {state}")
    with rt.db.transaction() as session:
        return views.action(svc.skip_action(session, ref, message), _base(request))
