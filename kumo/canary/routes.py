"""os-kumo-canaries: a kumo extension of the compute API (Nova-style errors), admin only.

GET  /compute/v2.1/os-kumo-canaries[?scope=az|host|migration&target=T&host=H&limit=N&latest=true]
     {"canaries": [runs, newest first; latest=true: each (scope, target)'s newest run],
      "hosts": [each host's canary standing]}
POST /compute/v2.1/os-kumo-canaries   {"canary": {...}}: a runner reports one canary
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.canary import schemas, service, views
from kumo.canary.policy import policy_from
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")
PATH = "/v2.1/os-kumo-canaries"


@router.get(PATH)
def list_canaries(
    scope: str | None = None,
    target: str | None = None,
    host: str | None = None,
    limit: str | None = None,
    latest: str | None = None,
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    ctx.require_admin()
    query = service.parse_list_query(scope, target, host, limit, latest)
    with rt.db.read() as session:
        return views.index(*service.overview(session, ctx, query, policy_from(rt.settings)))


@router.post(PATH, status_code=201, openapi_extra=json_body(schemas.CANARY_REPORT))
def report_canary(
    body: Any = Body(None), ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    ctx.require_admin()
    report = service.parse_report(body)
    with rt.db.transaction() as session:
        return views.show(service.record(session, ctx, report, policy_from(rt.settings)))
