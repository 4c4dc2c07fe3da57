"""/v2.1/servers/{id}/os-instance-actions: what happened to a server, with events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.compute import actions, servers
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion
from kumo.compute.params import time_param
from kumo.compute.views.servers import action_body
from kumo.errors import BadRequest
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")


@router.get("/v2.1/servers/{server_id}/os-instance-actions")
def list_actions(
    server_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    query = request.query_params
    since = time_param(query, "changes-since") if version.at_least("2.58") else None
    before = time_param(query, "changes-before") if version.at_least("2.66") else None
    if since and before and since > before:
        raise BadRequest("The value of changes-since must be less than or equal to changes-before.")
    with rt.db.read() as session:
        servers.get(session, ctx, server_id, include_deleted=version.at_least("2.21"))
        rows = actions.list_actions(session, server_id, since, before)
    return {"instanceActions": [action_body(a, version, None, ctx) for a in rows]}


@router.get("/v2.1/servers/{server_id}/os-instance-actions/{request_id}")
def show_action(
    server_id: str,
    request_id: str,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    with rt.db.read() as session:
        servers.get(session, ctx, server_id, include_deleted=version.at_least("2.21"))
        action, events = actions.get_action(session, server_id, request_id)
    # Events are shown to admins, and to their owners from 2.51 on (without tracebacks).
    show_events = ctx.is_admin or version.at_least("2.51")
    return {"instanceAction": action_body(action, version, events if show_events else None, ctx)}
