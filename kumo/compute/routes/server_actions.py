"""POST /v2.1/servers/{id}/action: one handler per action name, each a domain call."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from kumo.agent.tasks import host_key
from kumo.api.context import RequestContext
from kumo.api.deps import context, microversion, runtime
from kumo.api.openapi import json_body
from kumo.compute import console, schemas, server_ops
from kumo.compute.microversion import Microversion
from kumo.compute.routes.servers import base_url
from kumo.compute.views import servers as view
from kumo.errors import BadRequest
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")

# Each returns the host whose agent has new work (None: nothing to wake).
Handler = Callable[[Session, RequestContext, str, Any, Microversion], str | None]


def _start(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    return server_ops.start(s, ctx, sid)


def _stop(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    return server_ops.stop(s, ctx, sid)


def _reboot(s: Session, ctx: RequestContext, sid: str, body: Any, _: Microversion) -> str | None:
    if not isinstance(body, dict) or "type" not in body:
        raise BadRequest("Invalid input for field/attribute reboot. 'type' is a required property")
    return server_ops.reboot(s, ctx, sid, str(body["type"]).upper())


def _migrate(s: Session, ctx: RequestContext, sid: str, body: Any, version: Microversion) -> str | None:
    host = body.get("host") if isinstance(body, dict) and version.at_least("2.56") else None
    return server_ops.migrate(s, ctx, sid, live=False, dest_host=host)


def _live_migrate(s: Session, ctx: RequestContext, sid: str, body: Any, _: Microversion) -> str | None:
    if not isinstance(body, dict) or "host" not in body:
        raise BadRequest("Invalid input for field/attribute os-migrateLive. 'host' is a required property")
    return server_ops.migrate(s, ctx, sid, live=True, dest_host=body.get("host"))


def _confirm(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    server_ops.confirm_resize(s, ctx, sid)
    return None


def _revert(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    return server_ops.revert_resize(s, ctx, sid)


def _lock(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    server_ops.set_locked(s, ctx, sid, True)
    return None


def _unlock(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    server_ops.set_locked(s, ctx, sid, False)
    return None


HANDLERS: dict[str, Handler] = {
    "os-start": _start,
    "os-stop": _stop,
    "reboot": _reboot,
    "migrate": _migrate,
    "os-migrateLive": _live_migrate,
    "confirmResize": _confirm,
    "revertResize": _revert,
    "lock": _lock,
    "unlock": _unlock,
}


@router.post("/v2.1/servers/{server_id}/action", openapi_extra=json_body(schemas.SERVER_ACTION))
def server_action(
    server_id: str,
    request: Request,
    body: dict[str, Any] = Body(...),
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> Response:
    if len(body) != 1:
        raise BadRequest("There is either no or more than one action in the request body.")
    name, args = next(iter(body.items()))
    if name == "rebuild":
        return _rebuild(server_id, request, args, ctx, version, rt)
    if name == "os-getConsoleOutput":
        return _console_output(server_id, args, ctx, rt)
    handler = HANDLERS.get(name)
    if handler is None:
        raise BadRequest(f"Unsupported server action {name!r}.")
    with rt.db.transaction() as session:
        host = handler(session, ctx, server_id, args, version)
    if host:
        rt.waker.publish(host_key(host))
    return Response(status_code=202)


def _console_output(server_id: str, args: Any, ctx: RequestContext, rt: Runtime) -> JSONResponse:
    length = console.parse_length(args)
    with rt.db.transaction() as session:
        task_id, host = console.request_output(session, ctx, server_id, length)
    rt.waker.publish(host_key(host))
    return JSONResponse({"output": console.collect_output(rt.db, task_id)})


def _rebuild(
    server_id: str, request: Request, args: Any, ctx: RequestContext, version: Microversion, rt: Runtime
) -> JSONResponse:
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute rebuild.")
    with rt.db.transaction() as session:
        instance, host = server_ops.rebuild(session, ctx, server_id, args)
    rt.waker.publish(host_key(host))
    admin_pass = (
        (args.get("adminPass") or secrets.token_urlsafe(9)) if rt.settings.enable_admin_password else None
    )
    return JSONResponse(
        {"server": view.rebuilt(instance, base_url(request), version, ctx, admin_pass)}, status_code=202
    )
