"""Watcher's v1 API subset under /infra-optim (catalog type `infra-optim`): goals, strategies,
audit templates, audits, action plans (start, cancel) and actions (skip). Admin only, as
Watcher's default policy. Domain: kumo/rebalance/service.py; bodies: views.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

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


# Every /v1 route answers with the microversion headers and is for admins only (the version is
# read first, then the token). `v1` carries its full prefix and is included into `router`, with
# no options, at the end of this module (kumo/app.py flattens included routers).
v1 = APIRouter(prefix="/infra-optim/v1", dependencies=[Depends(version), Depends(admin)])
Rt = Annotated[Runtime, Depends(runtime)]
JSON = Annotated[Any, Body()]  # a body parsed by hand (its schema: the route's openapi_extra)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/infra-optim"


def _page(
    request: Request, key: str, view: Callable[[Any, str], dict[str, Any]], rows: Iterable[Any]
) -> dict[str, Any]:
    """A listing: every row's view, and no further page (Watcher's `next`)."""
    return {key: [view(row, _base(request)) for row in rows], "next": None}


@router.get("")
@router.get("/")
def root(request: Request, response: Response) -> dict[str, Any]:
    response.headers.update(microversion.headers(None))
    return views.root(_base(request))


# -- goals and strategies --------------------------------------------------------------------
@v1.get("/goals")
@v1.get("/goals/detail")
def list_goals(request: Request) -> dict[str, Any]:
    return _page(request, "goals", views.goal, svc.GOALS)


@v1.get("/goals/{ref}")
def show_goal(ref: str, request: Request) -> dict[str, Any]:
    return views.goal(svc.find_goal(ref), _base(request))


@v1.get("/strategies")
@v1.get("/strategies/detail")
def list_strategies(request: Request, goal: str | None = Query(default=None)) -> dict[str, Any]:
    found = [s for s in svc.STRATEGIES if goal is None or goal in (s.goal.uuid, s.goal.name)]
    return _page(request, "strategies", views.strategy, found)


@v1.get("/strategies/{ref}")
def show_strategy(ref: str, request: Request) -> dict[str, Any]:
    return views.strategy(svc.find_strategy(ref), _base(request))


# -- audit templates -------------------------------------------------------------------------
@v1.get("/audit_templates")
@v1.get("/audit_templates/detail")
def list_audit_templates(request: Request, rt: Rt) -> dict[str, Any]:
    with rt.db.read() as session:
        return _page(request, "audit_templates", views.audit_template, svc.list_templates(session))


@v1.post("/audit_templates", status_code=201, openapi_extra=json_body(schemas.AUDIT_TEMPLATE_CREATE))
def create_audit_template(request: Request, rt: Rt, body: JSON = None) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return views.audit_template(svc.create_template_from(session, body), _base(request))


@v1.get("/audit_templates/{ref}")
def show_audit_template(ref: str, request: Request, rt: Rt) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.audit_template(svc.get_template(session, ref), _base(request))


@v1.delete("/audit_templates/{ref}", status_code=204)
def delete_audit_template(ref: str, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        svc.delete_template(session, ref)
    return Response(status_code=204)


# -- audits ----------------------------------------------------------------------------------
@v1.get("/audits")
@v1.get("/audits/detail")
def list_audits(request: Request, rt: Rt) -> dict[str, Any]:
    with rt.db.read() as session:
        return _page(request, "audits", views.audit, svc.list_audits(session))


@v1.post("/audits", status_code=201, openapi_extra=json_body(schemas.AUDIT_CREATE))
def create_audit(request: Request, rt: Rt, body: JSON = None) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return views.audit(svc.create_audit_from(session, body, utcnow()), _base(request))


@v1.get("/audits/{ref}")
def show_audit(ref: str, request: Request, rt: Rt) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.audit(svc.get_audit(session, ref), _base(request))


@v1.patch("/audits/{ref}", openapi_extra=json_body(schemas.STATE_PATCH))
def update_audit(ref: str, request: Request, rt: Rt, body: JSON = None) -> dict[str, Any]:
    state, _ = svc.state_from_patch(body)
    with rt.db.transaction() as session:
        return views.audit(svc.update_audit_state(session, ref, state), _base(request))


@v1.delete("/audits/{ref}", status_code=204)
def delete_audit(ref: str, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        svc.delete_audit(session, ref)
    return Response(status_code=204)


# -- action plans ----------------------------------------------------------------------------
@v1.get("/action_plans")
@v1.get("/action_plans/detail")
def list_action_plans(
    request: Request, rt: Rt, audit_uuid: str | None = Query(default=None)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return _page(request, "action_plans", views.action_plan, svc.list_plans(session, audit_uuid))


@v1.get("/action_plans/{ref}")
def show_action_plan(ref: str, request: Request, rt: Rt) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.action_plan(svc.get_plan(session, ref), _base(request))


@v1.post("/action_plans/{ref}/start", status_code=202)
def start_action_plan(ref: str, request: Request, rt: Rt) -> dict[str, Any]:
    with rt.db.transaction() as session:
        return views.action_plan(svc.start_plan(session, ref), _base(request))


@v1.patch("/action_plans/{ref}", openapi_extra=json_body(schemas.STATE_PATCH))
def update_action_plan(ref: str, request: Request, rt: Rt, body: JSON = None) -> dict[str, Any]:
    state, _ = svc.state_from_patch(body)
    with rt.db.transaction() as session:
        if state == svc.PENDING:  # Watcher's older way to start a plan
            return views.action_plan(svc.start_plan(session, ref), _base(request))
        return views.action_plan(svc.cancel_plan(session, ref, state), _base(request))


@v1.delete("/action_plans/{ref}", status_code=204)
def delete_action_plan(ref: str, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        svc.delete_plan(session, ref)
    return Response(status_code=204)


# -- actions ---------------------------------------------------------------------------------
@v1.get("/actions")
@v1.get("/actions/detail")
def list_actions(
    request: Request,
    rt: Rt,
    action_plan_uuid: str | None = Query(default=None),
    audit_uuid: str | None = Query(default=None),
) -> dict[str, Any]:
    with rt.db.read() as session:
        rows = svc.list_actions(session, action_plan_uuid, audit_uuid)
        return _page(request, "actions", views.action, rows)


@v1.get("/actions/{ref}")
def show_action(ref: str, request: Request, rt: Rt) -> dict[str, Any]:
    with rt.db.read() as session:
        return views.action(svc.get_action(session, ref), _base(request))


@v1.patch("/actions/{ref}", openapi_extra=json_body(schemas.STATE_PATCH))
def update_action(
    ref: str, request: Request, rt: Rt, v: Annotated[tuple[int, int], Depends(version)], body: JSON = None
) -> dict[str, Any]:
    """Watcher 1.5: set a PENDING action of a plan not yet started to SKIPPED."""
    if v < microversion.ACTION_UPDATE:
        raise BadRequest("Updating an action needs API version 1.5 or later")
    state, message = svc.state_from_patch(body)
    if state != svc.SKIPPED:
        raise BadRequest(f"An action's state can only be set to SKIPPED, not {state}")
    with rt.db.transaction() as session:
        return views.action(svc.skip_action(session, ref, message), _base(request))


router.include_router(v1)
