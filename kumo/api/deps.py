"""FastAPI dependencies shared by every service's routes."""

from __future__ import annotations

from fastapi import Request

from kumo.api.context import RequestContext
from kumo.errors import Unauthorized
from kumo.logs import request_id_var
from kumo.runtime import Runtime


async def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def context(request: Request) -> RequestContext:
    token = request.headers.get("x-auth-token")
    if not token:
        raise Unauthorized("The request you have made requires authentication.")
    rt: Runtime = request.app.state.runtime
    data = rt.tokens.verify(token)
    ctx = RequestContext(
        user_id=data.user_id,
        project_id=data.project_id,
        roles=data.roles,
        request_id=request_id_var.get(),
        user_name=data.user_name,
        project_name=data.project_name or "",
        audit_id=data.audit_id,
        domain_id=data.domain[0] if data.domain else None,
        system=data.system,
        restricted=bool(data.app_cred and data.app_cred[2]),
    )
    request.state.context = ctx
    return ctx
